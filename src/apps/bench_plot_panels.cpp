// The pieces of `aioloop bench --plot`: axes with their grid and labels, bars with whiskers,
// lines against the connection count, the legend.

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "apps/bench_plot.hpp"

namespace aioloop::apps::plot {

std::string xml(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            // Control characters are not allowed in XML 1.0 text.
            out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
        }
    }
    return out;
}

std::string short_number(double x) {
    double a = std::fabs(x);
    if (a >= 1e6) {
        return fmt::format("{:.3g}M", x / 1e6);
    }
    if (a >= 1e3) {
        return fmt::format("{:.3g}k", x / 1e3);
    }
    return fmt::format("{:.3g}", x);
}

// The same colour for a server in every panel; a reference server a paler shade of its backend.
std::string colour_of(const std::string& server, std::size_t index) {
    static const std::pair<const char*, const char*> known[] = {{"aio", "#1f77b4"},
                                                                {"epoll", "#d62728"},
                                                                {"uring", "#2ca02c"},
                                                                {"ref-aio", "#7fb8e0"},
                                                                {"ref-epoll", "#f08a8b"},
                                                                {"ref-uring", "#8fd18f"}};
    for (auto [name, colour] : known) {
        if (server == name) {
            return colour;
        }
    }
    static const char* other[] = {"#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
    return other[index % std::size(other)];
}

scale make_scale(double lo_value, double hi_value, bool log, double top, double bottom) {
    scale s;
    s.top = top;
    s.bottom = bottom;
    if (log && lo_value > 0 && hi_value > 0) {
        s.log = true;
        s.lo = std::pow(10, std::floor(std::log10(lo_value)));
        s.hi = std::pow(10, std::ceil(std::log10(hi_value)));
        if (s.hi <= s.lo) {
            s.hi = s.lo * 10;
        }
        return s;
    }
    s.lo = 0;
    double hi = hi_value > 0 ? hi_value * 1.1 : 1;
    double mag = std::pow(10, std::floor(std::log10(hi)));
    s.hi = std::ceil(hi / mag * 2) / 2 * mag; // a round top: 1.5, 2, 2.5... times a power of ten
    return s;
}

// A figure of a summary in the panel's unit: median, min, max.
std::array<double, 3> values(const bench_summary& s, const panel& p) {
    auto v = s.*p.field;
    for (auto& x : v) {
        x /= p.divide;
    }
    return v;
}

namespace {

// The frame of a panel: title, grid lines with value labels, and the y axis's unit.
std::string frame(const panel& p, const scale& y, double x0) {
    std::string out =
        fmt::format(R"(<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>)"
                    "\n",
                    x0,
                    y.top - 14,
                    xml(p.title));
    for (double v : y.ticks()) {
        double py = y.at(v);
        out += fmt::format(R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#ddd"/>)"
                           "\n"
                           R"(<text x="{}" y="{:.1f}" font-size="11" text-anchor="end">{}</text>)"
                           "\n",
                           x0,
                           py,
                           x0 + panel_width,
                           py,
                           x0 - 6,
                           py + 4,
                           short_number(v));
    }
    out += fmt::format(
        R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#333"/>)"
        "\n"
        R"(<line x1="{0}" y1="{2}" x2="{3}" y2="{2}" stroke="#333"/>)"
        "\n"
        R"~(<text transform="translate({4},{5}) rotate(-90)" font-size="12" text-anchor="middle">{6}</text>)~"
        "\n",
        x0,
        y.top,
        y.bottom,
        x0 + panel_width,
        x0 - 52,
        (y.top + y.bottom) / 2,
        xml(p.unit));
    return out;
}

} // namespace

std::vector<std::string> servers_of(const bench_report& report) {
    std::vector<std::string> out;
    for (const auto& s : report.summaries) {
        if (std::find(out.begin(), out.end(), s.server) == out.end()) {
            out.push_back(s.server);
        }
    }
    return out;
}

namespace {

const bench_summary* find(const bench_report& report, const std::string& name, unsigned n) {
    for (const auto& s : report.summaries) {
        if (s.server == name && s.connections == n && s.ok_rounds > 0) {
            return &s;
        }
    }
    return nullptr;
}

} // namespace

// Bars per server at one connection count: the median, a whisker from min to max.
std::string bars(const bench_report& report, const panel& p, unsigned n, double x0, double top) {
    auto servers = servers_of(report);
    double hi = 0;
    for (const auto& name : servers) {
        if (const auto* s = find(report, name, n)) {
            hi = std::max(hi, values(*s, p)[2]);
        }
    }
    scale y = make_scale(0, hi, false, top, top + panel_height);
    std::string out = frame(p, y, x0);
    double slot = panel_width / static_cast<double>(std::max<std::size_t>(1, servers.size()));
    double bar = std::min(60.0, slot * 0.6);
    for (std::size_t i = 0; i < servers.size(); ++i) {
        double cx = x0 + slot * (static_cast<double>(i) + 0.5);
        out += fmt::format(
            R"(<g class="bars" data-server="{}" data-metric="{}" fill="{}" stroke="{}">)"
            "\n",
            xml(servers[i]),
            p.key,
            colour_of(servers[i], i),
            colour_of(servers[i], i));
        const auto* s = find(report, servers[i], n);
        if (s) {
            auto v = values(*s, p);
            double left = cx - bar / 2;
            out += fmt::format(
                R"(<rect x="{0:.1f}" y="{1:.1f}" width="{2:.1f}" height="{3:.1f}" fill-opacity="0.8"/>)"
                "\n"
                R"(<line x1="{4:.1f}" y1="{5:.1f}" x2="{4:.1f}" y2="{6:.1f}" stroke="#000"/>)"
                "\n"
                R"(<line x1="{7:.1f}" y1="{5:.1f}" x2="{8:.1f}" y2="{5:.1f}" stroke="#000"/>)"
                "\n"
                R"(<line x1="{7:.1f}" y1="{6:.1f}" x2="{8:.1f}" y2="{6:.1f}" stroke="#000"/>)"
                "\n"
                R"(<text x="{4:.1f}" y="{9:.1f}" font-size="11" text-anchor="middle" stroke="none" fill="#000">{10}</text>)"
                "\n",
                left,
                y.at(v[0]),
                bar,
                y.bottom - y.at(v[0]),
                cx,
                y.at(v[2]),
                y.at(v[1]),
                cx - 6,
                cx + 6,
                y.at(v[2]) - 5,
                short_number(v[0]));
        }
        out += fmt::format(
            R"(<text x="{:.1f}" y="{:.1f}" font-size="12" text-anchor="middle" stroke="none" fill="#000">{}</text>)"
            "\n</g>\n",
            cx,
            y.bottom + 16,
            xml(servers[i]) + (s ? "" : " (failed)"));
    }
    return out;
}

// A line per server against the connection count (log x), whiskers from min to max.
std::string lines(const bench_report& report, const panel& p, double x0, double top) {
    auto servers = servers_of(report);
    auto counts = connection_counts(report.config);
    double lo = 0, hi = 0;
    bool any = false;
    for (const auto& s : report.summaries) {
        if (s.ok_rounds == 0) {
            continue;
        }
        auto v = values(s, p);
        if (!p.log || v[1] > 0) {
            lo = any ? std::min(lo, v[1]) : v[1];
            any = true;
        }
        hi = std::max(hi, v[2]);
    }
    scale y = make_scale(lo, hi, p.log, top, top + panel_height);
    std::string out = frame(p, y, x0);
    double c_lo = *std::min_element(counts.begin(), counts.end());
    double c_hi = *std::max_element(counts.begin(), counts.end());
    // Half a step of margin on either side of the first and last count, on the log axis.
    double l_lo = std::log10(c_lo) - 0.25, l_hi = std::log10(c_hi) + 0.25;
    auto at_x = [&](double n) { return x0 + (std::log10(n) - l_lo) / (l_hi - l_lo) * panel_width; };
    for (unsigned n : counts) {
        out += fmt::format(
            R"(<line x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}" stroke="#333"/>)"
            "\n"
            R"(<text x="{0:.1f}" y="{3}" font-size="11" text-anchor="middle">{4}</text>)"
            "\n",
            at_x(n),
            y.bottom,
            y.bottom + 4,
            y.bottom + 16,
            short_number(n));
    }
    out += fmt::format(
        R"(<text x="{}" y="{}" font-size="12" text-anchor="middle">connections (log scale)</text>)"
        "\n",
        x0 + panel_width / 2,
        y.bottom + 34);
    for (std::size_t i = 0; i < servers.size(); ++i) {
        std::string colour = colour_of(servers[i], i);
        bool reference = servers[i].starts_with("ref-");
        std::string points, marks;
        for (unsigned n : counts) {
            const auto* s = find(report, servers[i], n);
            if (!s || (p.log && values(*s, p)[0] <= 0)) {
                continue;
            }
            auto v = values(*s, p);
            double px = at_x(n);
            points += fmt::format("{:.1f},{:.1f} ", px, y.at(v[0]));
            marks += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3"/>)"
                                 "\n",
                                 px,
                                 y.at(v[0]));
            if (!p.log || v[1] > 0) {
                marks += fmt::format(
                    R"(<line x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}" stroke-width="1"/>)"
                    "\n",
                    px,
                    y.at(v[1]),
                    y.at(v[2]));
            }
        }
        out += fmt::format(
            R"(<g class="series" data-server="{}" data-metric="{}" stroke="{}" fill="{}">)"
            "\n"
            R"(<polyline points="{}" fill="none" stroke-width="2"{}/>)"
            "\n{}</g>\n",
            xml(servers[i]),
            p.key,
            colour,
            colour,
            points,
            reference ? R"( stroke-dasharray="6 3")" : "",
            marks);
    }
    return out;
}

std::string legend(const bench_report& report, double y) {
    std::string out;
    double x = left_column;
    auto servers = servers_of(report);
    for (std::size_t i = 0; i < servers.size(); ++i) {
        out += fmt::format(R"(<rect x="{}" y="{}" width="14" height="14" fill="{}"/>)"
                           "\n"
                           R"(<text x="{}" y="{}" font-size="13">{}</text>)"
                           "\n",
                           x,
                           y - 11,
                           colour_of(servers[i], i),
                           x + 20,
                           y,
                           xml(servers[i]));
        x += 40 + 9 * static_cast<double>(servers[i].size());
    }
    return out;
}

} // namespace aioloop::apps::plot
