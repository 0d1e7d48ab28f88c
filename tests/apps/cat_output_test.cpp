// `aioloop cat` output paths: a regular file (position before and after), O_APPEND, write(2)
// instead of AIO, a closed pipe, and a sparse file over 4 GiB through a pipe.

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
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

class CatOutputTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/aioloop-catout-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        data_.resize(700001);
        for (std::size_t i = 0; i < data_.size(); ++i) {
            data_[i] = static_cast<char>(i * 7 + i / 4096);
        }
        input_ = dir_ + "/in";
        std::ofstream(input_, std::ios::binary) << data_;
    }
    void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

    // Like `{ printf xyz; aioloop cat in; printf END; } > out`: the tool must start at the
    // shell's position and leave it after its data.
    void expect_positioned_output(int extra_flags, std::vector<std::string> args) {
        std::string out = dir_ + "/out";
        int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | extra_flags, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, "xyz", 3), 3);
        args.insert(args.begin(), "cat");
        args.push_back(input_);
        tool_run run{args};
        run.stdout_fd = fd;
        tool_result r = run_tool(run);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        ASSERT_EQ(::write(fd, "END", 3), 3);
        ::close(fd);
        std::string got = read_file(out);
        EXPECT_EQ(got.size(), data_.size() + 6);
        EXPECT_TRUE(got == "xyz" + data_ + "END");
    }

    std::string dir_;
    std::string data_;
    std::string input_;
};

TEST_F(CatOutputTest, RegularFileKeepsThePosition) {
    expect_positioned_output(0, {"-q", "4", "-b", "64K"});
}

TEST_F(CatOutputTest, AppendOnlyFile) {
    expect_positioned_output(O_APPEND, {"-q", "4", "-b", "64K"});
}

TEST_F(CatOutputTest, DirectInputIntoAFile) {
    expect_positioned_output(0, {"--direct", "-q", "8", "-b", "128K"});
}

TEST_F(CatOutputTest, WriteSyscallPathGivesTheSameBytes) {
    ::setenv("AIOLOOP_CAT_SYNC_WRITES", "1", 1);
    tool_result r = run_tool(tool_run{{"cat", "--stats", "-b", "64K", input_}});
    expect_positioned_output(0, {"-b", "64K"});
    ::unsetenv("AIOLOOP_CAT_SYNC_WRITES");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out == data_);
    EXPECT_NE(r.err.find("writev(2)"), std::string::npos) << r.err;
}

TEST_F(CatOutputTest, ClosedPipeEndsTheRun) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    ::close(p[0]);
    tool_run run{{"cat", input_, input_}};
    run.stdout_fd = p[1];
    tool_result r = run_tool(run);
    ::close(p[1]);
    ASSERT_FALSE(r.timed_out);
    // Killed by SIGPIPE, as cat is, or a write error when SIGPIPE is ignored.
    EXPECT_TRUE(r.signal == SIGPIPE || r.exit_code != 0) << r.err;
}

// A sparse file just over 4 GiB: offsets above 32 bits, and a tail that isn't block aligned.
// The output is streamed through a pipe and checked on the fly: zeros except the marks.
class CatSparse : public CatOutputTest,
                  public ::testing::WithParamInterface<std::vector<std::string>> {};

TEST_P(CatSparse, OverFourGiB) {
    const std::uint64_t size = (std::uint64_t{4} << 30) + 4097;
    const std::string head = "head-mark";
    const std::string tail = "tail-mark";
    std::string path = dir_ + "/sparse";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ASSERT_EQ(::pwrite(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    auto tail_at = static_cast<off_t>(size - tail.size());
    ASSERT_EQ(::pwrite(fd, tail.data(), tail.size(), tail_at), static_cast<ssize_t>(tail.size()));
    ::close(fd);

    std::uint64_t seen = 0;
    std::uint64_t bad = 0;
    std::string tail_seen;
    // Byte by byte only where the marks are; the gigabytes of zeros in between are compared
    // with memcmp, so that the check keeps up with the tool even in a sanitizer build.
    static const std::array<char, 64 * 1024> zeros{};
    auto expected_at = [&](std::uint64_t at) {
        if (at < head.size()) {
            return head[at];
        }
        if (at >= static_cast<std::uint64_t>(tail_at) && at < size) {
            return tail[at - static_cast<std::uint64_t>(tail_at)];
        }
        return '\0';
    };
    auto check = [&](std::string_view chunk) {
        std::size_t i = 0;
        while (i < chunk.size()) {
            std::uint64_t at = seen + i;
            bool in_mark = at < head.size() || at >= static_cast<std::uint64_t>(tail_at);
            if (in_mark) {
                bad += chunk[i] != expected_at(at) ? 1 : 0;
                ++i;
                continue;
            }
            std::uint64_t zeros_left = static_cast<std::uint64_t>(tail_at) - at;
            std::size_t run = static_cast<std::size_t>(
                std::min<std::uint64_t>({zeros_left, chunk.size() - i, zeros.size()}));
            bad += std::memcmp(chunk.data() + i, zeros.data(), run) != 0 ? 1 : 0;
            i += run;
        }
        seen += chunk.size();
    };
    std::vector<std::string> args = GetParam();
    args.insert(args.begin(), "cat");
    args.push_back(path);
    tool_run run{args};
    run.sink = check;
    run.deadline = std::chrono::seconds(50);
    tool_result r = run_tool(run);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(seen, size);
    EXPECT_EQ(bad, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Options,
    CatSparse,
    ::testing::Values(std::vector<std::string>{},
                      std::vector<std::string>{"--direct", "-q", "16", "-b", "1M"}),
    [](const auto& info) { return info.param.empty() ? "Defaults" : "Direct"; });

} // namespace
