#pragma once

// `aioloop bench`: the echo server under test runs in a child process (one per backend and
// round, pinned to core 0 with --pin), the project's load generator drives it in-process (core 1),
// and the kernel counts the server's system calls (raw_syscalls:sys_enter through
// perf_event_open) while /proc/PID/task/*/schedstat gives its CPU time. Backends are interleaved
// round by round so that the noise of a shared machine hits them alike.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <aioloop/apps/load.hpp>
#include <aioloop/result.hpp>

namespace aioloop::apps {

/// Counts the system calls a process (all its threads, and threads it makes later) enters, as the
/// kernel sees them: one raw_syscalls:sys_enter counter per thread.
class syscall_counter {
public:
    /// Counters for every thread of `pid`, disabled until enable(). ENOENT when tracefs has no
    /// raw_syscalls:sys_enter; EACCES/EPERM when perf_event_paranoid forbids it.
    static result<syscall_counter> open(pid_t pid);

    syscall_counter(syscall_counter&& other) noexcept;
    syscall_counter& operator=(syscall_counter&& other) noexcept;
    syscall_counter(const syscall_counter&) = delete;
    syscall_counter& operator=(const syscall_counter&) = delete;
    ~syscall_counter();

    void enable() noexcept;
    void disable() noexcept;
    /// The calls counted so far, summed over threads.
    std::uint64_t count() const noexcept;

private:
    syscall_counter() = default;
    std::vector<int> fds_;
};

/// The id of raw_syscalls:sys_enter from tracefs (/sys/kernel/tracing or .../debug/tracing).
result<std::uint64_t> sys_enter_tracepoint_id();

/// Nanoseconds of one cheap system call (getppid through syscall(2)), the best of a few runs
/// of `calls` calls.
double measure_syscall_ns(std::uint64_t calls = 1000000);

/// CPU time of all threads of `pid` in ns (from /proc/PID/task/*/schedstat); nullopt if gone.
std::optional<std::uint64_t> process_cpu_ns(pid_t pid);

/// A server under test: a child process whose stderr is collected by a thread.
struct bench_sample;

struct server_spec {
    std::string name;              ///< "aio", "ref-epoll"... as reported
    std::vector<std::string> argv; ///< argv[0] is a path
    bool aioloop = true;           ///< prints "listening on" / "metrics at"; false: reference
    std::uint16_t port = 0;        ///< reference servers: the port given them
    std::string expect_backend;    ///< aioloop: the backend its log must name
    bool pin = false;              ///< core 0 before exec
    unsigned core = 0;             ///< with pin: the core it runs on
    /// Peers other than aioloop (haproxy, nginx): why it is skipped when it is not installed.
    std::string missing;
    /// Peers: writes their configuration for this port and connection count and returns argv
    /// (the reference servers take the port on their command line instead); the error says why.
    std::function<tl::expected<std::vector<std::string>, std::string>(std::uint16_t port,
                                                                      unsigned connections)>
        make_argv;
    /// Scenarios: sets the load's protocol (http) before a run.
    std::function<void(load_config&)> prepare_load;
    /// Scenarios: called just before and after the load, e.g. to read an upstream's counters.
    std::function<void()> before_load;
    std::function<void(bench_sample&)> after_load;
    /// Proxy: the bench's own upstream echo behind the server; its CPU is measured over the
    /// window, and with --pin (it runs on core 1 with the load) counted as the bench's own work
    /// there, not as another process's. 0: none.
    pid_t upstream_pid = 0;
};

class server_process {
public:
    /// Starts it and waits (up to 5 s) until it listens. The error's message says why not,
    /// with the server's stderr.
    static tl::expected<server_process, std::string> start(const server_spec& spec);

    server_process(server_process&& other) noexcept;
    server_process& operator=(server_process&&) = delete;
    server_process(const server_process&) = delete;
    ~server_process();

