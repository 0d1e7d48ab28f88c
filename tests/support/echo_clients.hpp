#pragma once

// Echo clients for loop tests: plain non-blocking sockets driven by poll(2) on the calling thread
// (never the library under test), each connection sending messages of random size and checking
// every byte that comes back.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <aioloop/net/address.hpp>

#include "support/sockets.hpp"

namespace aioloop::testing {

struct echo_load {
    /// Where each connection goes: one entry per connection.
    std::vector<net::address> targets;
    int rounds = 2;                           ///< messages per connection, one after the other
    std::size_t max_message = 256 * 1024;     ///< sizes are log-uniform in [1, max_message]
    std::uint32_t seed = 1;                   ///< the same seed gives the same sizes and bytes
    std::chrono::milliseconds deadline{8000}; ///< the whole load, connects included
};

struct echo_report {
    bool ok = false;
    std::string error; ///< the first thing that went wrong, with the connection's number
    std::uint64_t bytes = 0;
    std::size_t messages = 0;
};

/// Runs the load to the end (every message echoed and checked, then each socket closed) or to the
/// first error or the deadline.
echo_report run_echo_clients(const echo_load& load);

/// The byte at `offset` of message `message` of connection `connection`: cheap to recompute
/// when checking, and different for every place a byte could be misdelivered to.
std::byte pattern_byte(std::size_t connection, std::size_t message, std::size_t offset) noexcept;

/// A blocking TCP connection to `to`; throws std::runtime_error when it can't connect.
scoped_fd connect_blocking(const net::address& to);

/// Sends `size` pattern bytes of (connection, message) on a blocking socket and reads them back,
/// checking each; returns an empty string or what went wrong.
std::string echo_blocking(int fd, std::size_t connection, std::size_t message, std::size_t size);

} // namespace aioloop::testing
