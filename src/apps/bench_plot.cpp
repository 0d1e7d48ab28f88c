// The benchmark as a picture (`aioloop bench --plot FILE.svg`): plain SVG text, no library.
// A row of bars (req/s and p99 per server at one connection count, medians with min-max
// whiskers) and, with a sweep, four panels of lines against the connection count on a log axis:
// req/s, p99, system calls and server CPU per request. One colour per server throughout.

#include "apps/bench_plot.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

namespace aioloop::apps {

namespace {

// The command line in lines of at most `width` characters, broken at spaces.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
    std::vector<std::string> out{""};
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find(' ', at);
        std::string word = text.substr(at, end == std::string::npos ? end : end - at);
        if (!out.back().empty() && out.back().size() + word.size() + 1 > width) {
            out.emplace_back();
        }
        out.back() += (out.back().empty() ? "" : " ") + word;
        at = end == std::string::npos ? text.size() : end + 1;
    }
    return out;
}

} // namespace

std::string format_bench_svg(const bench_report& report) {
    using namespace plot;
    const auto& c = report.config;
    auto counts = connection_counts(c);
    bool sweep = counts.size() > 1;
    // The bars show one count: the --connections one if swept, else the largest.
    unsigned headline = std::find(counts.begin(), counts.end(), c.connections) != counts.end()
                            ? c.connections
                            : *std::max_element(counts.begin(), counts.end());
    auto command =
        wrap(c.command_line.empty() ? std::string("aioloop bench") : c.command_line, 140);
    double height = header_height + row_height * (sweep ? 3 : 1) + footer_height + 16 +
                    14 * static_cast<double>(command.size());
    std::string out = fmt::format(
        R"(<?xml version="1.0" encoding="UTF-8"?>)"
        "\n"
        R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="sans-serif">)"
        "\n"
        R"(<rect width="100%" height="100%" fill="#fff"/>)"
        "\n",
        width,
        height);
    std::string kind =
        c.rate > 0 ? fmt::format("open loop at {} req/s", c.rate) : std::string("closed loop");
    out += fmt::format(
        R"(<text x="{}" y="30" font-size="20" font-weight="bold">aioloop bench {}: {}-byte messages, {}</text>)"
        "\n"
        R"(<text x="{}" y="52" font-size="13" fill="#444">{} round(s) of {} ms per server{}, interleaved; {}. Median of rounds, whiskers min-max.</text>)"
        "\n",
        left_column - 60,
        xml(c.scenario),
        c.size,
        kind,
        left_column - 60,
        c.rounds,
        c.duration.count(),
        sweep ? " and connection count" : "",
        c.pin ? "server on core 0, load generator on core 1" : "not pinned");
    out += legend(report, 80);

    double top = header_height;
    std::string at = fmt::format(" at {} connections", headline);
    // Latencies of hundreds of ms read better in ms than as "500k µs".
    double p99_max = 0;
    for (const auto& s : report.summaries) {
        p99_max = std::max(p99_max, s.p99[2]);
    }
    double p99_divide = p99_max > 20000 ? 1000 : 1;
    std::string p99_unit = p99_max > 20000 ? "ms" : "µs";
    out += bars(report,
                {"Throughput" + at, "requests/s", "rps", &bench_summary::rps},
                headline,
                left_column,
                top);
    out += bars(report,
                {"p99 latency" + at, p99_unit, "p99", &bench_summary::p99, false, p99_divide},
                headline,
                right_column,
                top);
    if (sweep) {
        top += row_height;
        out += lines(
            report, {"Throughput", "requests/s", "rps", &bench_summary::rps}, left_column, top);
        out += lines(report,
                     {"p99 latency",
                      p99_unit + " (log scale)",
                      "p99",
                      &bench_summary::p99,
                      true,
                      p99_divide},
                     right_column,
                     top);
        top += row_height;
        out += lines(report,
                     {"Server system calls per request",
                      "calls/request (log scale)",
                      "syscalls",
                      &bench_summary::sys_per_req,
                      true},
                     left_column,
                     top);
        out += lines(report,
                     {"Server CPU per request", "µs/request", "cpu", &bench_summary::cpu_us},
                     right_column,
                     top);
    }
    top += row_height - 20;
    std::size_t bound = 0, ok = 0;
    std::vector<double> client, core, wait;
    for (const auto& s : report.samples) {
        ok += s.ok ? 1 : 0;
        bound += s.ok && s.client_cpu_percent > client_bound_percent ? 1 : 0;
        if (s.ok) {
            client.push_back(s.client_cpu_percent);
            if (!std::isnan(s.server_wait_percent)) {
                wait.push_back(s.server_wait_percent);
            }
            if (!std::isnan(s.client_core_percent)) {
                core.push_back(s.client_core_percent);
            }
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.empty() ? 0.0 : v[v.size() / 2];
    };
    // Short enough for one line of the page's width.
    std::string load_note =
        fmt::format("Load generator thread: median {:.0f} %, at most {:.0f} % of its core",
                    median(client),
                    client.empty() ? 0.0 : *std::max_element(client.begin(), client.end()));
    if (!core.empty()) {
        load_note += fmt::format("; core 1 busy {:.0f} % (median, all processes)", median(core));
    }
    if (!wait.empty()) {
        load_note += fmt::format("; server waited for a CPU {:.0f} % (median)", median(wait));
    }
    load_note += ".";
    out += fmt::format(
        R"(<text x="{}" y="{}" font-size="12" fill="#444">Machine: {} cores, {}; one system call (getppid) {:.0f} ns. Load generator above {:.0f} % of its core (client-bound) in {} of {} runs.</text>)"
        "\n",
        left_column - 60,
        top,
        report.cores,
        xml(report.date),
        report.syscall_ns,
        client_bound_percent,
        bound,
        ok);
    out += fmt::format(R"(<text x="{}" y="{}" font-size="12" fill="#444">{}</text>)"
                       "\n",
                       left_column - 60,
                       top + 16,
                       xml(load_note));
    top += 16;
    for (std::size_t i = 0; i < command.size(); ++i) {
        out += fmt::format(
            R"(<text x="{}" y="{}" font-size="11" font-family="monospace" fill="#444">{}{}</text>)"
            "\n",
            left_column - 60,
            top + 18 + 14 * static_cast<double>(i),
            i == 0 ? "$ " : "  ",
            xml(command[i]));
    }
    return out + "</svg>\n";
}

} // namespace aioloop::apps
