// The benchmark's driver: for each round, each server in turn (interleaved, so that the noise of a
// shared machine hits them alike) is started, loaded for the window, measured and stopped.

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>
#include <stop_token>
#include <thread>

#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

#include "apps/bench_window.hpp"

namespace aioloop::apps {

namespace {

// A port free now, for the reference servers, which take no port 0.
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    std::uint16_t port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return port;
}

double sum_prefix(const std::map<std::string, double>& m, const std::string& prefix) {
    double total = 0;
    for (auto it = m.lower_bound(prefix); it != m.end() && it->first.starts_with(prefix); ++it) {
        total += it->second;
    }
    return total;
}

double get(const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
}

void take_metrics(bench_sample& s, const std::map<std::string, double>& m) {
    s.has_metrics = true;
    s.server_requests = get(m, "aioloop_requests_total");
    s.server_bytes_out = get(m, R"(aioloop_bytes_total{direction="out"})");
    s.loop_syscalls = sum_prefix(m, "aioloop_syscalls_total{");
    s.io_submit_calls = get(m, R"(aioloop_syscalls_total{name="io_submit"})");
    s.iocbs_submitted = get(m, "aioloop_iocbs_submitted_total");
    s.events_ring = get(m, R"(aioloop_events_total{source="ring"})");
    s.events_syscall = get(m, R"(aioloop_events_total{source="syscall"})");
}

// The server's own descriptor limit (inherited from us) must hold the connections.
std::string check_server_nofile(pid_t pid, unsigned connections) {
    rlimit limit{};
    if (::prlimit(pid, RLIMIT_NOFILE, nullptr, &limit) == 0 && limit.rlim_cur < connections + 64) {
        return fmt::format("the server's RLIMIT_NOFILE is {}, too low for {} connections",
                           limit.rlim_cur,
                           connections);
    }
    return {};
}

// One window against a running server: load, kernel-counted calls, CPU time, its own counters.
bench_sample measure(const bench_config& config,
                     const server_spec& spec,
                     server_process& server,
                     unsigned connections) {
    bench_sample s;
    s.server = spec.name;
    s.connections = connections;
    if (s.error = check_server_nofile(server.pid(), connections); !s.error.empty()) {
        return s;
    }
    auto counter = syscall_counter::open(server.pid());
    if (!counter) {
        s.error = "perf_event_open(raw_syscalls:sys_enter): " + counter.error().message();
        return s;
    }
    load_config load;
    load.target = *net::address::parse(fmt::format("127.0.0.1:{}", server.port()));
    load.connections = connections;
    load.min_size = load.max_size = config.size;
    load.duration = config.duration;
    load.rate = config.rate;
    load.loop.backend = backend_kind::aio;
    load.loop.on_warning = [](std::string_view) {};
    if (spec.prepare_load) {
        spec.prepare_load(load);
    }
    if (spec.before_load) {
        spec.before_load();
    }
    // One interval as long as the window: intervals[0] holds the requests answered within it.
    load.interval = config.duration;
    detail::window_meter window(*counter, server.pid(), config.duration, spec.upstream_pid);
    load.on_start = [&window] { window.start(); };
    std::jthread timer([&window](std::stop_token stop) { window.run(stop); });
    auto done = run_load(load);
    timer.request_stop();
    timer.join();
    if (spec.after_load) {
        spec.after_load(s);
    }
    if (!done) {
        s.error = "load generator: " + done.error().message;
        return s;
    }
    const load_result& r = *done;
    s.syscalls = counter->count();
    s.client_requests = r.requests;
    s.client_bytes = r.bytes;
    s.client_errors = r.errors.total();
    s.requests_per_second = r.requests_per_second();
    s.client_cpu_us_per_request = r.cpu_us_per_request();
    if (r.duration.count() > 0) {
        s.client_cpu_percent = 100.0 * static_cast<double>((r.cpu_user + r.cpu_system).count()) /
                               static_cast<double>(r.duration.count());
    }
    s.window_requests = r.intervals.empty() ? 0 : r.intervals[0].requests;
    s.window_seconds = window.started() ? window.seconds() : 0;
    s.server_wait_percent = window.server_wait_percent().value_or(s.server_wait_percent);
    s.client_wait_percent = window.client_wait_percent().value_or(s.client_wait_percent);
    s.upstream_cpu_percent = window.upstream_cpu_percent().value_or(s.upstream_cpu_percent);
    if (config.pin) {
        s.server_core_percent = window.core_busy_percent(0).value_or(s.server_core_percent);
        s.server_core_softirq_percent =
            window.core_softirq_percent(0).value_or(s.server_core_softirq_percent);
        s.client_core_percent = window.core_busy_percent(1).value_or(s.client_core_percent);
    }
    s.p50_us = static_cast<double>(r.latency.percentile(50)) / 1e3;
    s.p99_us = static_cast<double>(r.latency.percentile(99)) / 1e3;
    s.p999_us = static_cast<double>(r.latency.percentile(99.9)) / 1e3;
    if (s.window_requests == 0 || s.window_seconds <= 0) {
        s.error = "no request answered" + (r.first_error.empty() ? "" : ": " + r.first_error);
        return s;
    }
    // Every per-request figure is over the same window: from all connections up to the deadline.
    double n = static_cast<double>(s.window_requests);
    s.requests_per_second = n / s.window_seconds;
    s.syscalls_per_request = static_cast<double>(s.syscalls) / n;
    if (auto cpu = window.cpu_ns()) {
        s.cpu_us_per_request = static_cast<double>(*cpu) / 1e3 / n;
    }
    if (spec.aioloop) {
        auto metrics = scrape_metrics(server.metrics_port());
        if (!metrics) {
            s.error = metrics.error();
            return s;
        }
        take_metrics(s, *metrics);
    }
    s.ok = s.client_errors == 0;
    if (!s.ok) {
        s.error = fmt::format("{} client errors{}",
                              s.client_errors,
                              r.first_error.empty() ? "" : ": " + r.first_error);
    }
    return s;
}

std::vector<server_spec> servers_of(const bench_config& config) {
    std::vector<server_spec> specs;
    for (const auto& b : config.backends) {
        server_spec spec;
        spec.name = b;
        spec.argv = {config.self_exe,
                     "echo",
                     "--listen",
                     "127.0.0.1:0",
                     "--backend",
                     b,
                     "--quiet",
                     "--metrics",
                     "127.0.0.1:0"};
        spec.expect_backend = b;
        spec.pin = config.pin;
        specs.push_back(std::move(spec));
    }
    if (config.reference) {
        std::error_code ec;
        auto exe = std::filesystem::read_symlink(config.self_exe, ec);
        auto dir = (ec ? std::filesystem::path(config.self_exe) : exe).parent_path() / "bench" /
                   "reference";
        for (const auto& b : config.backends) {
            server_spec spec;
            spec.name = "ref-" + b;
            spec.argv = {(dir / ("ref_echo_" + b)).string()};
            spec.aioloop = false;
            spec.pin = config.pin;
            specs.push_back(std::move(spec));
        }
    }
    return specs;
}

// N connections need N descriptors in the client (this process) and N in the server, which
// inherits our limits across fork and exec: raise the soft limit to the hard one when short.
tl::expected<void, std::string> raise_nofile(unsigned connections) {
    rlim_t needed = rlim_t{connections} + 256; // loops, perf counters, metrics, stdio
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return tl::unexpected(std::string("getrlimit(RLIMIT_NOFILE) failed"));
    }
    if (limit.rlim_cur >= needed) {
        return {};
    }
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
        return tl::unexpected(
            fmt::format("{} connections need about {} file descriptors in the client and in the "
                        "server, but RLIMIT_NOFILE's hard limit is {}: raise it (ulimit -Hn, "
                        "limits.conf, LimitNOFILE=) or use fewer connections",
                        connections,
                        needed,
                        limit.rlim_max));
    }
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return tl::unexpected(fmt::format(
            "setrlimit(RLIMIT_NOFILE, {}) failed for {} connections", limit.rlim_max, connections));
    }
    return {};
}

