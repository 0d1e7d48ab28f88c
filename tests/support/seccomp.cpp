#include "support/seccomp.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aioloop::testing {

namespace {

// Only async-signal-safe work would be strictly allowed after fork() in a threaded parent; the
// test binaries are single-threaded when they call us, and libseccomp only allocates.
bool install_filter(const std::vector<seccomp_refusal>& refusals) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) {
        return false;
    }
    bool ok = true;
    for (const seccomp_refusal& refusal : refusals) {
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(refusal.errno_value), refusal.syscall, 0) < 0) {
            ok = false;
        }
    }
    // seccomp_load sets no_new_privs first (SCMP_FLTATR_CTL_NNP defaults on), so no privilege is
    // needed.
    if (ok && seccomp_load(ctx) < 0) {
        ok = false;
    }
    seccomp_release(ctx);
    return ok;
}

void write_all_fd(int fd, const char* text) {
    std::size_t left = std::strlen(text);
    while (left > 0) {
        ssize_t n = ::write(fd, text, left);
        if (n <= 0) {
            return;
        }
        text += n;
        left -= static_cast<std::size_t>(n);
    }
}

// Reads both pipes until both close, killing the child once the deadline passes.
void drain(
    pid_t pid, int out_fd, int err_fd, std::chrono::milliseconds timeout, child_result& result) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_pipes = 2;
    while (open_pipes > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            result.timed_out = true;
            break;
        }
        int n = ::poll(fds, 2, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            char buf[4096];
            ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
            if (got > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(got));
            } else if (got == 0 || errno != EINTR) {
                fds[i].fd = -1;
                --open_pipes;
            }
        }
    }
}

child_result run_child(const std::vector<seccomp_refusal>& refusals,
                       const std::function<int()>& child_main,
                       std::chrono::milliseconds timeout) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) < 0) {
        throw std::runtime_error(fmt::format("pipe2: {}", std::strerror(errno)));
    }
    if (::pipe2(err_pipe, O_CLOEXEC) < 0) {
        int err = errno;
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        throw std::runtime_error(fmt::format("pipe2: {}", std::strerror(err)));
    }
    // Whatever the parent buffered must not be written twice, once by each process.
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
            ::close(fd);
        }
        throw std::runtime_error(fmt::format("fork: {}", std::strerror(err)));
    }
    if (pid == 0) {
        // dup2 clears O_CLOEXEC on the copies, so an exec'd program keeps them as 1 and 2.
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        if (!install_filter(refusals)) {
            write_all_fd(STDERR_FILENO, "seccomp: can't install the filter\n");
            ::_exit(127);
        }
        int code = 126;
        try {
            code = child_main();
        } catch (const std::exception& e) {
            write_all_fd(STDERR_FILENO, e.what());
        } catch (...) {
            write_all_fd(STDERR_FILENO, "unknown exception");
        }
        // _exit skips the parent's atexit handlers (gtest's among them): flush by hand.
        std::fflush(nullptr);
        ::_exit(code);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    child_result result;
    drain(pid, out_pipe[0], err_pipe[0], timeout, result);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        result.exited = true;
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    return result;
}

std::vector<seccomp_refusal> same_errno(const std::vector<int>& syscalls, int errno_value) {
    std::vector<seccomp_refusal> refusals;
    for (int nr : syscalls) {
        refusals.push_back({nr, errno_value});
    }
    return refusals;
}

} // namespace

std::string child_result::describe() const {
    std::string how = timed_out ? "timed out"
                      : exited  ? fmt::format("exit {}", exit_code)
                                : fmt::format("killed by signal {}", signal);
    return fmt::format("child {}; stderr: {}", how, err.empty() ? "(empty)" : err);
}

child_result run_in_child_with_seccomp(std::vector<seccomp_refusal> refusals,
                                       std::function<int()> body,
                                       std::chrono::milliseconds timeout) {
    return run_child(refusals, body, timeout);
}

child_result run_in_child_with_seccomp(const std::vector<int>& syscalls,
                                       int errno_value,
                                       std::function<int()> body,
                                       std::chrono::milliseconds timeout) {
    return run_child(same_errno(syscalls, errno_value), body, timeout);
}

child_result exec_with_seccomp(std::vector<seccomp_refusal> refusals,
                               const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) {
    if (argv.empty()) {
        throw std::invalid_argument("exec_with_seccomp: empty argv");
    }
    // Built before fork so that the child only execs.
    std::vector<char*> args;
    for (const std::string& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    auto exec = [&args]() -> int {
        ::execv(args[0], args.data());
        std::string why = fmt::format("execv {}: {}\n", args[0], std::strerror(errno));
        write_all_fd(STDERR_FILENO, why.c_str());
        return 127;
    };
    return run_child(refusals, exec, timeout);
}

child_result exec_with_seccomp(const std::vector<int>& syscalls,
                               int errno_value,
                               const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) {
    return exec_with_seccomp(same_errno(syscalls, errno_value), argv, timeout);
}

} // namespace aioloop::testing
