// The benchmark's figures for people: a line per run, a table of medians and spreads per
// connection count, and with a sweep, a compact table over the counts.

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

namespace aioloop::apps {

namespace {

// Median, min, max.
std::array<double, 3> spread(std::vector<double> v) {
    if (v.empty()) {
        return {0, 0, 0};
    }
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return {median, v.front(), v.back()};
}

const bench_summary*
find(const std::vector<bench_summary>& all, const std::string& name, unsigned connections) {
    for (const auto& s : all) {
        if (s.server == name && s.connections == connections && s.ok_rounds > 0) {
            return &s;
        }
    }
    return nullptr;
}

std::string ratio(double x, double base) {
    return base > 0 ? fmt::format("{:.2f}", x / base) : std::string("-");
}

} // namespace

std::vector<bench_summary> summarize(const std::vector<bench_sample>& samples) {
    std::vector<bench_summary> out;
    std::vector<std::pair<unsigned, std::string>> order;
    for (const auto& s : samples) {
        std::pair key{s.connections, s.server};
        if (std::find(order.begin(), order.end(), key) == order.end()) {
            order.push_back(key);
        }
    }
    for (const auto& [connections, name] : order) {
        bench_summary sum;
        sum.server = name;
        sum.connections = connections;
        std::vector<double> rps, p50, p99, p999, sys, cpu, batch, ring, client;
        for (const auto& s : samples) {
            if (s.server != name || s.connections != connections) {
                continue;
            }
            if (!s.ok) {
                if (s.error.starts_with("skipped")) {
                    sum.skipped = s.error;
                }
                continue;
            }
            ++sum.ok_rounds;
            rps.push_back(s.requests_per_second);
            p50.push_back(s.p50_us);
            p99.push_back(s.p99_us);
            p999.push_back(s.p999_us);
            sys.push_back(s.syscalls_per_request);
            cpu.push_back(s.cpu_us_per_request);
            client.push_back(s.client_cpu_percent);
            if (s.io_submit_calls > 0) {
                batch.push_back(s.iocbs_submitted / s.io_submit_calls);
            }
            if (s.events_ring + s.events_syscall > 0 && s.io_submit_calls > 0) {
                ring.push_back(s.events_ring / (s.events_ring + s.events_syscall));
            }
        }
        sum.rps = spread(rps);
        sum.p50 = spread(p50);
        sum.p99 = spread(p99);
        sum.p999 = spread(p999);
        sum.sys_per_req = spread(sys);
        sum.cpu_us = spread(cpu);
        sum.iocbs_per_submit = spread(batch)[0];
        sum.ring_share = spread(ring)[0];
        sum.client_cpu_percent = spread(client);
        out.push_back(std::move(sum));
    }
    return out;
}

bool load_core_shared(const bench_sample& s) noexcept {
    // The upstream of the proxy scenario runs on core 1 with the load by design: it is ours.
    double ours =
        s.client_cpu_percent + (std::isnan(s.upstream_cpu_percent) ? 0.0 : s.upstream_cpu_percent);
    // NaN (not pinned) compares false.
    return s.ok && s.client_core_percent > client_bound_percent && ours < s.client_core_percent / 2;
}

std::string format_bench_sample(const bench_sample& s) {
    if (!s.ok) {
        return fmt::format(
            "round {} {:<10} {:>5} conn  {}", s.round, s.server, s.connections, s.error);
    }
    std::string line = fmt::format(
        "round {} {:<10} {:>5} conn {:>9.0f} req/s  p50 {:.0f} p99 {:.0f} p99.9 {:.0f} us  "
        "{:.3f} syscalls/req  {:.2f} us cpu/req  client {:.0f}%",
        s.round,
        s.server,
        s.connections,
        s.requests_per_second,
        s.p50_us,
        s.p99_us,
        s.p999_us,
        s.syscalls_per_request,
        s.cpu_us_per_request,
        s.client_cpu_percent);
    if (s.has_upstream) {
        line += fmt::format("  (upstream answered {:.0f}, client counted {})",
                            s.upstream_requests,
                            s.client_requests);
    } else if (s.has_metrics) {
        line += fmt::format(
            "  (server answered {:.0f}, client counted {})", s.server_requests, s.client_requests);
    }
    if (!std::isnan(s.server_wait_percent) && !std::isnan(s.client_wait_percent)) {
        line += fmt::format("  waited for a CPU: server {:.0f}% client {:.0f}%",
                            s.server_wait_percent,
                            s.client_wait_percent);
    }
    if (!std::isnan(s.server_core_percent)) {
        line += fmt::format("  core0 {:.0f}% (softirq {:.0f}%) core1 {:.0f}%",
                            s.server_core_percent,
                            s.server_core_softirq_percent,
                            s.client_core_percent);
        if (!std::isnan(s.upstream_cpu_percent)) {
            line += fmt::format(" (upstream {:.0f}%)", s.upstream_cpu_percent);
        }
    }
    if (s.client_cpu_percent > client_bound_percent) {
        line += "  CLIENT-BOUND";
    }
    return line;
}

namespace {

// The table of one connection count: a row per server, ratios against epoll at that count.
std::string count_table(const bench_report& report, unsigned connections) {
    const auto& c = report.config;
    std::string out =
        fmt::format("{:<10} {:>19} {:>8} {:>8} {:>8} {:>17} {:>17} {:>7} {:>6} {:>7} {:>7} {:>7}\n",
                    "server",
                    "req/s (min-max)",
                    "p50 us",
                    "p99 us",
                    "p99.9us",
                    "syscalls/req",
                    "cpu us/req",
                    "iocb/sb",
                    "ring%",
                    "sys/ep",
                    "cpu/ep",
                    "client%");
    const bench_summary* epoll = find(report.summaries, "epoll", connections);
    const bench_summary* ref_epoll = find(report.summaries, "ref-epoll", connections);
    for (const auto& s : report.summaries) {
        if (s.connections != connections) {
            continue;
        }
        if (s.ok_rounds == 0) {
            out += fmt::format(
                "{:<10} {}\n", s.server, s.skipped.empty() ? "no round succeeded" : s.skipped);
            continue;
        }
        const bench_summary* base = s.server.starts_with("ref-") ? ref_epoll : epoll;
        out += fmt::format(
            "{:<10} {:>7.0f} ({:.0f}-{:.0f}) {:>8.0f} {:>8.0f} {:>8.0f} {:>5.3f} ({:.2f}-{:.2f}) "
            "{:>5.2f} ({:.2f}-{:.2f}) {:>7} {:>6} {:>7} {:>7} {:>7.0f}\n",
            s.server,
            s.rps[0],
            s.rps[1],
            s.rps[2],
            s.p50[0],
            s.p99[0],
            s.p999[0],
            s.sys_per_req[0],
            s.sys_per_req[1],
            s.sys_per_req[2],
            s.cpu_us[0],
            s.cpu_us[1],
            s.cpu_us[2],
            s.iocbs_per_submit > 0 ? fmt::format("{:.1f}", s.iocbs_per_submit) : "-",
            s.iocbs_per_submit > 0 ? fmt::format("{:.1f}", s.ring_share * 100) : "-",
            base ? ratio(s.sys_per_req[0], base->sys_per_req[0]) : "-",
            base ? ratio(s.cpu_us[0], base->cpu_us[0]) : "-",
            s.client_cpu_percent[0]);
    }
    double kpti = report.syscall_ns + c.kpti_extra_ns;
    out += fmt::format("one system call (getppid) costs {:.0f} ns here; projection for a host "
                       "where it costs {:.0f} ns (assumed +{:.0f} ns, e.g. KPTI):\n",
                       report.syscall_ns,
                       kpti,
                       c.kpti_extra_ns);
    for (const auto& s : report.summaries) {
        // The aioloop backends alone: the projection is what batching saves the same server
        // against its epoll build. A peer (haproxy, nginx) is another program whose CPU differs
        // for other reasons; its calls and CPU against epoll are the sys/ep and cpu/ep columns.
        bool backend =
            std::find(c.backends.begin(), c.backends.end(), s.server) != c.backends.end();
        if (s.connections != connections || s.ok_rounds == 0 || !epoll || s.server == "epoll" ||
            !backend) {
            continue;
        }
        double saved = epoll->sys_per_req[0] - s.sys_per_req[0];
        out += fmt::format(
            "  {:<8} saves {:.2f} calls/req vs epoll: {:.2f} us/req here, {:.2f} us/req projected "
            "({:.1f} % of epoll's {:.2f} us/req)\n",
            s.server,
            saved,
            saved * report.syscall_ns / 1e3,
            saved * kpti / 1e3,
            epoll->cpu_us[0] > 0 ? 100 * saved * kpti / 1e3 / epoll->cpu_us[0] : 0,
            epoll->cpu_us[0]);
    }
    return out;
}

// A line per round in which the load generator, not the server, set the pace.
std::string client_bound_warnings(const bench_report& report) {
    std::string out;
    std::size_t shared = 0, ok = 0;
    for (const auto& s : report.samples) {
        if (s.ok && s.client_cpu_percent > client_bound_percent) {
            out += fmt::format(
                "warning: round {} of {} at {} connections: the load generator was busy {:.0f} % "
                "of its core, so this round's figures are client-bound (the server may be faster "
                "than shown)\n",
                s.round,
                s.server,
                s.connections,
                s.client_cpu_percent);
        }
        // The load's core busy while the bench's own work there was not: other processes ran
        // there, and the figures are the machine's noise as much as the server's.
        if (load_core_shared(s)) {
            ++shared;
        }
        ok += s.ok ? 1 : 0;
    }
    if (shared > 0) {
        out += fmt::format(
            "warning: in {} of {} runs core 1 was over {:.0f} % busy while the bench's own work "
            "there (the load generator, and the upstream echo for proxy) used under half of it: "
            "other processes shared the cores, so req/s and latency carry their noise (system "
            "calls per request do not)\n",
            shared,
            ok,
            client_bound_percent);
    }
    return out;
}

} // namespace

std::string connection_counts_text(const bench_config& config) {
    std::string text;
    for (unsigned n : connection_counts(config)) {
        // Not `"," + std::to_string(n)` nor fmt::join: GCC 12 at -O3 misreports both as
        // overflows.
        if (!text.empty()) {
            text += ',';
        }
        text += std::to_string(n);
    }
    return text;
}

std::string format_bench_table(const bench_report& report) {
    const auto& c = report.config;
    auto counts = connection_counts(c);
    std::string list = connection_counts_text(c);
    std::string out = fmt::format("{} rounds, {} connections, {}-byte {}, {} ms each, {}{}\n",
                                  c.rounds,
                                  list,
                                  c.size,
                                  c.scenario == "http" ? "file" : "messages",
                                  c.duration.count(),
                                  c.rate > 0 ? fmt::format("open loop at {} req/s", c.rate)
                                             : std::string("closed loop"),
                                  c.pin ? ", server on core 0, load on core 1" : ", not pinned");
    if (!report.note.empty()) {
        out += c.scenario + ": " + report.note + "\n";
    }
    for (unsigned n : counts) {
        if (counts.size() > 1) {
            out += fmt::format("\nat {} connections:\n", n);
        }
        out += count_table(report, n);
    }
    if (counts.size() > 1) {
        out += '\n';
        out += format_bench_sweep_table(report);
    }
    return out + client_bound_warnings(report);
}

std::string format_bench_sweep_table(const bench_report& report) {
    auto counts = connection_counts(report.config);
    std::string out = fmt::format("{:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}\n",
                                  "server",
                                  "conns",
                                  "req/s",
                                  "sys/req",
                                  "cpu us/r",
                                  "p99 us",
                                  "cpu/ep",
                                  "client%");
    std::vector<std::string> servers;
    for (const auto& s : report.summaries) {
        if (std::find(servers.begin(), servers.end(), s.server) == servers.end()) {
            servers.push_back(s.server);
        }
    }
    for (const auto& name : servers) {
        for (unsigned n : counts) {
            const bench_summary* s = find(report.summaries, name, n);
            if (!s) {
                out += fmt::format("{:<10} {:>7} {:>9}\n", name, n, "-");
                continue;
            }
            const bench_summary* epoll =
                find(report.summaries, name.starts_with("ref-") ? "ref-epoll" : "epoll", n);
            out += fmt::format("{:<10} {:>7} {:>9.0f} {:>9.3f} {:>9.2f} {:>9.0f} {:>9} {:>7.0f}\n",
                               name,
                               n,
                               s->rps[0],
                               s->sys_per_req[0],
                               s->cpu_us[0],
                               s->p99[0],
                               epoll ? ratio(s->cpu_us[0], epoll->cpu_us[0]) : "-",
                               s->client_cpu_percent[0]);
        }
    }
    return out;
}

} // namespace aioloop::apps