// The spec at a connection count: the server sized for it (its AIO context, its ring).
server_spec at_count(const server_spec& spec, unsigned connections) {
    server_spec out = spec;
    auto most = std::to_string(std::max(4096u, connections + 64));
    if (out.aioloop) {
        out.argv.push_back("--max-connections");
        out.argv.push_back(most);
    } else {
        out.argv.push_back(most); // ref_echo_* PORT ADDR [MAX_CONNS]
    }
    return out;
}

// Other processes on the machine may hold all of fs.aio-max-nr for a moment (io_setup's EAGAIN):
// worth one more try after a second rather than a lost round or a skipped backend.
bool transient(const std::string& error) {
    return error.find("fs.aio-max-nr") != std::string::npos;
}

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", &tm);
    return text;
}

} // namespace

std::vector<unsigned> connection_counts(const bench_config& config) {
    return config.sweep.empty() ? std::vector<unsigned>{config.connections} : config.sweep;
}

tl::expected<bench_report, std::string> run_bench(const bench_config& config) {
    if (auto id = sys_enter_tracepoint_id(); !id) {
        return tl::unexpected(
            std::string("no raw_syscalls:sys_enter tracepoint under /sys/kernel/tracing or "
                        "/sys/kernel/debug/tracing (mount tracefs, or run as root)"));
    }
    if (config.pin) {
        if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) {
            return tl::unexpected(std::string("--pin needs two cores (server on 0, load on 1)"));
        }
        // The load generator's threads inherit this; the servers set core 0 before exec.
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(1, &set);
        if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
            return tl::unexpected(std::string("sched_setaffinity(core 1) failed"));
        }
    }
    auto counts = connection_counts(config);
    if (auto raised = raise_nofile(*std::max_element(counts.begin(), counts.end())); !raised) {
        return tl::unexpected(raised.error());
    }
    bench_report report;
    report.config = config;
    report.cores = static_cast<unsigned>(::sysconf(_SC_NPROCESSORS_ONLN));
    report.date = utc_now();
    report.syscall_ns = measure_syscall_ns();
    std::vector<server_spec> specs;
    if (config.scenario == "echo") {
        specs = servers_of(config);
    } else {
        // After the pinning above: the scenario may start an upstream server of its own.
        auto setup = scenario_setup(config);
        if (!setup) {
            return tl::unexpected(setup.error());
        }
        specs = std::move(setup->servers);
        report.note = std::move(setup->note);
    }
    std::set<std::string> skipped;
    std::set<std::string> tried;
    // Rounds interleave the servers within each connection count.
    for (unsigned connections : counts) {
        for (unsigned round = 1; round <= config.rounds; ++round) {
            for (auto& spec : specs) {
                if (skipped.contains(spec.name)) {
                    continue;
                }
                if (!spec.aioloop) {
                    if (!spec.missing.empty() || ::access(spec.argv[0].c_str(), X_OK) != 0) {
                        skipped.insert(spec.name);
                        bench_sample s;
                        s.server = spec.name;
                        s.round = round;
                        s.connections = connections;
                        s.error =
                            !spec.missing.empty()
                                ? spec.missing
                                : "skipped: " + spec.argv[0] + " not found (build target " +
                                      std::filesystem::path(spec.argv[0]).filename().string() + ")";
                        report.samples.push_back(s);
                        if (config.progress) {
                            fmt::print(stderr, "{}\n", format_bench_sample(s));
                        }
                        continue;
                    }
                    spec.port = free_port();
                    spec.argv.resize(1);
                    spec.argv.push_back(std::to_string(spec.port));
                    spec.argv.push_back("127.0.0.1");
                }
                bench_sample s;
                auto start = [&]() -> tl::expected<server_process, std::string> {
                    if (!spec.make_argv) {
                        return server_process::start(at_count(spec, connections));
                    }
                    // A peer (haproxy, nginx): its configuration names the port and the count.
                    auto argv = spec.make_argv(spec.port, connections);
                    if (!argv) {
                        return tl::unexpected(argv.error());
                    }
                    server_spec peer = spec;
                    peer.argv = std::move(*argv);
                    return server_process::start(peer);
                };
                auto start_again = [&]() -> tl::expected<server_process, std::string> {
                    auto once = start();
                    if (once || !transient(once.error())) {
                        return once;
                    }
                    std::this_thread::sleep_for(std::chrono::seconds(1));
                    return start();
                };
                auto server = start_again();
                bool first = tried.insert(spec.name).second;
                if (!server) {
                    s.server = spec.name;
                    // A backend the kernel lacks fails on its first start: skip it from then on.
                    if (first) {
                        skipped.insert(spec.name);
                        s.error = "skipped: server failed to start: " + server.error();
                    } else {
                        s.error = "server failed to start: " + server.error();
                    }
                } else {
                    s = measure(config, spec, *server, connections);
                    if (!s.ok && transient(s.error)) {
                        std::this_thread::sleep_for(std::chrono::seconds(1));
                        s = measure(config, spec, *server, connections);
                    }
                    server->stop();
                }
                s.round = round;
                s.connections = connections;
                if (config.progress) {
                    fmt::print(stderr, "{}\n", format_bench_sample(s));
                }
                report.samples.push_back(std::move(s));
            }
        }
    }
    report.summaries = summarize(report.samples);
    return report;
}

} // namespace aioloop::apps
