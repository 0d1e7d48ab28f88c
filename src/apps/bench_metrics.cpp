// Reads the server's own counters from its Prometheus /metrics (a blocking GET on loopback).

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <aioloop/apps/bench.hpp>

namespace aioloop::apps {

tl::expected<std::map<std::string, double>, std::string> scrape_metrics(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return tl::unexpected(std::string("socket: ") + std::strerror(errno));
    }
    timeval timeout{2, 0}; // a scrape that hangs must not hang the benchmark
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string body;
    std::string error;
    static constexpr char request[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        error = std::string("connect: ") + std::strerror(errno);
    } else if (::send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) !=
               static_cast<ssize_t>(sizeof(request) - 1)) {
        error = std::string("send: ") + std::strerror(errno);
    } else {
        char buf[8192];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                error = std::string("recv: ") + std::strerror(errno);
            }
            if (n <= 0) {
                break;
            }
            body.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    if (!error.empty()) {
        return tl::unexpected("metrics on port " + std::to_string(port) + ": " + error);
    }
    auto blank = body.find("\r\n\r\n");
    if (body.compare(0, 12, "HTTP/1.1 200") != 0 && body.compare(0, 12, "HTTP/1.0 200") != 0) {
        return tl::unexpected("metrics on port " + std::to_string(port) + ": unexpected answer " +
                              body.substr(0, body.find('\r')));
    }
    std::map<std::string, double> values;
    std::istringstream lines(blank == std::string::npos ? std::string() : body.substr(blank + 4));
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        auto space = line.rfind(' ');
        if (space == std::string::npos) {
            continue;
        }
        values[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
    }
    return values;
}

} // namespace aioloop::apps
