#include <filesystem>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/http_path.hpp>

#include "support/sockets.hpp"

namespace aioloop::apps::http {
namespace {

namespace fs = std::filesystem;

TEST(HttpPath, DecodesAndNormalises) {
    EXPECT_EQ(decode_target_path("/").relative, "");
    EXPECT_TRUE(decode_target_path("/").directory);
    EXPECT_EQ(decode_target_path("/a%20b/c.txt?x=/../..").relative, "a b/c.txt");
    EXPECT_EQ(decode_target_path("//a/./b//c").relative, "a/b/c");
    EXPECT_EQ(decode_target_path("/a/../b").relative, "b");
    EXPECT_EQ(decode_target_path("/a/%2e%2E/b").relative, "b");
    EXPECT_TRUE(decode_target_path("/dir/").directory);
    EXPECT_FALSE(decode_target_path("/dir").directory);
}

TEST(HttpPath, RefusesLeavingTheRoot) {
    EXPECT_EQ(decode_target_path("/..").status, 400);
    EXPECT_EQ(decode_target_path("/../etc/passwd").status, 400);
    EXPECT_EQ(decode_target_path("/a/../../etc").status, 400);
    EXPECT_EQ(decode_target_path("/%2e%2e/etc/passwd").status, 400);
    EXPECT_EQ(decode_target_path("/a%2f..%2f..%2fetc").status, 400); // encoded slash
    EXPECT_EQ(decode_target_path("/a%2F").status, 400);
    EXPECT_EQ(decode_target_path("/a%00.html").status, 400);
    EXPECT_EQ(decode_target_path("/a%zz").status, 400);
    EXPECT_EQ(decode_target_path("/a%2").status, 400);
    EXPECT_EQ(decode_target_path("relative").status, 400);
}

TEST(HttpPath, RefusesHiddenFiles) {
    EXPECT_EQ(decode_target_path("/.git/config").status, 404);
    EXPECT_EQ(decode_target_path("/a/.htpasswd").status, 404);
    EXPECT_EQ(decode_target_path("/a/%2ehidden").status, 404);
    EXPECT_EQ(decode_target_path("/a/b.c").status, 0);
}

class HttpOpen : public ::testing::Test {
protected:
    void SetUp() override {
        base_ = fs::path(testing::temp_path("http_open"));
        fs::create_directories(base_ / "root" / "sub");
        fs::create_directories(base_ / "root" / "noindex");
        std::ofstream(base_ / "root" / "index.html") << "home";
        std::ofstream(base_ / "root" / "sub" / "index.html") << "sub";
        std::ofstream(base_ / "root" / "a.txt") << "aaa";
        std::ofstream(base_ / "secret.txt") << "secret";
        fs::create_symlink(base_ / "secret.txt", base_ / "root" / "out");
        fs::create_symlink("../secret.txt", base_ / "root" / "out_relative");
        fs::create_symlink("a.txt", base_ / "root" / "in");
        ::mkfifo((base_ / "root" / "fifo").c_str(), 0600);
        root_ = ::open((base_ / "root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_GE(root_, 0);
    }
    void TearDown() override {
        ::close(root_);
        fs::remove_all(base_);
    }
    std::string read_all(const std::string& relative) {
        auto f = open_beneath(root_, relative);
        EXPECT_TRUE(f) << relative << ": " << f.error().message();
        if (!f) {
            return {};
        }
        std::string s(static_cast<std::size_t>(f->st.st_size), '\0');
        EXPECT_EQ(::pread(f->fd, s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
        ::close(f->fd);
        return s;
    }
    fs::path base_;
    int root_ = -1;
};

TEST_F(HttpOpen, OpensFilesAndDirectoryIndexes) {
    EXPECT_EQ(read_all("a.txt"), "aaa");
    EXPECT_EQ(read_all(""), "home");
    EXPECT_EQ(read_all("sub"), "sub");
    EXPECT_EQ(read_all("in"), "aaa"); // a link that stays inside the root is fine
}

TEST_F(HttpOpen, SymlinksOutOfTheRootAreRefused) {
    for (const char* name : {"out", "out_relative"}) {
        auto f = open_beneath(root_, name);
        ASSERT_FALSE(f) << name;
        EXPECT_EQ(status_for_open_error(f.error()), 404) << f.error().message();
    }
    // The kernel refuses ".." past the root too, should decoding ever let one through.
    auto up = open_beneath(root_, "../secret.txt");
    ASSERT_FALSE(up);
    EXPECT_EQ(status_for_open_error(up.error()), 404);
}

TEST_F(HttpOpen, MissingDirectoriesWithoutIndexAndSpecialFiles) {
    auto missing = open_beneath(root_, "nope.txt");
    ASSERT_FALSE(missing);
    EXPECT_EQ(status_for_open_error(missing.error()), 404);
    auto noindex = open_beneath(root_, "noindex");
    ASSERT_FALSE(noindex);
    EXPECT_EQ(status_for_open_error(noindex.error()), 404);
    auto fifo = open_beneath(root_, "fifo"); // O_NONBLOCK: opening a FIFO does not hang
    ASSERT_FALSE(fifo);
    EXPECT_EQ(status_for_open_error(fifo.error()), 403);
    auto notdir = open_beneath(root_, "a.txt/x");
    ASSERT_FALSE(notdir);
    EXPECT_EQ(status_for_open_error(notdir.error()), 404);
}

} // namespace
} // namespace aioloop::apps::http
