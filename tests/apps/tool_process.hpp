#pragma once

// Runs the built `aioloop` binary as a child process and collects what it writes, with a
// deadline, so that a hung tool fails the test instead of stalling it.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace aioloop::testing {

struct tool_result {
    int exit_code = -1; ///< -1 when killed by a signal or the deadline
    int signal = 0;
    bool timed_out = false;
    std::string out; ///< stdout, unless a sink consumed it
    std::string err;
};

struct tool_run {
    explicit tool_run(std::vector<std::string> arguments, int stdin_from = -1)
        : args(std::move(arguments))
        , stdin_fd(stdin_from) {}

    std::vector<std::string> args;              ///< after the binary name
    int stdin_fd = -1;                          ///< -1: /dev/null
    int stdout_fd = -1;                         ///< -1: a pipe read into out (or sink)
    std::function<void(std::string_view)> sink; ///< consumes stdout instead of `out`
    std::chrono::seconds deadline{30};
};

inline tool_result run_tool(const tool_run& run) {
    tool_result r;
    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    if (run.stdout_fd < 0 && ::pipe2(out_pipe, O_CLOEXEC) != 0) {
        return r;
    }
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        return r;
    }
    std::vector<std::string> args{AIOLOOP_TOOL_PATH};
    args.insert(args.end(), run.args.begin(), run.args.end());
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int in = run.stdin_fd >= 0 ? run.stdin_fd : ::open("/dev/null", O_RDONLY);
        ::dup2(in, 0);
        ::dup2(run.stdout_fd >= 0 ? run.stdout_fd : out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    if (out_pipe[1] >= 0) {
        ::close(out_pipe[1]);
    }
    ::close(err_pipe[1]);
    auto until = std::chrono::steady_clock::now() + run.deadline;
    std::vector<char> buf(1 << 20);
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0) {
            continue;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
            if (n <= 0) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                continue;
            }
            std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
            if (i == 1) {
                r.err.append(chunk);
            } else if (run.sink) {
                run.sink(chunk);
            } else {
                r.out.append(chunk);
            }
        }
    }
    for (auto& f : fds) {
        if (f.fd >= 0) {
            ::close(f.fd);
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) {
        r.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
    }
    return r;
}

} // namespace aioloop::testing
