// The loop's backend choice when fs.aio-max-nr leaves no room (auto falls back with a warning
// that names the knob; an explicit aio fails naming it) or only part of the room asked for (the
// aio backend shrinks its context, with a warning). Changes fs.aio-max-nr for the whole machine:
// root only, serial (tests/system), the limit lowered only while a forked child makes its loops,
// and restored by an RAII guard on every path.

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>
#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"

namespace aioloop {
namespace {

constexpr const char* max_nr_path = "/proc/sys/fs/aio-max-nr";

bool write_text(const char* path, const std::string& value) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
    ::close(fd);
    return ok;
}

// Puts fs.aio-max-nr back to what it was, whatever happens in between.
class max_nr_guard {
public:
    explicit max_nr_guard(std::uint64_t saved)
        : saved_(saved) {}
    max_nr_guard(const max_nr_guard&) = delete;
    max_nr_guard& operator=(const max_nr_guard&) = delete;
    ~max_nr_guard() { restore(); }
    bool restore() {
        if (!restored_) {
            restored_ = write_text(max_nr_path, std::to_string(saved_));
        }
        return restored_;
    }

private:
    std::uint64_t saved_;
    bool restored_ = false;
};

struct outcome {
    bool ran = false;
    int exit_code = -1;
    std::string report; // what the child wrote
    bool restored = false;
};

// Sets fs.aio-max-nr to fs.aio-nr + `room`, runs `body` in a forked child, restores the limit as
// soon as the child is done, and returns what the child wrote to its pipe.
outcome with_aio_room(std::uint64_t room, std::function<std::string()> body) {
    outcome out;
    auto before = sys::read_aio_limits();
    int fds[2];
    if (!before || ::pipe2(fds, O_CLOEXEC) != 0) {
        return out;
    }
    int status = 0;
    {
        max_nr_guard guard(before->max_nr);
        auto now = sys::read_aio_limits();
        pid_t pid = now && write_text(max_nr_path, std::to_string(now->nr + room)) ? ::fork() : -1;
        if (pid == 0) {
            ::close(fds[0]);
            std::string text = body();
            bool sent = ::write(fds[1], text.data(), text.size()) == ssize_t(text.size());
            ::_exit(sent ? 0 : 1);
        }
        ::close(fds[1]);
        if (pid > 0) {
            char buf[1024];
            for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) {
                out.report.append(buf, static_cast<std::size_t>(n));
            }
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            out.ran = true;
            out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        out.restored = guard.restore();
    }
    ::close(fds[0]);
    return out;
}

// In the child: makes a loop; the warnings, then "backend NAME" or "error: MESSAGE".
std::string make_loop(backend_kind kind, unsigned max_connections) {
    std::string text;
    loop_options options;
    options.backend = kind;
    options.max_connections = max_connections;
    options.on_warning = [&](std::string_view line) {
        text += "warning: " + std::string(line) + "\n";
    };
    auto made = loop::create(options);
    if (!made) {
        return text + "error: " + made.error().message + "\n";
    }
    // It works: one read through it.
    auto [a, b] = testing::stream_pair();
    testing::write_all(a.get(), "x");
    auto read_one = [](loop* l, int fd) -> task<std::size_t> {
        std::byte buf[4];
        auto reading = l->recv(fd, buf);
        auto r = co_await std::move(reading);
        co_return r ? *r : 0;
    };
    std::size_t got = (*made)->block_on(read_one(made->get(), b.get()));
    return text + "backend " + std::string((*made)->backend_name()) + " read " +
           std::to_string(got) + "\n";
}

class BackendFallback : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root to change fs.aio-max-nr";
        }
        if (::access(max_nr_path, W_OK) != 0) {
            GTEST_SKIP() << max_nr_path << " is read-only here: " << std::strerror(errno);
        }
        auto limits = sys::read_aio_limits();
        ASSERT_TRUE(limits);
        before_ = *limits;
    }
    void TearDown() override {
        if (before_) {
            auto after = sys::read_aio_limits();
            ASSERT_TRUE(after);
            EXPECT_EQ(after->max_nr, before_->max_nr) << "fs.aio-max-nr not restored";
        }
    }
    std::optional<sys::aio_limits> before_;
};

bool uring_available() {
    loop_options options;
    options.backend = backend_kind::uring;
    options.max_connections = 64;
    return static_cast<bool>(loop::create(options));
}

TEST_F(BackendFallback, AutoFallsBackWhenFsAioMaxNrIsFull) {
    auto out = with_aio_room(0, [] { return make_loop(backend_kind::automatic, 64); });
    ASSERT_TRUE(out.ran && out.restored);
    ASSERT_EQ(out.exit_code, 0) << out.report;
    std::string expected = uring_available() ? "backend uring read 1" : "backend epoll read 1";
    EXPECT_NE(out.report.find(expected), std::string::npos) << out.report;
    // One warning line, naming the knob.
    auto first = out.report.find("warning: aio backend unavailable");
    ASSERT_NE(first, std::string::npos) << out.report;
    auto line = out.report.substr(first, out.report.find('\n', first) - first);
    EXPECT_NE(line.find("fs.aio-max-nr"), std::string::npos) << line;
}

TEST_F(BackendFallback, ExplicitAioFailsNamingFsAioMaxNr) {
    auto out = with_aio_room(0, [] { return make_loop(backend_kind::aio, 64); });
    ASSERT_TRUE(out.ran && out.restored);
    ASSERT_EQ(out.exit_code, 0) << out.report;
    EXPECT_NE(out.report.find("error: "), std::string::npos) << out.report;
    EXPECT_NE(out.report.find("fs.aio-max-nr"), std::string::npos) << out.report;
    EXPECT_EQ(out.report.find(" read "), std::string::npos) << out.report; // no loop was made
}

TEST_F(BackendFallback, AioShrinksToThePartThatFits) {
    // 1000 connections ask for 2064 events; 300 fit.
    auto out = with_aio_room(300, [] { return make_loop(backend_kind::aio, 1000); });
    ASSERT_TRUE(out.ran && out.restored);
    ASSERT_EQ(out.exit_code, 0) << out.report;
    EXPECT_NE(out.report.find("backend aio read 1"), std::string::npos) << out.report;
    EXPECT_NE(out.report.find("warning: fs.aio-max-nr="), std::string::npos) << out.report;
    EXPECT_NE(out.report.find("leaves room for 300 of the 2064"), std::string::npos) << out.report;
}

} // namespace
} // namespace aioloop
