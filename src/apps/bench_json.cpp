// The benchmark's figures for machines: JSON with every figure of every run, and the summaries.

#include <cmath>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

namespace aioloop::apps {

namespace {

const bench_summary* find_epoll(const std::vector<bench_summary>& all, unsigned connections) {
    for (const auto& s : all) {
        if (s.server == "epoll" && s.connections == connections && s.ok_rounds > 0) {
            return &s;
        }
    }
    return nullptr;
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
    std::string counts = connection_counts_text(c);
    out += fmt::format("\"note\":{},", json_string(report.note));
    out += fmt::format("\"sweep\":[{}],\"cores\":{},\"date\":{},\"command_line\":{},",
                       counts,
                       report.cores,
                       json_string(report.date),
                       json_string(c.command_line));
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
            "\"client_cpu_us_per_request\":{},\"connections\":{},\"window_requests\":{},"
            "\"window_seconds\":{},\"client_cpu_percent\":{},\"client_bound\":{},"
            "\"core_busy_percent\":{{\"server_core\":{},\"server_core_softirq\":{},"
            "\"client_core\":{}}},\"cpu_wait_percent\":{{\"server\":{},\"client\":{}}}",
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
            json_number(s.client_cpu_us_per_request),
            s.connections,
            s.window_requests,
            json_number(s.window_seconds),
            json_number(s.client_cpu_percent),
            s.ok && s.client_cpu_percent > client_bound_percent ? "true" : "false",
            json_number(s.server_core_percent),
            json_number(s.server_core_softirq_percent),
            json_number(s.client_core_percent),
            json_number(s.server_wait_percent),
            json_number(s.client_wait_percent));
        out += fmt::format(",\"load_core_shared\":{}", load_core_shared(s) ? "true" : "false");
        if (s.has_upstream) {
            out += fmt::format(
                ",\"upstream_metrics\":{{\"requests\":{},\"bytes_out\":{},\"cpu_percent\":{}}}",
                json_number(s.upstream_requests),
                json_number(s.upstream_bytes_out),
                json_number(s.upstream_cpu_percent));
        }
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
    for (const auto& s : report.summaries) {
        const bench_summary* epoll = find_epoll(report.summaries, s.connections);
        out += first ? "" : ",";
        first = false;
        out += fmt::format(
            "{{\"server\":{},\"ok_rounds\":{},\"skipped\":{},\"requests_per_second\":{},"
            "\"p50_us\":{},\"p99_us\":{},\"p99_9_us\":{},\"syscalls_per_request\":{},"
            "\"cpu_us_per_request\":{},\"iocbs_per_io_submit\":{},\"ring_share\":{},"
            "\"connections\":{},\"client_cpu_percent\":{}",
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
            json_number(s.ring_share),
            s.connections,
            json_triple(s.client_cpu_percent));
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