    pid_t pid() const noexcept { return pid_; }
    std::uint16_t port() const noexcept { return port_; }
    std::uint16_t metrics_port() const noexcept { return metrics_port_; }
    /// SIGTERM, then SIGKILL after a second. Idempotent.
    void stop() noexcept;

private:
    server_process() = default;
    struct log_state;
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::uint16_t metrics_port_ = 0;
    std::shared_ptr<log_state> log_;
};

/// GETs http://127.0.0.1:PORT/metrics and returns each `name{labels} value` line's value by its
/// full name (labels included, as written); the error names what failed.
tl::expected<std::map<std::string, double>, std::string> scrape_metrics(std::uint16_t port);

struct bench_config {
    std::string scenario = "echo";
    std::vector<std::string> backends{"aio", "epoll", "uring"};
    unsigned connections = 200;
    std::size_t size = 64;
    std::chrono::milliseconds duration{3000};
    unsigned rounds = 3;
    bool pin = false;
    double rate = 0;        ///< open loop when > 0
    bool reference = false; ///< also bench/reference/ref_echo_* next to the tool
    std::string self_exe = "/proc/self/exe";
    double kpti_extra_ns = 200; ///< assumed extra cost of a call on a KPTI host
    bool progress = true;       ///< a line per run on stderr
    /// Sweep: every server at each of these connection counts (rounds interleaved within a
    /// count); empty: `connections` alone.
    std::vector<unsigned> sweep;
    std::string command_line; ///< as the user typed it, for the plot's footnote
};

/// One server in one round.
struct bench_sample {
    std::string server;
    unsigned round = 0;
    bool ok = false;
    std::string error;
    double requests_per_second = 0;
    std::uint64_t client_requests = 0;
    std::uint64_t client_bytes = 0;
    std::uint64_t client_errors = 0;
    double p50_us = 0, p99_us = 0, p999_us = 0;
    std::uint64_t syscalls = 0; ///< kernel count, measured window
    double syscalls_per_request = 0;
    double cpu_us_per_request = 0; ///< server, measured window
    double client_cpu_us_per_request = 0;
    unsigned connections = 0;          ///< this sample's connection count
    std::uint64_t window_requests = 0; ///< answered within the measured window
    double window_seconds = 0;         ///< from the last connection up to the deadline
    /// The load generator's busy share of its core over its run, percent (user + system CPU of
    /// its thread / wall time): near 100 the client, not the server, set the pace.
    double client_cpu_percent = 0;
    /// With --pin: how busy core 0 (the server's) and core 1 (the load's) were over the window,
    /// whoever ran there (softirq and other tenants included), percent; NaN when not pinned.
    double server_core_percent = std::numeric_limits<double>::quiet_NaN();
    double server_core_softirq_percent = std::numeric_limits<double>::quiet_NaN();
    double client_core_percent = std::numeric_limits<double>::quiet_NaN();
    /// Share of the window the server's threads (summed) and the load generator's thread were
    /// runnable but waiting for a CPU (schedstat's run_delay), percent: what other processes
    /// took from them. NaN when unknown.
    double server_wait_percent = std::numeric_limits<double>::quiet_NaN();
    double client_wait_percent = std::numeric_limits<double>::quiet_NaN();
    bool has_upstream = false;    ///< proxy: the upstream echo's counters over the load
    double upstream_requests = 0; ///< messages the echo server behind the proxy answered
    double upstream_bytes_out = 0;
    /// Proxy: the upstream echo's CPU time over the window as a share of it, percent (with
    /// --pin, of core 1, which it shares with the load generator); NaN when there is none.
    double upstream_cpu_percent = std::numeric_limits<double>::quiet_NaN();
    bool has_metrics = false;
    double server_requests = 0; ///< from /metrics (since start)
    double server_bytes_out = 0;
    double loop_syscalls = 0; ///< the loop's own count (since start)
    double io_submit_calls = 0;
    double iocbs_submitted = 0;
    double events_ring = 0;
    double events_syscall = 0;
};

struct bench_summary {
    std::string server;
    unsigned connections = 0;
    unsigned ok_rounds = 0;
    std::string skipped; ///< why it was not measured at all
    // median, min, max
    std::array<double, 3> rps{}, p50{}, p99{}, p999{}, sys_per_req{}, cpu_us{};
    double iocbs_per_submit = 0; ///< medians over rounds (0 when not AIO)
    double ring_share = 0;
    std::array<double, 3> client_cpu_percent{};
};

struct bench_report {
    bench_config config;
    double syscall_ns = 0;
    std::vector<bench_sample> samples;
    std::vector<bench_summary> summaries;
    unsigned cores = 0; ///< online CPUs when it ran
    std::string note;   ///< the scenario's setup (the upstream, the file served), for the header
    std::string date;   ///< UTC, when it started
};

/// The servers of the proxy and http scenarios (aioloop per backend, then haproxy or nginx),
/// and what they share for the whole run (a temp dir, the upstream echo server), which lives as
/// long as the specs do.
struct bench_setup {
    std::vector<server_spec> servers;
    std::string note;
};
/// Fails when the shared part can't be set up (no temp dir, the upstream echo doesn't start).
tl::expected<bench_setup, std::string> scenario_setup(const bench_config& config);

/// Runs every round; fails only on a bad configuration (no tracepoint, --pin on one core).
tl::expected<bench_report, std::string> run_bench(const bench_config& config);

/// Above this share of its core (percent) the load generator set the pace: a round is client-bound.
inline constexpr double client_bound_percent = 90;

/// Whether other processes shared the load generator's core in run `s` (with --pin): core 1 was
/// over client_bound_percent busy while the bench's own work there (the load generator's thread
/// and, in the proxy scenario, the upstream echo) took under half of it. False when not known.
bool load_core_shared(const bench_sample& s) noexcept;

/// The connection counts a run covers: config.sweep, or config.connections alone.
std::vector<unsigned> connection_counts(const bench_config& config);
/// The same, comma-separated ("1,10,100").
std::string connection_counts_text(const bench_config& config);

/// Medians and spread per connection count and server, in the order first seen.
std::vector<bench_summary> summarize(const std::vector<bench_sample>& samples);
std::string format_bench_sample(const bench_sample& s);
std::string format_bench_table(const bench_report& report);
std::string format_bench_json(const bench_report& report);
/// The sweep table: a row per server and connection count (req/s, syscalls/req, CPU, p99).
std::string format_bench_sweep_table(const bench_report& report);
/// An SVG picture of the report: req/s with min-max whiskers and p99 per server, and with a
/// sweep, req/s, p99, syscalls and CPU per request against connections (log x axis).
std::string format_bench_svg(const bench_report& report);

} // namespace aioloop::apps
