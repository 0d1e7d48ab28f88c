// The benchmark's figures for people (a line per run, a table of medians and spreads) and for
// machines (JSON with every figure of every run).

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

const bench_summary* find(const std::vector<bench_summary>& all, const std::string& name) {
    for (const auto& s : all) {
        if (s.server == name && s.ok_rounds > 0) {
            return &s;
        }
    }
    return nullptr;
}

std::string ratio(double x, double base) {
    return base > 0 ? fmt::format("{:.2f}", x / base) : std::string("-");
}

std::string json_number(double x) {
    return std::isfinite(x) ? fmt::format("{}", x) : std::string("null");
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string json_triple(const std::array<double, 3>& t) {
    return fmt::format("{{\"median\":{},\"min\":{},\"max\":{}}}",
                       json_number(t[0]),
                       json_number(t[1]),
                       json_number(t[2]));
}

} // namespace

std::vector<bench_summary> summarize(const std::vector<bench_sample>& samples) {
    std::vector<bench_summary> out;
    std::vector<std::string> order;
    for (const auto& s : samples) {
        if (std::find(order.begin(), order.end(), s.server) == order.end()) {
            order.push_back(s.server);
        }
    }
    for (const auto& name : order) {
        bench_summary sum;
        sum.server = name;
        std::vector<double> rps, p50, p99, p999, sys, cpu, batch, ring;
        for (const auto& s : samples) {
            if (s.server != name) {
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
        out.push_back(std::move(sum));
    }
    return out;
}

std::string format_bench_sample(const bench_sample& s) {
    if (!s.ok) {
        return fmt::format("round {} {:<10} {}", s.round, s.server, s.error);
    }
    std::string line = fmt::format(
        "round {} {:<10} {:>9.0f} req/s  p50 {:.0f} p99 {:.0f} p99.9 {:.0f} us  {:.3f} syscalls/req"
        "  {:.2f} us cpu/req",
        s.round,
        s.server,
        s.requests_per_second,
        s.p50_us,
        s.p99_us,
        s.p999_us,
        s.syscalls_per_request,
        s.cpu_us_per_request);
    if (s.has_metrics) {
        line += fmt::format(
            "  (server answered {:.0f}, client counted {})", s.server_requests, s.client_requests);
    }
    return line;
}

std::string format_bench_table(const bench_report& report) {
    const auto& c = report.config;
    std::string out = fmt::format("{} rounds, {} connections, {}-byte messages, {} ms each, {}{}\n",
                                  c.rounds,
                                  c.connections,
                                  c.size,
                                  c.duration.count(),
                                  c.rate > 0 ? fmt::format("open loop at {} req/s", c.rate)
                                             : std::string("closed loop"),
                                  c.pin ? ", server on core 0, load on core 1" : ", not pinned");
    out += fmt::format("{:<10} {:>19} {:>8} {:>8} {:>8} {:>17} {:>17} {:>7} {:>6} {:>7} {:>7}\n",
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
                       "cpu/ep");
    const bench_summary* epoll = find(report.summaries, "epoll");
    const bench_summary* ref_epoll = find(report.summaries, "ref-epoll");
    for (const auto& s : report.summaries) {
        if (s.ok_rounds == 0) {
            out += fmt::format(
                "{:<10} {}\n", s.server, s.skipped.empty() ? "no round succeeded" : s.skipped);
            continue;
        }
        const bench_summary* base = s.server.starts_with("ref-") ? ref_epoll : epoll;
        out += fmt::format(
            "{:<10} {:>7.0f} ({:.0f}-{:.0f}) {:>8.0f} {:>8.0f} {:>8.0f} {:>5.3f} ({:.2f}-{:.2f}) "
            "{:>5.2f} ({:.2f}-{:.2f}) {:>7} {:>6} {:>7} {:>7}\n",
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
            base ? ratio(s.cpu_us[0], base->cpu_us[0]) : "-");
    }
    double kpti = report.syscall_ns + c.kpti_extra_ns;
    out += fmt::format("one system call (getppid) costs {:.0f} ns here; projection for a host "
                       "where it costs {:.0f} ns (assumed +{:.0f} ns, e.g. KPTI):\n",
                       report.syscall_ns,
                       kpti,
                       c.kpti_extra_ns);
    for (const auto& s : report.summaries) {
        if (s.ok_rounds == 0 || !epoll || s.server == "epoll" || s.server.starts_with("ref-")) {
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

std::string format_bench_json(const bench_report& report) {
    const auto& c = report.config;
    std::string out = "{";
    out += fmt::format(
        "\"scenario\":{},\"connections\":{},\"size\":{},\"duration_ms\":{},\"rounds\":{},"
        "\"pin\":{},\"rate\":{},\"syscall_ns\":{},\"kpti_extra_ns\":{},",
        json_string(c.scenario),
        c.connections,
        c.size,
        c.duration.count(),
        c.rounds,
        c.pin ? "true" : "false",
        json_number(c.rate),
        json_number(report.syscall_ns),
        json_number(c.kpti_extra_ns));
    out += "\"runs\":[";
    bool first = true;
    for (const auto& s : report.samples) {
        out += first ? "" : ",";
        first = false;
        out += fmt::format(
            "{{\"server\":{},\"round\":{},\"ok\":{},\"error\":{},\"requests_per_second\":{},"
            "\"client_requests\":{},\"client_bytes\":{},\"client_errors\":{},"
            "\"latency_us\":{{\"p50\":{},\"p99\":{},\"p99_9\":{}}},\"syscalls\":{},"
            "\"syscalls_per_request\":{},\"cpu_us_per_request\":{},"
            "\"client_cpu_us_per_request\":{}",
            json_string(s.server),
            s.round,
            s.ok ? "true" : "false",
            json_string(s.error),
            json_number(s.requests_per_second),
            s.client_requests,
            s.client_bytes,
            s.client_errors,
            json_number(s.p50_us),
            json_number(s.p99_us),
            json_number(s.p999_us),
            s.syscalls,
            json_number(s.syscalls_per_request),
            json_number(s.cpu_us_per_request),
            json_number(s.client_cpu_us_per_request));
        if (s.has_metrics) {
            out += fmt::format(
                ",\"server_metrics\":{{\"requests\":{},\"bytes_out\":{},\"loop_syscalls\":{},"
                "\"io_submit\":{},\"iocbs_submitted\":{},\"events_ring\":{},"
                "\"events_syscall\":{}}}",
                json_number(s.server_requests),
                json_number(s.server_bytes_out),
                json_number(s.loop_syscalls),
                json_number(s.io_submit_calls),
                json_number(s.iocbs_submitted),
                json_number(s.events_ring),
                json_number(s.events_syscall));
        }
        out += "}";
    }
    out += "],\"summary\":[";
    first = true;
    const bench_summary* epoll = find(report.summaries, "epoll");
    for (const auto& s : report.summaries) {
        out += first ? "" : ",";
        first = false;
        out += fmt::format(
            "{{\"server\":{},\"ok_rounds\":{},\"skipped\":{},\"requests_per_second\":{},"
            "\"p50_us\":{},\"p99_us\":{},\"p99_9_us\":{},\"syscalls_per_request\":{},"
            "\"cpu_us_per_request\":{},\"iocbs_per_io_submit\":{},\"ring_share\":{}",
            json_string(s.server),
            s.ok_rounds,
            json_string(s.skipped),
            json_triple(s.rps),
            json_triple(s.p50),
            json_triple(s.p99),
            json_triple(s.p999),
            json_triple(s.sys_per_req),
            json_triple(s.cpu_us),
            json_number(s.iocbs_per_submit),
            json_number(s.ring_share));
        if (epoll && s.ok_rounds > 0 && epoll->sys_per_req[0] > 0 && epoll->cpu_us[0] > 0) {
            out += fmt::format(",\"vs_epoll\":{{\"syscalls_per_request\":{},"
                               "\"cpu_us_per_request\":{},\"requests_per_second\":{}}}",
                               json_number(s.sys_per_req[0] / epoll->sys_per_req[0]),
                               json_number(s.cpu_us[0] / epoll->cpu_us[0]),
                               json_number(s.rps[0] / epoll->rps[0]));
        }
        out += "}";
    }
    return out + "]}";
}

} // namespace aioloop::apps
