#pragma once

// The TCP proxy: every client gets its own upstream connection and bytes move both ways, each
// direction a coroutine; half-closes and resets are forwarded, buffers are lent only while bytes
// are in flight, and a slow reader on one side pauses reading on the other.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <aioloop/apps/server.hpp>
#include <aioloop/net/address.hpp>

namespace aioloop::apps {

struct proxy_options {
    /// Where to connect, tried in order until one accepts (resolved once, at start).
    std::vector<net::address> upstream;
    /// The upstream as the user wrote it ("redis.local:6379"), for log lines.
    std::string upstream_name;
    /// How long one connect attempt may take; the next address is tried after it.
    std::chrono::milliseconds connect_timeout{5000};
    /// A pair that moves no byte either way for this long is closed; 0: never.
    std::chrono::milliseconds idle_timeout{0};
    /// Bytes read at once per direction; a direction holds at most two while a bulk transfer runs.
    std::size_t buffer_size = 64 * 1024;
    /// Bytes read at once by a direction whose last read filled its buffer (a bulk transfer):
    /// bigger reads and writes carry more bytes per io_submit. Not above `buffer_size`: never
    /// grow.
    std::size_t bulk_buffer_size = 256 * 1024;
    /// A direction that keeps moving bulk buffers raises its source's receive low-water mark to
    /// this many bytes (SO_RCVLOWAT), so that a proxy faster than its sender wakes once per this
    /// many bytes instead of once per TCP segment; 0: never.
    std::size_t bulk_low_water = 256 * 1024;
    /// How long a wait for the low-water mark may last: a sender that stops short of it has its
    /// last bytes forwarded this late at most. Two such waits with an answer from the other peer
    /// in between (a dialogue of big messages) keep the mark down until the direction has waited
    /// 200 ms for a byte.
    std::chrono::microseconds bulk_low_water_wait{1000};
};

/// A handler factory for run_server(). Counters: bytes_in is what clients sent, bytes_out what they
/// received, requests the pairs connected to the upstream, errors the failed connects and the
/// pairs ended by an error (a reset, a write to a closed peer).
handler_factory make_proxy_handler(proxy_options options);

} // namespace aioloop::apps
