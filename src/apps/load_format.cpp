#include <fmt/format.h>

#include <aioloop/apps/cat.hpp>
#include <aioloop/apps/load.hpp>

namespace aioloop::apps {

namespace {

double us(std::uint64_t ns) {
    return static_cast<double>(ns) / 1000.0;
}

std::string latency_json(const latency_histogram& h) {
    return fmt::format(R"({{"count":{},"min_us":{:.3f},"mean_us":{:.3f},"p50_us":{:.3f},)"
                       R"("p90_us":{:.3f},"p99_us":{:.3f},"p999_us":{:.3f},"max_us":{:.3f}}})",
                       h.count(),
                       us(h.min()),
                       h.mean() / 1000.0,
                       us(h.percentile(50)),
                       us(h.percentile(90)),
                       us(h.percentile(99)),
                       us(h.percentile(99.9)),
                       us(h.max()));
}

std::string escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
            out += c;
        }
    }
    return out;
}

} // namespace

result<std::pair<std::size_t, std::size_t>> parse_size_range(std::string_view text) noexcept {
    auto dash = text.find('-');
    auto lo = parse_size(text.substr(0, dash));
    if (!lo) {
        return tl::unexpected(lo.error());
    }
    if (dash == std::string_view::npos) {
        return std::pair{*lo, *lo};
    }
    auto hi = parse_size(text.substr(dash + 1));
    if (!hi) {
        return tl::unexpected(hi.error());
    }
    if (*hi < *lo) {
        return tl::unexpected(std::make_error_code(std::errc::invalid_argument));
    }
    return std::pair{*lo, *hi};
}

std::string format_summary(const load_result& r) {
    double seconds = std::chrono::duration<double>(r.duration).count();
    double mb_per_s = seconds > 0 ? static_cast<double>(r.bytes) / seconds / 1e6 : 0.0;
    // Echo: every byte goes out and comes back; http: the bodies received (heads not counted).
    const char* what = r.protocol == load_protocol::http ? "of response body" : "each way";
    return fmt::format("{} requests in {:.2f} s: {:.0f} req/s, {:.1f} MB/s {}, latency µs "
                       "p50 {:.1f} p99 {:.1f} p99.9 {:.1f} max {:.1f}, {} errors, client "
                       "{:.2f} CPU µs/req ({}, {} connections)",
                       r.requests,
                       seconds,
                       r.requests_per_second(),
                       mb_per_s,
                       what,
                       us(r.latency.percentile(50)),
                       us(r.latency.percentile(99)),
                       us(r.latency.percentile(99.9)),
                       us(r.latency.max()),
                       r.errors.total(),
                       r.cpu_us_per_request(),
                       r.backend,
                       r.connections);
}

std::string format_json(const load_result& r) {
    std::string intervals;
    for (const load_interval& i : r.intervals) {
        intervals += fmt::format(R"({}{{"requests":{},"bytes":{},"errors":{},"latency":{}}})",
                                 intervals.empty() ? "" : ",",
                                 i.requests,
                                 i.bytes,
                                 i.errors,
                                 latency_json(i.latency));
    }
    std::string syscalls;
    for (std::size_t i = 0; i < syscall_name_count; ++i) {
        syscalls += fmt::format(R"({}"{}":{})",
                                i == 0 ? "" : ",",
                                to_string(static_cast<syscall_name>(i)),
                                r.client_loops.syscalls[i]);
    }
    const load_errors& e = r.errors;
    return fmt::format(
        R"({{"backend":"{}","connections":{},"requests":{},"bytes":{},"late_requests":{},)"
        R"("duration_s":{:.6f},"requests_per_second":{:.1f},"cpu_user_s":{:.6f},)"
        R"("cpu_system_s":{:.6f},"cpu_us_per_request":{:.3f},)"
        R"("errors":{{"total":{},"connect_failures":{},"mismatches":{},"resets":{},"closed":{},)"
        R"("timeouts":{},"other":{},"bad_responses":{}}},"first_error":"{}","latency":{},)"
        R"("client_syscalls":{{{}}},"intervals":[{}]}})",
        r.backend,
        r.connections,
        r.requests,
        r.bytes,
        r.late_requests,
        std::chrono::duration<double>(r.duration).count(),
        r.requests_per_second(),
        std::chrono::duration<double>(r.cpu_user).count(),
        std::chrono::duration<double>(r.cpu_system).count(),
        r.cpu_us_per_request(),
        e.total(),
        e.connect_failures,
        e.mismatches,
        e.resets,
        e.closed,
        e.timeouts,
        e.other,
        e.bad_responses,
        escape(r.first_error),
        latency_json(r.latency),
        syscalls,
        intervals);
}

} // namespace aioloop::apps
