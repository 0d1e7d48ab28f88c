#include "support/echo_clients.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aioloop::testing {

namespace {

using steady = std::chrono::steady_clock;

struct connection {
    scoped_fd fd;
    bool connecting = true;
    int message = 0;
    std::size_t size = 0;
    std::size_t sent = 0;
    std::size_t received = 0;
    std::vector<std::byte> out; // the current message
};

void fill(connection& c, std::size_t index) {
    c.out.resize(c.size);
    for (std::size_t i = 0; i < c.size; ++i) {
        c.out[i] = pattern_byte(index, static_cast<std::size_t>(c.message), i);
    }
    c.sent = 0;
    c.received = 0;
}

} // namespace

std::byte pattern_byte(std::size_t connection, std::size_t message, std::size_t offset) noexcept {
    std::uint64_t x = (connection * 0x9e3779b97f4a7c15ULL) ^ (message * 0xbf58476d1ce4e5b9ULL) ^
                      (offset / 8 * 0x94d049bb133111ebULL);
    x ^= x >> 31;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 29;
    return static_cast<std::byte>(x >> (8 * (offset % 8)));
}

echo_report run_echo_clients(const echo_load& load) {
    echo_report report;
    std::mt19937 rng(load.seed);
    // Log-uniform sizes: most messages are small, some are a quarter of a MiB, so the total
    // stays a few MiB while every size class (1 byte, one segment, many socket buffers) occurs.
    std::uniform_real_distribution<double> exponent(0.0, std::log2(double(load.max_message)));
    auto next_size = [&] {
        auto s = static_cast<std::size_t>(std::exp2(exponent(rng)));
        return std::clamp<std::size_t>(s, 1, load.max_message);
    };
    std::vector<connection> conns(load.targets.size());
    auto fail = [&](std::size_t i, const std::string& what) {
        if (report.error.empty()) {
            report.error = fmt::format("connection {} (message {}, {}/{} bytes back): {}",
                                       i,
                                       conns[i].message,
                                       conns[i].received,
                                       conns[i].size,
                                       what);
        }
    };
    for (std::size_t i = 0; i < conns.size(); ++i) {
        const net::address& to = load.targets[i];
        int fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            report.error = fmt::format("socket: {}", std::strerror(errno));
            return report;
        }
        conns[i].fd = scoped_fd(fd);
        if (::connect(fd, to.data(), to.size()) != 0 && errno != EINPROGRESS) {
            fail(i, fmt::format("connect to {}: {}", to.to_string(), std::strerror(errno)));
            return report;
        }
        conns[i].size = next_size();
        fill(conns[i], i);
    }
    auto until = steady::now() + load.deadline;
    std::vector<pollfd> fds;
    std::vector<std::size_t> which;
    std::vector<std::byte> in(128 * 1024);
    for (;;) {
        fds.clear();
        which.clear();
        for (std::size_t i = 0; i < conns.size(); ++i) {
            connection& c = conns[i];
            if (c.fd.get() < 0) {
                continue;
            }
            short events = POLLIN;
            if (c.connecting || c.sent < c.size) {
                events |= POLLOUT;
            }
            fds.push_back({c.fd.get(), events, 0});
            which.push_back(i);
        }
        if (fds.empty()) {
            report.ok = true;
            return report;
        }
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()).count();
        if (left <= 0) {
            fail(which.front(), fmt::format("deadline passed with {} open", fds.size()));
            return report;
        }
        if (::poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) {
            report.error = fmt::format("poll: {}", std::strerror(errno));
            return report;
        }
        for (std::size_t k = 0; k < fds.size(); ++k) {
            std::size_t i = which[k];
            connection& c = conns[i];
            short revents = fds[k].revents;
            if (revents == 0) {
                continue;
            }
            if (c.connecting) {
                int err = 0;
                socklen_t len = sizeof(err);
                ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    fail(i, fmt::format("connect: {}", std::strerror(err)));
                    return report;
                }
                c.connecting = false;
            }
            if ((revents & POLLOUT) != 0 && c.sent < c.size) {
                std::size_t chunk = std::min<std::size_t>(c.size - c.sent, 64 * 1024);
                ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, chunk, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN) {
                    fail(i, fmt::format("send: {}", std::strerror(errno)));
                    return report;
                }
                c.sent += n > 0 ? static_cast<std::size_t>(n) : 0;
            }
            if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            ssize_t n = ::recv(c.fd.get(), in.data(), in.size(), 0);
            if (n < 0) {
                if (errno != EAGAIN) {
                    fail(i, fmt::format("recv: {}", std::strerror(errno)));
                    return report;
                }
                continue;
            }
            if (n == 0) {
                fail(i, "the server closed the connection early");
                return report;
            }
            auto got = static_cast<std::size_t>(n);
            if (c.received + got > c.sent) {
                fail(i,
                     fmt::format("{} bytes back, more than the {} sent", c.received + got, c.sent));
                return report;
            }
            for (std::size_t b = 0; b < got; ++b) {
                if (in[b] != c.out[c.received + b]) {
                    fail(i, fmt::format("byte {} differs", c.received + b));
                    return report;
                }
            }
            c.received += got;
            report.bytes += got;
            if (c.received == c.size) {
                ++report.messages;
                if (++c.message == load.rounds) {
                    c.fd.reset(); // the server reads end of stream and ends its task
                } else {
                    c.size = next_size();
                    fill(c, i);
                }
            }
        }
    }
}

scoped_fd connect_blocking(const net::address& to) {
    scoped_fd fd(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0 || ::connect(fd.get(), to.data(), to.size()) != 0) {
        throw std::runtime_error(
            fmt::format("connect to {}: {}", to.to_string(), std::strerror(errno)));
    }
    return fd;
}

std::string echo_blocking(int fd, std::size_t connection, std::size_t message, std::size_t size) {
    // Written in pieces that fit the socket buffers both ways, so that a blocking writer can't
    // deadlock against an echo server that waits for its reply to be read.
    std::vector<std::byte> out(std::min<std::size_t>(size, 16 * 1024));
    std::vector<std::byte> in(out.size());
    for (std::size_t done = 0; done < size;) {
        std::size_t chunk = std::min(out.size(), size - done);
        for (std::size_t i = 0; i < chunk; ++i) {
            out[i] = pattern_byte(connection, message, done + i);
        }
        if (::send(fd, out.data(), chunk, MSG_NOSIGNAL) != static_cast<ssize_t>(chunk)) {
            return fmt::format("send at {}: {}", done, std::strerror(errno));
        }
        for (std::size_t got = 0; got < chunk;) {
            ssize_t n = ::recv(fd, in.data() + got, chunk - got, 0);
            if (n <= 0) {
                return fmt::format(
                    "recv at {}: {}", done + got, n == 0 ? "end of stream" : std::strerror(errno));
            }
            got += static_cast<std::size_t>(n);
        }
        if (!std::equal(
                out.begin(), out.begin() + static_cast<std::ptrdiff_t>(chunk), in.begin())) {
            return fmt::format("bytes differ in [{}, {})", done, done + chunk);
        }
        done += chunk;
    }
    return {};
}

} // namespace aioloop::testing
