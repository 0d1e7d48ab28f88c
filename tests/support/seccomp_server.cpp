#include "support/seccomp_server.hpp"

#include <cerrno>

#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace aioloop::testing {

namespace {

// In the child, between fork and exec: the test binary is single-threaded when it forks.
bool install(const std::vector<seccomp_refusal>& refusals) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) {
        return false;
    }
    bool ok = true;
    for (const seccomp_refusal& r : refusals) {
        ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r.errno_value), r.syscall, 0) == 0;
    }
    ok = ok && seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    return ok;
}

} // namespace

seccomp_server_result run_server_with_seccomp(const std::vector<seccomp_refusal>& refusals,
                                              const std::vector<std::string>& argv,
                                              std::chrono::milliseconds timeout) {
    seccomp_server_result result;
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        return result;
    }
    std::vector<std::string> args = argv;
    std::vector<char*> raw;
    for (auto& a : args) {
        raw.push_back(a.data());
    }
    raw.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int null_fd = ::open("/dev/null", O_RDWR);
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::dup2(err_pipe[1], 2);
        if (install(refusals)) {
            ::execv(raw[0], raw.data());
        }
        ::_exit(127);
    }
    ::close(err_pipe[1]);
    if (pid < 0) {
        ::close(err_pipe[0]);
        return result;
    }
    auto until = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    bool terminated = false;
    for (;;) {
        if (!terminated && result.err.find("listening on") != std::string::npos) {
            result.listened = true;
            ::kill(pid, SIGTERM);
            terminated = true;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        until - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{err_pipe[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
            break;
        }
        ssize_t n = ::read(err_pipe[0], buf, sizeof(buf));
        if (n == 0) {
            break; // it exited (or at least closed stderr)
        }
        if (n > 0) {
            result.err.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(err_pipe[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    }
    return result;
}

} // namespace aioloop::testing
