// Backend choice under a seccomp filter, in a child: io_uring_setup refused with EPERM (Docker's
// default profile) and the AIO calls refused (EPERM, or ENOSYS as a kernel without AIO answers).
// `auto` warns in one line for each backend it passes over and takes the next; a backend named
// explicitly fails with a reason that names the refusal.

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/syscall.h>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/seccomp.hpp"
#include "support/seccomp_server.hpp"

namespace aioloop {
namespace {

using testing::seccomp_refusal;

const std::vector<int> aio_calls = {SYS_io_setup, SYS_io_submit, SYS_io_getevents};

// In the child: makes a loop on `kind`; prints "backend NAME", each warning as "warning: ...",
// or "error: ..." on stdout, and exits 0 if a loop was made.
int make_loop_and_report(backend_kind kind) {
    loop_options options;
    options.backend = kind;
    options.max_connections = 64;
    options.on_warning = [](std::string_view line) {
        std::printf("warning: %.*s\n", static_cast<int>(line.size()), line.data());
    };
    auto made = loop::create(options);
    if (!made) {
        std::printf("error: %s\n", made.error().message.c_str());
        std::fflush(stdout);
        return 1;
    }
    std::string name((*made)->backend_name());
    std::printf("backend %s\n", name.c_str());
    std::fflush(stdout);
    return 0;
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

bool available(backend_kind kind) {
    loop_options options;
    options.backend = kind;
    options.max_connections = 64;
    return static_cast<bool>(loop::create(options));
}

TEST(SeccompFallback, AutoPicksEpollWhenUringAndAioAreRefused) {
    std::vector<seccomp_refusal> refusals = {{SYS_io_uring_setup, EPERM}};
    for (int call : aio_calls) {
        refusals.push_back({call, EPERM});
    }
    auto child = testing::run_in_child_with_seccomp(
        refusals, [] { return make_loop_and_report(backend_kind::automatic); });
    ASSERT_TRUE(child.ok()) << child.describe() << child.out;
    EXPECT_NE(child.out.find("backend epoll"), std::string::npos) << child.out;
    // One line for each backend passed over.
    EXPECT_EQ(count(child.out, "warning: "), 2u) << child.out;
    EXPECT_NE(child.out.find("warning: aio"), std::string::npos) << child.out;
    EXPECT_NE(child.out.find("warning: uring"), std::string::npos) << child.out;
}

TEST(SeccompFallback, AutoPicksUringWhenAioIsMissing) {
    if (!available(backend_kind::uring)) {
        GTEST_SKIP() << "io_uring unavailable here even without a filter";
    }
    auto child = testing::run_in_child_with_seccomp(
        aio_calls, ENOSYS, [] { return make_loop_and_report(backend_kind::automatic); });
    ASSERT_TRUE(child.ok()) << child.describe() << child.out;
    EXPECT_NE(child.out.find("backend uring"), std::string::npos) << child.out;
    EXPECT_EQ(count(child.out, "warning: "), 1u) << child.out;
    EXPECT_NE(child.out.find("warning: aio"), std::string::npos) << child.out;
}

TEST(SeccompFallback, ExplicitUringUnderARefusalFailsNamingIt) {
    auto child = testing::run_in_child_with_seccomp(
        {SYS_io_uring_setup}, EPERM, [] { return make_loop_and_report(backend_kind::uring); });
    ASSERT_TRUE(child.exited) << child.describe();
    EXPECT_EQ(child.exit_code, 1) << child.out;
    EXPECT_NE(child.out.find("error: "), std::string::npos) << child.out;
    bool named = child.out.find("EPERM") != std::string::npos ||
                 child.out.find("seccomp") != std::string::npos;
    EXPECT_TRUE(named) << "the reason should name EPERM or seccomp: " << child.out;
}

TEST(SeccompFallback, ExplicitAioUnderARefusalFailsNamingIt) {
    auto child = testing::run_in_child_with_seccomp(
        aio_calls, ENOSYS, [] { return make_loop_and_report(backend_kind::aio); });
    ASSERT_TRUE(child.exited) << child.describe();
    EXPECT_EQ(child.exit_code, 1) << child.out;
    EXPECT_NE(child.out.find("error: "), std::string::npos) << child.out;
    EXPECT_EQ(count(child.out, "warning: "), 0u) << child.out;
}

TEST(SeccompFallback, ToolWarnsAndSaysWhichBackendItUses) {
    if (!available(backend_kind::uring)) {
        GTEST_SKIP() << "io_uring unavailable here even without a filter";
    }
    std::vector<seccomp_refusal> refusals;
    for (int call : aio_calls) {
        refusals.push_back({call, ENOSYS});
    }
    auto run = testing::run_server_with_seccomp(
        refusals,
        {AIOLOOP_TOOL_PATH, "echo", "-b", "auto", "--listen", "127.0.0.1:0"},
        std::chrono::milliseconds(10'000));
    ASSERT_TRUE(run.listened) << run.err;
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(count(run.err, "warning: "), 1u) << run.err;
    EXPECT_NE(run.err.find("warning: aio backend unavailable"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("with the uring backend"), std::string::npos) << run.err;
}

} // namespace
} // namespace aioloop
