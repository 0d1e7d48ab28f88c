#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

// Changes fs.aio-max-nr for the whole machine: this binary runs alone (RUN_SERIAL), needs root,
// and keeps the window in which the limit is lowered as short as it can, since any other process
// that calls io_setup meanwhile fails too.

namespace aioloop::sys {
namespace {

constexpr const char* max_nr_path = "/proc/sys/fs/aio-max-nr";

std::string read_file(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    std::string text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text;
}

bool write_file(const char* path, const std::string& value) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
    ::close(fd);
    return ok;
}

// Puts fs.aio-max-nr back to the value it had when constructed, whatever happens in between.
class aio_max_nr_guard {
public:
    aio_max_nr_guard()
        : saved_(read_file(max_nr_path)) {}
    aio_max_nr_guard(const aio_max_nr_guard&) = delete;
    aio_max_nr_guard& operator=(const aio_max_nr_guard&) = delete;
    ~aio_max_nr_guard() { restore(); }

    const std::string& saved() const noexcept { return saved_; }

    bool restore() {
        if (saved_.empty() || restored_) {
            return true;
        }
        restored_ = write_file(max_nr_path, saved_);
        return restored_;
    }

private:
    std::string saved_;
    bool restored_ = false;
};

// What the child saw, sent to the parent through a pipe.
struct child_report {
    int error = 0; // errno of aio_context::create(1); 0 if it succeeded
    std::uint64_t max_nr = 0;
    char message[400] = {};
};

TEST(AioMaxNr, SetupFailsWithEagainWhenTheSystemLimitIsReached) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to change fs.aio-max-nr";
    }
    if (::access(max_nr_path, W_OK) != 0) {
        GTEST_SKIP() << max_nr_path << " is read-only here: " << std::strerror(errno);
    }
    auto before = read_aio_limits();
    ASSERT_TRUE(before);

    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    child_report report;
    int status = 0;
    bool lowered = false;
    {
        aio_max_nr_guard guard;
        ASSERT_FALSE(guard.saved().empty());
        // Lowest window first: lower, fork, let the child try, restore. No assertion in between,
        // so nothing can leave this block early; the guard restores on any exit anyway.
        auto now = read_aio_limits();
        lowered = now && write_file(max_nr_path, std::to_string(now->nr));
        pid_t pid = lowered ? ::fork() : -1;
        if (pid == 0) {
            // The child: only async-signal-safe-ish work and _exit, never back into gtest.
            ::close(fds[0]);
            child_report r;
            auto ctx = aio_context::create(1);
            r.error = ctx ? 0 : ctx.error().value();
            if (auto limits = read_aio_limits()) {
                r.max_nr = limits->max_nr;
            }
            if (!ctx) {
                std::string m = setup_error_message(1, ctx.error());
                std::strncpy(r.message, m.c_str(), sizeof(r.message) - 1);
            }
            bool sent = ::write(fds[1], &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r));
            ::_exit(sent ? 0 : 1);
        }
        if (pid > 0) {
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        EXPECT_TRUE(guard.restore()) << "could not restore fs.aio-max-nr=" << guard.saved();
        EXPECT_GT(pid, 0) << "fork failed";
    }
    ::close(fds[1]);
    ssize_t got = ::read(fds[0], &report, sizeof(report));
    ::close(fds[0]);

    // Restored, before anything else is judged.
    auto after = read_aio_limits();
    ASSERT_TRUE(after);
    EXPECT_EQ(after->max_nr, before->max_nr);
    ASSERT_TRUE(lowered) << "could not lower fs.aio-max-nr";
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    ASSERT_EQ(got, static_cast<ssize_t>(sizeof(report)));

    EXPECT_EQ(report.error, EAGAIN)
        << "io_setup(1) under a full fs.aio-max-nr: " << std::strerror(report.error);
    std::string message = report.message;
    EXPECT_NE(message.find("io_setup(1): EAGAIN"), std::string::npos) << message;
    EXPECT_NE(message.find("fs.aio-max-nr=" + std::to_string(report.max_nr)), std::string::npos)
        << message;
    // fs.aio-nr moves with every other process's io_setup: its value is only named.
    EXPECT_NE(message.find("fs.aio-nr="), std::string::npos) << message;
    EXPECT_NE(message.find("sysctl -w fs.aio-max-nr="), std::string::npos) << message;
}

} // namespace
} // namespace aioloop::sys
