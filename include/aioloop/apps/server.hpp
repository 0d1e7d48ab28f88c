#pragma once

// What every aioloop server shares: one loop per thread, each with its own SO_REUSEPORT listener
// per address; SIGINT/SIGTERM stop accepting and let connections finish within a grace period;
// SIGUSR1 prints the loops' statistics; --metrics serves them to Prometheus.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <aioloop/loop.hpp>
#include <aioloop/net/address.hpp>
#include <aioloop/net/tcp_stream.hpp>
#include <aioloop/task.hpp>

namespace aioloop::apps {

struct server_config {
    std::string name = "server";      ///< for log lines: "aioloop echo: ..."
    std::vector<net::address> listen; ///< one listener per address per thread
    loop_options loop;                ///< backend, max_connections, force_syscalls
    unsigned threads = 1;
    std::chrono::milliseconds grace{5000}; ///< how long connections may finish after a stop
    bool quiet = false;                    ///< no per-connection error lines
    bool print_stats = false;              ///< loop statistics to stderr at exit
    std::optional<net::address> metrics;   ///< serve /metrics (Prometheus text) here
    /// Take SIGINT/SIGTERM (stop) and SIGUSR1 (print statistics) through a signalfd.
    bool handle_signals = true;
    /// Stopping it has the effect of SIGTERM (for code that runs a server, such as tests).
    std::stop_token stop;
    /// Called with the bound addresses once every thread listens (tests learn port 0's port).
    std::function<void(const std::vector<net::address>&)> on_listening;
};

/// Counters an application keeps beside the loop's, summed over threads for --stats and /metrics.
struct app_counters {
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> connections_open{0};
    std::atomic<std::uint64_t> accept_errors{0};
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> requests{0}; ///< where the server can count them
    std::atomic<std::uint64_t> errors{0};   ///< connections ended by an error (app-defined)
    /// A cache of open files (`aioloop http`); printed and exported only once it was used.
    std::atomic<std::uint64_t> file_cache_hits{0};
    std::atomic<std::uint64_t> file_cache_misses{0};
    std::atomic<std::uint64_t> file_cache_evictions{0};
    /// Bulk streams' receive low-water marks (`aioloop proxy`): raised, waits for one that ran
    /// out, and directions that gave up on it (a dialogue); printed and exported once raised.
    std::atomic<std::uint64_t> low_water_raises{0};
    std::atomic<std::uint64_t> low_water_short_waits{0};
    std::atomic<std::uint64_t> low_water_give_ups{0};
};

/// What a connection handler gets besides its stream.
struct connection_context {
    loop& owner;
    app_counters& counters;
    bool quiet;
    /// Stopped when the grace period after SIGTERM runs out: pending operations are cancelled.
    std::stop_token abort;
};

/// Serves one accepted connection until it ends. Runs as a task on the accepting loop.
using connection_handler = std::function<task<void>(net::tcp_stream, connection_context)>;
/// Called once per loop thread before it accepts: returns that thread's handler (state such as a
/// buffer pool lives in the closure, one per loop).
using handler_factory = std::function<connection_handler(loop&)>;

/// Runs the server until SIGINT or SIGTERM, then stops gracefully. Returns the exit code: 0 after
/// a clean stop, 1 when it couldn't start (the reason printed on stderr).
int run_server(const server_config& config, const handler_factory& make_handler);

} // namespace aioloop::apps
