#pragma once

// IPv4 and IPv6 socket addresses: parsed from "HOST:PORT" / "[V6]:PORT", resolved once at start.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include <aioloop/result.hpp>

namespace aioloop::net {

class address {
public:
    address() = default;
    address(const sockaddr* sa, socklen_t len) noexcept;

    /// A numeric "1.2.3.4:80", "[::1]:80" or ":80" (all IPv4 interfaces). EINVAL otherwise.
    static result<address> parse(std::string_view text) noexcept;
    /// "HOST:PORT" with a name looked up by getaddrinfo (blocking: call it at start), IPv6 and
    /// IPv4 answers in the resolver's order. Errors are EINVAL or EHOSTUNREACH for no answer.
    static result<std::vector<address>> resolve(std::string_view text);

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return size_; }
    void set_size(socklen_t size) noexcept { size_ = size; }
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
    int family() const noexcept { return storage_.ss_family; }
    std::uint16_t port() const noexcept;
    /// "1.2.3.4:80" or "[::1]:80".
    std::string to_string() const;

private:
    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

} // namespace aioloop::net
