#pragma once

// The echo server: every byte a client sends comes back to it, in order.

#include <cstddef>

#include <aioloop/apps/server.hpp>

namespace aioloop::apps {

struct echo_options {
    /// Bytes read at once; the buffer is lent by a per-loop pool only while data is in flight.
    std::size_t buffer_size = 16 * 1024;
};

/// A handler factory for run_server().
handler_factory make_echo_handler(echo_options options = {});

} // namespace aioloop::apps
