#pragma once

// What the proxy tests share: `aioloop proxy` started from the built tool on port 0 for one
// backend, blocking client sockets with time limits, and upstreams served by a test thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/child_process.hpp"
#include "support/sockets.hpp"
#include "support/tool_server.hpp"

namespace aioloop::testing::proxy {

using namespace std::chrono_literals;

/// A loopback listener on port 0 (127.0.0.1, or ::1 when `v6`), blocking.
inline scoped_fd listen_loopback(bool v6 = false) {
    scoped_fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        ::listen(fd.get(), 128) != 0) {
        return {};
    }
    return fd;
}

inline std::uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

/// A port nothing listens on (bound, then closed): connects to it are refused.
inline std::uint16_t closed_port() {
    scoped_fd fd = listen_loopback();
    return local_port(fd.get());
}

/// Sets send and receive timeouts so that a blocked test fails instead of hanging.
inline void limit_time(int fd, std::chrono::milliseconds limit = 10s) {
    timeval tv{static_cast<time_t>(limit.count() / 1000),
               static_cast<suseconds_t>((limit.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/// A blocking connection to host:port with the time limits above; -1 inside on failure.
inline scoped_fd connect_to(const std::string& host, std::uint16_t port) {
    bool v6 = host.find(':') != std::string::npos;
    scoped_fd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        ::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
        len = sizeof(*a);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        ::inet_pton(AF_INET, host.c_str(), &a->sin_addr);
        len = sizeof(*a);
    }
    limit_time(fd.get());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        return {};
    }
    return fd;
}

inline bool send_all(int fd, const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

inline bool send_all(int fd, const std::string& data) {
    return send_all(fd, data.data(), data.size());
}

/// Reads until end of stream; `error` gets errno if the stream ended with an error instead.
inline std::string read_to_end(int fd, int* error = nullptr) {
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue; // a child of another test ended (SIGCHLD)
        }
        if (n < 0) {
            if (error != nullptr) {
                *error = errno;
            }
            return out;
        }
        if (n == 0) {
            if (error != nullptr) {
                *error = 0;
            }
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

/// Accepts one connection on `listener` (blocking, time-limited).
inline scoped_fd accept_one(int listener) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) {
        return {};
    }
    scoped_fd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    limit_time(fd.get());
    return fd;
}

/// A deterministic pseudo-random byte stream (splitmix64), so that a receiver can regenerate
/// what the sender sent and compare every byte.
class byte_stream {
public:
    explicit byte_stream(std::uint64_t seed)
        : state_(seed) {}
    void fill(char* out, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            if (left_ == 0) {
                std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
                word_ = z ^ (z >> 31);
                left_ = 8;
            }
            out[i] = static_cast<char>(word_ & 0xff);
            word_ >>= 8;
            --left_;
        }
    }

private:
    std::uint64_t state_;
    std::uint64_t word_ = 0;
    int left_ = 0;
};

/// `aioloop proxy` on one backend, from each test's GetParam().
// The number after `name` and spaces at the start of a line (--stats, /metrics); -1 if absent.
inline long long number_after(const std::string& text, const std::string& name) {
    for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
        std::size_t value = at + name.size();
        if ((at > 0 && text[at - 1] != '\n') || value >= text.size() || text[value] != ' ') {
            continue;
        }
        return std::stoll(text.substr(text.find_first_not_of(' ', value)));
    }
    return -1;
}

class proxy_tool_test : public ::testing::TestWithParam<backend_kind> {
protected:
    void SetUp() override {
        std::string why = backend_unavailable(GetParam());
        if (!why.empty()) {
            GTEST_SKIP() << why;
        }
    }

    tool_server start_proxy(const std::string& upstream,
                            std::vector<std::string> extra = {},
                            const std::string& listen = "127.0.0.1:0") {
        std::vector<std::string> args{"proxy",
                                      "--backend",
                                      std::string(to_string(GetParam())),
                                      "--listen",
                                      listen,
                                      "--upstream",
                                      upstream};
        args.insert(args.end(), extra.begin(), extra.end());
        tool_server s = start_tool_server(args);
        EXPECT_NE(s.port, 0) << s.process->err();
        return s;
    }

    static int stop(tool_server& s) {
        s.process->signal(SIGTERM);
        return s.process->wait(10s).value_or(-1);
    }
};

inline std::string backend_name(const ::testing::TestParamInfo<backend_kind>& info) {
    return std::string(to_string(info.param));
}

inline auto all_backends() {
    return ::testing::Values(backend_kind::aio, backend_kind::epoll, backend_kind::uring);
}

} // namespace aioloop::testing::proxy
