// The server under test as a child process: started (pinned to core 0 on request), watched until
// it listens, and stopped; its stderr is drained by a thread so that it never blocks on a pipe.

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aioloop/apps/bench.hpp>

namespace aioloop::apps {

struct server_process::log_state {
    std::mutex mutex;
    std::string text;
    bool closed = false;
    std::thread reader;
    ~log_state() {
        if (reader.joinable()) {
            reader.join();
        }
    }
};

namespace {

// The port after the last colon of the word that follows `marker`; 0 if none.
std::uint16_t port_after(const std::string& log, const std::string& marker) {
    auto at = log.find(marker);
    if (at == std::string::npos) {
        return 0;
    }
    auto begin = at + marker.size();
    auto end = log.find_first_of(" ,/\n", begin);
    if (end == std::string::npos) {
        return 0; // the line is not complete yet
    }
    std::string where = log.substr(begin, end - begin);
    auto colon = where.rfind(':');
    if (colon == std::string::npos || colon + 1 >= where.size()) {
        return 0;
    }
    return static_cast<std::uint16_t>(std::strtoul(where.c_str() + colon + 1, nullptr, 10));
}

bool can_connect(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    ::close(fd);
    return ok;
}

// Binding the port ourselves first tells "in use" apart from a server that fails for another
// reason; otherwise a connect to someone else's listener would pass for the server's.
std::string port_in_use(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return {};
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    std::string why;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno == EADDRINUSE) {
        why = "127.0.0.1:" + std::to_string(port) +
              " is already in use by another process (ss -ltnp 'sport = :" + std::to_string(port) +
              "' shows which); stop it or let the bench pick another port";
    }
    ::close(fd);
    return why;
}

} // namespace

tl::expected<server_process, std::string> server_process::start(const server_spec& spec) {
    if (!spec.aioloop && spec.port != 0) {
        if (auto why = port_in_use(spec.port); !why.empty()) {
            return tl::unexpected(why);
        }
    }
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        return tl::unexpected(std::string("pipe: ") + std::strerror(errno));
    }
    std::vector<std::string> argv = spec.argv;
    std::vector<char*> args;
    for (auto& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        if (spec.pin) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(spec.core, &set);
            ::sched_setaffinity(0, sizeof(set), &set);
        }
        int in = ::open("/dev/null", O_RDWR);
        ::dup2(in, 0);
        ::dup2(in, 1);
        ::dup2(err_pipe[1], 2);
        ::execv(args[0], args.data());
        ::dprintf(2, "exec %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(err_pipe[1]);
    if (pid < 0) {
        ::close(err_pipe[0]);
        return tl::unexpected(std::string("fork: ") + std::strerror(errno));
    }
    server_process server;
    server.pid_ = pid;
    server.log_ = std::make_shared<log_state>();
    server.log_->reader = std::thread([log = server.log_.get(), fd = err_pipe[0]] {
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            std::lock_guard lock(log->mutex);
            if (n <= 0) {
                log->closed = true;
                break;
            }
            log->text.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
    });
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        std::string text;
        {
            std::lock_guard lock(server.log_->mutex);
            text = server.log_->text;
        }
        if (spec.aioloop) {
            server.port_ = port_after(text, "listening on ");
            server.metrics_port_ = port_after(text, "metrics at http://");
            if (server.port_ != 0 && server.metrics_port_ != 0) {
                auto with = text.find(" with the ");
                if (!spec.expect_backend.empty() && with != std::string::npos &&
                    text.compare(with + 10,
                                 spec.expect_backend.size() + 1,
                                 spec.expect_backend + " ") != 0) {
                    // An explicit backend is never silently replaced; this only guards it.
                    server.stop();
                    return tl::unexpected("the server did not use the " + spec.expect_backend +
                                          " backend: " + text);
                }
                return server;
            }
        } else if (can_connect(spec.port)) {
            server.port_ = spec.port;
            return server;
        }
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            server.pid_ = -1;
            server.log_->reader.join();
            std::lock_guard lock(server.log_->mutex);
            std::string why = server.log_->text;
            while (!why.empty() && why.back() == '\n') {
                why.pop_back();
            }
            return tl::unexpected((WIFEXITED(status)
                                       ? "exited with " + std::to_string(WEXITSTATUS(status))
                                       : "killed by signal " + std::to_string(WTERMSIG(status))) +
                                  (why.empty() ? std::string() : ": " + why));
        }
        if (std::chrono::steady_clock::now() >= until) {
            server.stop();
            return tl::unexpected("not listening after 5 s: " + text);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

server_process::server_process(server_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1))
    , port_(other.port_)
    , metrics_port_(other.metrics_port_)
    , log_(std::move(other.log_)) {
}

server_process::~server_process() {
    stop();
}

void server_process::stop() noexcept {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= until) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
}

} // namespace aioloop::apps
