#include <string_view>

#include <fmt/format.h>

#include <aioloop/apps/metrics.hpp>

namespace aioloop::apps {

std::string
format_prometheus(std::string_view backend, const loop_stats& stats, const app_counters& counters) {
    std::string out;
    auto metric = [&out](std::string_view name, std::string_view type, std::string_view help) {
        out += fmt::format("# HELP aioloop_{} {}\n# TYPE aioloop_{} {}\n", name, help, name, type);
    };
    metric("info", "gauge", "The backend in use.");
    out += fmt::format("aioloop_info{{backend=\"{}\"}} 1\n", backend);
    metric("turns_total", "counter", "Loop turns.");
    out += fmt::format("aioloop_turns_total {}\n", stats.turns);
    metric("blocking_waits_total", "counter", "Turns that slept in the kernel.");
    out += fmt::format("aioloop_blocking_waits_total {}\n", stats.blocking_waits);
    metric("syscalls_total", "counter", "System calls made by the loops, by name.");
    for (std::size_t i = 0; i < syscall_name_count; ++i) {
        out += fmt::format("aioloop_syscalls_total{{name=\"{}\"}} {}\n",
                           to_string(static_cast<syscall_name>(i)),
                           stats.syscalls[i]);
    }
    metric("operations_total", "counter", "Operations started, by kind.");
    for (std::size_t i = 0; i < op_kind_count; ++i) {
        out += fmt::format("aioloop_operations_total{{kind=\"{}\"}} {}\n",
                           to_string(static_cast<op_kind>(i)),
                           stats.ops_started[i]);
    }
    metric("iocbs_submitted_total", "counter", "iocbs (aio) or SQEs (uring) handed to the kernel.");
    out += fmt::format("aioloop_iocbs_submitted_total {}\n", stats.iocbs_submitted);
    metric("events_total", "counter", "Completions, by where they were read.");
    out += fmt::format("aioloop_events_total{{source=\"ring\"}} {}\n", stats.events_from_ring);
    out +=
        fmt::format("aioloop_events_total{{source=\"syscall\"}} {}\n", stats.events_from_syscall);
    metric("eagain_total", "counter", "Reads and writes the kernel answered with EAGAIN.");
    out += fmt::format("aioloop_eagain_total {}\n", stats.eagain);
    metric("submit_batch_size", "histogram", "iocbs or SQEs per submission.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < batch_buckets; ++i) {
        cumulative += stats.batch_sizes[i];
        if (i + 1 < batch_buckets) {
            out += fmt::format("aioloop_submit_batch_size_bucket{{le=\"{}\"}} {}\n",
                               (std::uint64_t{2} << i) - 1,
                               cumulative);
        }
    }
    out += fmt::format("aioloop_submit_batch_size_bucket{{le=\"+Inf\"}} {}\n", cumulative);
    out += fmt::format("aioloop_submit_batch_size_sum {}\n", stats.iocbs_submitted);
    out += fmt::format("aioloop_submit_batch_size_count {}\n", cumulative);
    metric("connections_accepted_total", "counter", "Connections accepted.");
    out += fmt::format("aioloop_connections_accepted_total {}\n",
                       counters.connections_accepted.load());
    metric("connections_open", "gauge", "Connections open now.");
    out += fmt::format("aioloop_connections_open {}\n", counters.connections_open.load());
    metric("accept_errors_total", "counter", "accept4 failures (EMFILE, ENFILE...).");
    out += fmt::format("aioloop_accept_errors_total {}\n", counters.accept_errors.load());
    metric("bytes_total", "counter", "Payload bytes, by direction.");
    out += fmt::format("aioloop_bytes_total{{direction=\"in\"}} {}\n", counters.bytes_in.load());
    out += fmt::format("aioloop_bytes_total{{direction=\"out\"}} {}\n", counters.bytes_out.load());
    metric("requests_total", "counter", "Requests served, where the server can count them.");
    out += fmt::format("aioloop_requests_total {}\n", counters.requests.load());
    metric(
        "errors_total", "counter", "Connections ended by an error, where the server counts them.");
    out += fmt::format("aioloop_errors_total {}\n", counters.errors.load());
    if (counters.file_cache_hits.load() + counters.file_cache_misses.load() > 0) {
        metric("file_cache_total", "counter", "Open-file cache lookups and evictions, by result.");
        out += fmt::format("aioloop_file_cache_total{{result=\"hit\"}} {}\n",
                           counters.file_cache_hits.load());
        out += fmt::format("aioloop_file_cache_total{{result=\"miss\"}} {}\n",
                           counters.file_cache_misses.load());
        out += fmt::format("aioloop_file_cache_total{{result=\"eviction\"}} {}\n",
                           counters.file_cache_evictions.load());
    }
    if (counters.low_water_raises.load() > 0) {
        metric("low_water_total",
               "counter",
               "Bulk streams' receive low-water marks: raised, waits that ran out, given up.");
        out += fmt::format("aioloop_low_water_total{{event=\"raised\"}} {}\n",
                           counters.low_water_raises.load());
        out += fmt::format("aioloop_low_water_total{{event=\"short_wait\"}} {}\n",
                           counters.low_water_short_waits.load());
        out += fmt::format("aioloop_low_water_total{{event=\"gave_up\"}} {}\n",
                           counters.low_water_give_ups.load());
    }
    return out;
}

// Just enough HTTP for a scraper: one request, read until the blank line, answered and closed.
task<void> serve_metrics_connection(net::tcp_stream stream, std::function<std::string()> render) {
    std::string request;
    std::byte buf[1024];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
        auto n = co_await stream.read(buf).with_timeout(std::chrono::seconds(5));
        if (!n || *n == 0) {
            co_return;
        }
        request.append(reinterpret_cast<const char*>(buf), *n);
    }
    bool wanted = request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?");
    std::string body = wanted ? render() : "not found: try /metrics\n";
    std::string response = fmt::format("HTTP/1.1 {}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                       "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                                       wanted ? "200 OK" : "404 Not Found",
                                       body.size(),
                                       body);
    co_await stream.write(std::as_bytes(std::span(response)));
}

} // namespace aioloop::apps
