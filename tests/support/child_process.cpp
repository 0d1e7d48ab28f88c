#include "support/child_process.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace aioloop::testing {

child_process::child_process(std::vector<std::string> argv, int stdin_fd, int stdout_fd) {
    int err_pipe[2];
    int out_pipe[2] = {-1, -1};
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        return;
    }
    if (stdout_fd < 0 && ::pipe2(out_pipe, O_CLOEXEC) != 0) {
        ::close(err_pipe[0]);
        ::close(err_pipe[1]);
        return;
    }
    std::vector<char*> args;
    for (auto& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
        int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
        ::dup2(in, 0);
        ::dup2(stdout_fd >= 0 ? stdout_fd : out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(err_pipe[1]);
    if (out_pipe[1] >= 0) {
        ::close(out_pipe[1]);
    }
    if (pid_ < 0) {
        ::close(err_pipe[0]);
        if (out_pipe[0] >= 0) {
            ::close(out_pipe[0]);
        }
        return;
    }
    readers_.emplace_back([this, fd = err_pipe[0]] { collect(fd, &err_); });
    if (out_pipe[0] >= 0) {
        readers_.emplace_back([this, fd = out_pipe[0]] { collect(fd, &out_); });
    }
}

child_process::~child_process() {
    if (pid_ > 0 && !status_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    for (auto& r : readers_) {
        r.join();
    }
}

void child_process::collect(int fd, std::string* into) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        std::lock_guard lock(mutex_);
        into->append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
}

bool child_process::wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout) {
    return wait_for_stderr_count(needle, 1, timeout);
}

bool child_process::wait_for_stderr_count(const std::string& needle,
                                          std::size_t times,
                                          std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            std::size_t found = 0;
            for (auto at = err_.find(needle); at != std::string::npos;
                 at = err_.find(needle, at + needle.size())) {
                ++found;
            }
            if (found >= times) {
                return true;
            }
        }
        if (exited() || std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::string child_process::err() const {
    std::lock_guard lock(mutex_);
    return err_;
}

std::string child_process::out() const {
    std::lock_guard lock(mutex_);
    return out_;
}

void child_process::signal(int signo) const noexcept {
    if (pid_ > 0 && !status_) {
        ::kill(pid_, signo);
    }
}

bool child_process::exited() {
    if (pid_ <= 0 || status_) {
        return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = status;
        return true;
    }
    return false;
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (!exited()) {
        if (std::chrono::steady_clock::now() >= until) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            status_ = status;
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& r : readers_) {
        r.join();
    }
    readers_.clear();
    if (!status_ || !WIFEXITED(*status_)) {
        return std::nullopt;
    }
    return WEXITSTATUS(*status_);
}

namespace {

std::uint16_t port_after(const std::string& log, const std::string& marker) {
    auto at = log.find(marker);
    if (at == std::string::npos) {
        return 0;
    }
    // "HOST:PORT" or "[V6]:PORT": the port follows the last colon before the next space/slash.
    auto end = log.find_first_of(" ,/\n", at + marker.size());
    std::string where = log.substr(at + marker.size(), end - at - marker.size());
    auto colon = where.rfind(':');
    if (colon == std::string::npos) {
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoul(where.substr(colon + 1)));
}

} // namespace

std::uint16_t listening_port(const std::string& log) {
    return port_after(log, "listening on ");
}

std::uint16_t metrics_port(const std::string& log) {
    return port_after(log, "at http://");
}

std::uint64_t raise_fd_limit(std::uint64_t n) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < n) {
        limit.rlim_cur = std::min<rlim_t>(n, limit.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return limit.rlim_cur;
}

std::string shell_output(const std::string& command) {
    std::string out;
    std::FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) {
        return out;
    }
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        out.append(buf.data(), n);
    }
    ::pclose(p);
    return out;
}

} // namespace aioloop::testing
