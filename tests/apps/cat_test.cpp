// `aioloop cat` as users run it: the built binary in a child process, its stdout compared byte for
// byte with the files, on real files, pipes, FIFOs, procfs and tmpfs.

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/cat.hpp>

#include "apps/tool_process.hpp"

namespace {

using aioloop::testing::run_tool;
using aioloop::testing::tool_result;
using aioloop::testing::tool_run;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s) {
        c = static_cast<char>(gen());
    }
    return s;
}

// A scratch directory on the same filesystem as the build (not tmpfs), removed at the end.
class CatTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/aioloop-cat-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

    std::string make_file(const std::string& name, const std::string& data) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path, std::ios::binary) << data;
        return path;
    }

    std::string dir_;
};

tool_result cat(std::vector<std::string> args) {
    args.insert(args.begin(), "cat");
    return run_tool(tool_run{args});
}

TEST(CatSize, ParsesSuffixes) {
    EXPECT_EQ(aioloop::apps::parse_size("4096").value(), 4096u);
    EXPECT_EQ(aioloop::apps::parse_size("64K").value(), 65536u);
    EXPECT_EQ(aioloop::apps::parse_size("1M").value(), 1048576u);
    EXPECT_EQ(aioloop::apps::parse_size("1MiB").value(), 1048576u);
    EXPECT_EQ(aioloop::apps::parse_size("2G").value(), std::size_t{2} << 30);
    EXPECT_FALSE(aioloop::apps::parse_size("0"));
    EXPECT_FALSE(aioloop::apps::parse_size("12X"));
    EXPECT_FALSE(aioloop::apps::parse_size("1KB"));
    EXPECT_FALSE(aioloop::apps::parse_size(""));
    EXPECT_FALSE(aioloop::apps::parse_size("99999999999999999999G"));
}

struct matrix_case {
    std::size_t size;
    std::vector<std::string> options;
};

class CatMatrix : public CatTest, public ::testing::WithParamInterface<matrix_case> {};

TEST_P(CatMatrix, StdoutEqualsTheFile) {
    const matrix_case& c = GetParam();
    std::string data = random_bytes(c.size, static_cast<unsigned>(c.size));
    std::string path = make_file("f", data);
    std::vector<std::string> args = c.options;
    args.push_back(path);
    tool_result r = cat(args);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out.size(), data.size());
    EXPECT_TRUE(r.out == data);
}

std::vector<matrix_case> matrix() {
    std::vector<std::vector<std::string>> option_sets = {
        {},
        {"--direct"},
        {"--queue-depth", "1", "--block-size", "4096"},
        {"-q", "3", "-b", "5000"},
        {"-q", "32", "-b", "64K"},
        {"--direct", "-q", "1", "-b", "4K"},
        {"--direct", "-q", "32", "-b", "1M"},
        {"--direct", "-q", "2", "-b", "100"}, // below the alignment: rounded up with a note
        {"-q", "7", "-b", "1000"},
    };
    std::vector<matrix_case> cases;
    for (std::size_t size : {0, 1, 4095, 4096, 4097, (1 << 20) + 3}) {
        for (auto& o : option_sets) {
            cases.push_back({size, o});
        }
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(SizesAndOptions,
                         CatMatrix,
                         ::testing::ValuesIn(matrix()),
                         [](const ::testing::TestParamInfo<matrix_case>& info) {
                             std::string name = "size" + std::to_string(info.param.size);
                             for (const auto& o : info.param.options) {
                                 for (char ch : o) {
                                     if (std::isalnum(static_cast<unsigned char>(ch)) != 0) {
                                         name += ch;
                                     }
                                 }
                             }
                             return name;
                         });

TEST_F(CatTest, SeveralFilesInOrder) {
    std::string a = random_bytes(300000, 1);
    std::string b = random_bytes(1, 2);
    std::string c = random_bytes(70000, 3);
    tool_result r =
        cat({"-q", "4", "-b", "64K", make_file("a", a), make_file("b", b), make_file("c", c)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == a + b + c);
}

TEST_F(CatTest, MissingFileBetweenTwoGoodOnes) {
    std::string a = random_bytes(5000, 4);
    std::string b = random_bytes(7000, 5);
    tool_result r = cat({make_file("a", a), dir_ + "/nosuch", make_file("b", b)});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out == a + b);
    EXPECT_NE(r.err.find("aioloop cat: " + dir_ + "/nosuch: No such file or directory"),
              std::string::npos)
        << r.err;
}

TEST_F(CatTest, DirectoryIsReportedAndSkipped) {
    std::string a = random_bytes(10, 6);
    tool_result r = cat({dir_, make_file("a", a)});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out == a);
    EXPECT_NE(r.err.find(dir_ + ": Is a directory"), std::string::npos) << r.err;
}

TEST_F(CatTest, UnreadableFileIsReported) {
    // Tests run as root, so chmod 000 doesn't deny anything; a write-only sysctl does, even
    // for root (proc_sys_permission).
    const std::string path = "/proc/sys/vm/drop_caches";
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd >= 0 || errno != EACCES) {
        if (fd >= 0) {
            ::close(fd);
        }
        GTEST_SKIP() << path << " is readable here";
    }
    std::string a = random_bytes(10, 7);
    tool_result r = cat({path, make_file("a", a)});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out == a);
    EXPECT_NE(r.err.find(path + ": Permission denied"), std::string::npos) << r.err;
}

