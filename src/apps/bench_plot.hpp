#pragma once

// What the files of `aioloop bench --plot` share: the page's geometry, a value axis, a panel
// (which figure, in which unit) and the pieces that draw one. SVG text, no library.

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <aioloop/apps/bench.hpp>

namespace aioloop::apps::plot {

constexpr double panel_width = 440;
constexpr double panel_height = 250;
constexpr double row_height = 320;
constexpr double left_column = 80;
constexpr double right_column = 580;
constexpr double header_height = 130;
constexpr double footer_height = 80;
constexpr double width = 1060;

// A value axis: linear from 0, or logarithmic over whole decades.
struct scale {
    double lo = 0, hi = 1;
    bool log = false;
    double top = 0, bottom = 0; // pixels

    double at(double v) const {
        double f = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                       : (v - lo) / (hi - lo);
        return bottom - f * (bottom - top);
    }
    std::vector<double> ticks() const {
        std::vector<double> out;
        if (log) {
            for (double v = lo; v <= hi * 1.001; v *= 10) {
                out.push_back(v);
            }
            return out;
        }
        double raw = (hi - lo) / 5;
        double mag = std::pow(10, std::floor(std::log10(raw)));
        double step = mag * (raw / mag <= 1 ? 1 : raw / mag <= 2 ? 2 : raw / mag <= 5 ? 5 : 10);
        for (double v = lo; v <= hi * 1.0001; v += step) {
            out.push_back(v);
        }
        return out;
    }
};

/// An axis over [lo_value, hi_value] between pixels top and bottom: from 0 to a round top, or
/// over whole decades when `log` (and the values are positive).
scale make_scale(double lo_value, double hi_value, bool log, double top, double bottom);

// One figure of a summary: median, min, max.
using metric = std::array<double, 3> bench_summary::*;

struct panel {
    std::string title;
    std::string unit;
    std::string key; ///< data-metric, for machines reading the picture
    metric field;
    bool log = false;
    double divide = 1; ///< e.g. 1000 to draw µs as ms
};

/// Text escaped for XML (control characters become spaces).
std::string xml(const std::string& text);
/// 12, 1.5k, 40k, 1.2M, 0.05: short labels for ticks and bars.
std::string short_number(double x);
/// The same colour for a server in every panel.
std::string colour_of(const std::string& server, std::size_t index);
/// A figure of a summary in the panel's unit: median, min, max.
std::array<double, 3> values(const bench_summary& s, const panel& p);
/// The servers of a report, in the order first seen.
std::vector<std::string> servers_of(const bench_report& report);
/// Bars per server at `n` connections, medians with min-max whiskers, in a panel at (x0, top).
std::string bars(const bench_report& report, const panel& p, unsigned n, double x0, double top);
/// A line per server against the connection count (log x axis), in a panel at (x0, top).
std::string lines(const bench_report& report, const panel& p, double x0, double top);
/// A coloured square and the name of each server, in a row at height y.
std::string legend(const bench_report& report, double y);

} // namespace aioloop::apps::plot
