#include <charconv>
#include <cstring>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <fmt/format.h>

#include <aioloop/net/address.hpp>

namespace aioloop::net {

namespace {

struct host_port {
    std::string host;
    std::string port;
};

// "host:port", "[v6]:port" or ":port"; the port is required.
result<host_port> split(std::string_view text) noexcept {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return fail(EINVAL);
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return fail(EINVAL);
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return fail(EINVAL); // a bare IPv6 address needs brackets
        }
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
        return fail(EINVAL);
    }
    return host_port{std::string(host), std::string(port)};
}

} // namespace

address::address(const sockaddr* sa, socklen_t len) noexcept
    : size_(len) {
    std::memcpy(&storage_, sa, std::min<std::size_t>(len, sizeof(storage_)));
}

result<address> address::parse(std::string_view text) noexcept {
    auto parts = split(text);
    if (!parts) {
        return tl::unexpected(parts.error());
    }
    auto port = static_cast<std::uint16_t>(std::stoul(parts->port));
    address out;
    if (parts->host.empty()) {
        parts->host = "0.0.0.0";
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage_);
    if (::inet_pton(AF_INET, parts->host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        out.size_ = sizeof(sockaddr_in);
        return out;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    if (::inet_pton(AF_INET6, parts->host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        out.size_ = sizeof(sockaddr_in6);
        return out;
    }
    return fail(EINVAL);
}

result<std::vector<address>> address::resolve(std::string_view text) {
    if (auto numeric = parse(text)) {
        return std::vector<address>{*numeric};
    }
    auto parts = split(text);
    if (!parts) {
        return tl::unexpected(parts.error());
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(parts->host.c_str(), parts->port.c_str(), &hints, &found) != 0) {
        return fail(EHOSTUNREACH);
    }
    std::vector<address> out;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        out.emplace_back(ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen));
    }
    ::freeaddrinfo(found);
    if (out.empty()) {
        return fail(EHOSTUNREACH);
    }
    return out;
}

std::uint16_t address::port() const noexcept {
    if (family() == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    }
    if (family() == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    }
    return 0;
}

std::string address::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
        ::inet_ntop(AF_INET,
                    &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr,
                    text,
                    sizeof(text));
        return fmt::format("{}:{}", text, port());
    }
    if (family() == AF_INET6) {
        ::inet_ntop(AF_INET6,
                    &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr,
                    text,
                    sizeof(text));
        return fmt::format("[{}]:{}", text, port());
    }
    return "?";
}

} // namespace aioloop::net
