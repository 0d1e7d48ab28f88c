#pragma once

// `aioloop http`: a static HTTP/1.1 server (GET and HEAD, keep-alive, pipelining, conditional and
// range requests) whose file reads never block the loop.

#include <chrono>
#include <cstddef>
#include <string>

#include <aioloop/apps/http_request.hpp>
#include <aioloop/apps/server.hpp>
#include <aioloop/result.hpp>

namespace aioloop::apps {

struct http_options {
    std::string root;       ///< the directory served
    std::string access_log; ///< "" none, "-" stdout, else a file appended to
    http::request_limits limits;
    std::chrono::milliseconds header_timeout{10'000}; ///< whole request head, from its first byte
    std::chrono::milliseconds keepalive_timeout{15'000}; ///< idle between requests
    std::chrono::milliseconds send_timeout{30'000};      ///< one write to a client that won't read
    unsigned pool_threads = 4;                           ///< blocking pool threads per loop
    std::size_t cache_entries = 1024;                    ///< open files kept per loop
    std::chrono::milliseconds cache_ttl{1000};           ///< reopened (revalidated) after this
    bool direct_io = true;               ///< aio backend: read page-cache misses with O_DIRECT
    std::size_t chunk_size = 128 * 1024; ///< file bytes read and sent at once
};

/// A handler factory for run_server(), or why the root or the access log can't be opened.
result<handler_factory> make_http_handler(http_options options);

} // namespace aioloop::apps