TEST_F(CatTest, ProcFilesThatReportSizeZero) {
    for (std::string path : {"/proc/version", "/proc/sys/kernel/osrelease", "/proc/filesystems"}) {
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        ASSERT_EQ(st.st_size, 0) << path;
        std::string expected = read_file(path);
        ASSERT_FALSE(expected.empty());
        tool_result r = cat({"-q", "4", "-b", "16", path});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, expected) << path;
    }
}

TEST_F(CatTest, DirectFallsBackWithOneLineNote) {
    // procfs refuses O_DIRECT at open (EINVAL); tmpfs refused it before 6.6 and accepts it now.
    tool_result r = cat({"--direct", "/proc/version"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, read_file("/proc/version"));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("O_DIRECT"), std::string::npos) << r.err;

    std::string shm = "/dev/shm/aioloop-cat-" + std::to_string(::getpid());
    std::string data = random_bytes(100000, 8);
    std::ofstream(shm, std::ios::binary) << data;
    tool_result t = cat({"--direct", shm});
    ::unlink(shm.c_str());
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_TRUE(t.out == data);
    EXPECT_LE(std::count(t.err.begin(), t.err.end(), '\n'), 1) << t.err;
    if (!t.err.empty()) {
        EXPECT_NE(t.err.find("O_DIRECT"), std::string::npos) << t.err;
    }
}

TEST_F(CatTest, StdinDashFromAPipe) {
    std::string data = random_bytes(200000, 9);
    std::string a = random_bytes(33, 10);
    int p[2];
    // CLOEXEC: a child holding the write end would never see end of file.
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    std::thread writer([&] {
        std::size_t done = 0;
        while (done < data.size()) {
            // Small pieces: the tool must not wait for a full block from a stream.
            ssize_t n =
                ::write(p[1], data.data() + done, std::min<std::size_t>(3000, data.size() - done));
            if (n <= 0) {
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        ::close(p[1]);
    });
    tool_result r = run_tool(tool_run{{"cat", make_file("a", a), "-", "-b", "64K"}, p[0]});
    writer.join();
    ::close(p[0]);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == a + data);
}

TEST_F(CatTest, StdinRegularFileStartsAtItsPositionAndEndsAtEof) {
    std::string data = random_bytes(300000, 11);
    int fd = ::open(make_file("in", data).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::lseek(fd, 1000, SEEK_SET), 1000);
    tool_result r = run_tool(tool_run{{"cat", "-q", "4", "-b", "64K"}, fd});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == data.substr(1000));
    EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(data.size()));
    ::close(fd);
}

TEST_F(CatTest, Fifo) {
    std::string path = dir_ + "/fifo";
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    std::string data = random_bytes(500000, 12);
    std::thread writer([&] {
        int fd = ::open(path.c_str(), O_WRONLY);
        std::size_t done = 0;
        while (fd >= 0 && done < data.size()) {
            ssize_t n =
                ::write(fd, data.data() + done, std::min<std::size_t>(70000, data.size() - done));
            if (n <= 0) {
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
    });
    tool_result r = cat({"-q", "8", path});
    writer.join();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == data);
}

TEST_F(CatTest, StatsGoToStderr) {
    std::string data = random_bytes(100000, 13);
    tool_result r = cat({"--stats", "-b", "16K", make_file("a", data)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == data);
    EXPECT_NE(r.err.find("io_submit"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("iocbs_submitted"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("bytes_written          100000"), std::string::npos) << r.err;
}

TEST_F(CatTest, BadOptionsFail) {
    for (std::vector<std::string> args : {std::vector<std::string>{"-b", "0"},
                                          {"-b", "12X"},
                                          {"-q", "0"},
                                          {"-q", "5000"},
                                          {"-q", "1024", "-b", "1G"}}) {
        args.push_back("/proc/version");
        tool_result r = cat(args);
        EXPECT_NE(r.exit_code, 0) << args[1];
        EXPECT_TRUE(r.out.empty());
        EXPECT_FALSE(r.err.empty());
    }
}

} // namespace
