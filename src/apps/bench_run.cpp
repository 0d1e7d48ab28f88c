// The benchmark's driver: for each round, each server in turn (interleaved, so that the noise of a
// shared machine hits them alike) is started, loaded for the window, measured and stopped.

#include <cstdio>
#include <filesystem>
#include <set>

#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

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

// One window against a running server: load, kernel-counted calls, CPU time, its own counters.
bench_sample measure(const bench_config& config, const server_spec& spec, server_process& server) {
    bench_sample s;
    s.server = spec.name;
    auto counter = syscall_counter::open(server.pid());
    if (!counter) {
        s.error = "perf_event_open(raw_syscalls:sys_enter): " + counter.error().message();
        return s;
    }
    load_config load;
    load.target = *net::address::parse(fmt::format("127.0.0.1:{}", server.port()));
    load.connections = config.connections;
    load.min_size = load.max_size = config.size;
    load.duration = config.duration;
    load.rate = config.rate;
    load.loop.backend = backend_kind::aio;
    load.loop.on_warning = [](std::string_view) {};
    auto cpu0 = process_cpu_ns(server.pid());
    counter->enable();
    auto done = run_load(load);
    counter->disable();
    auto cpu1 = process_cpu_ns(server.pid());
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
    s.p50_us = static_cast<double>(r.latency.percentile(50)) / 1e3;
    s.p99_us = static_cast<double>(r.latency.percentile(99)) / 1e3;
    s.p999_us = static_cast<double>(r.latency.percentile(99.9)) / 1e3;
    if (r.requests == 0) {
        s.error = "no request answered" + (r.first_error.empty() ? "" : ": " + r.first_error);
        return s;
    }
    double n = static_cast<double>(r.requests);
    s.syscalls_per_request = static_cast<double>(s.syscalls) / n;
    if (cpu0 && cpu1) {
        s.cpu_us_per_request = static_cast<double>(*cpu1 - *cpu0) / 1e3 / n;
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

} // namespace

tl::expected<bench_report, std::string> run_bench(const bench_config& config) {
    if (config.scenario != "echo") {
        return tl::unexpected("scenario " + config.scenario + " is not implemented yet (echo is)");
    }
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
    bench_report report;
    report.config = config;
    report.syscall_ns = measure_syscall_ns();
    auto specs = servers_of(config);
    std::set<std::string> skipped;
    for (unsigned round = 1; round <= config.rounds; ++round) {
        for (auto& spec : specs) {
            if (skipped.contains(spec.name)) {
                continue;
            }
            if (!spec.aioloop) {
                if (::access(spec.argv[0].c_str(), X_OK) != 0) {
                    skipped.insert(spec.name);
                    bench_sample s;
                    s.server = spec.name;
                    s.round = round;
                    s.error = "skipped: " + spec.argv[0] + " not found (build target " +
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
            auto server = server_process::start(spec);
            if (!server) {
                s.server = spec.name;
                // A backend the kernel lacks fails on its first start: skip it from then on.
                if (round == 1) {
                    skipped.insert(spec.name);
                    s.error = "skipped: server failed to start: " + server.error();
                } else {
                    s.error = "server failed to start: " + server.error();
                }
            } else {
                s = measure(config, spec, *server);
                server->stop();
            }
            s.round = round;
            if (config.progress) {
                fmt::print(stderr, "{}\n", format_bench_sample(s));
            }
            report.samples.push_back(std::move(s));
        }
    }
    report.summaries = summarize(report.samples);
    return report;
}

} // namespace aioloop::apps
