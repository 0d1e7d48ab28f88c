#pragma once

// The loop's and the application's counters in the Prometheus text format (version 0.0.4), from
// which system calls per request follow: syscalls_total / requests_total.

#include <string>
#include <string_view>

#include <aioloop/apps/server.hpp>
#include <aioloop/stats.hpp>

namespace aioloop::apps {

/// The exposition text for `stats` (summed over loops) and `counters`.
std::string
format_prometheus(std::string_view backend, const loop_stats& stats, const app_counters& counters);

/// Answers HTTP GET /metrics on one connection with whatever `render()` returns; 404 otherwise.
task<void> serve_metrics_connection(net::tcp_stream stream, std::function<std::string()> render);

} // namespace aioloop::apps
