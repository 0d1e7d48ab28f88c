#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

#include "commands.hpp"

namespace aioloop::tool {

namespace {

struct bench_args {
    std::string scenario = "echo";
    std::string backends = "aio,epoll,uring";
    unsigned connections = 200;
    std::string size; ///< "": 64 bytes, or 1K for http
    double duration = 3.0;
    unsigned rounds = 3;
    bool pin = false;
    double rate = 0;
    std::string json;
    bool reference = false;
    double kpti_ns = 200;
    std::string sweep;
    std::string plot;
};

// The command line as typed (from /proc/self/cmdline), for the plot's footnote.
std::string command_line() {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string out;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\0', at);
        std::string word = text.substr(at, end == std::string::npos ? end : end - at);
        out += (out.empty() ? "" : " ") + word;
        at = end == std::string::npos ? text.size() : end + 1;
    }
    return out;
}

// "1,10,100" into connection counts, each in [1, 2^20].
std::vector<unsigned> parse_sweep(const std::string& text) {
    std::vector<unsigned> counts;
    std::stringstream list(text);
    std::string item;
    while (std::getline(list, item, ',')) {
        std::size_t used = 0;
        unsigned long n = 0;
        try {
            n = std::stoul(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != item.size() || n < 1 || n > (1u << 20)) {
            throw CLI::ValidationError("--sweep", item + ": want connection counts like 1,10,100");
        }
        counts.push_back(static_cast<unsigned>(n));
    }
    if (counts.empty()) {
        throw CLI::ValidationError("--sweep", "no connection count given");
    }
    return counts;
}

apps::bench_config make_config(const bench_args& args) {
    apps::bench_config config;
    config.scenario = args.scenario;
    config.backends.clear();
    std::stringstream list(args.backends);
    std::string name;
    while (std::getline(list, name, ',')) {
        if (name != "aio" && name != "epoll" && name != "uring") {
            throw CLI::ValidationError("--backends", name + ": want aio, epoll or uring");
        }
        config.backends.push_back(name);
    }
    if (config.backends.empty()) {
        throw CLI::ValidationError("--backends", "no backend given");
    }
    std::string size = args.size.empty() ? (args.scenario == "http" ? "1K" : "64") : args.size;
    auto sizes = apps::parse_size_range(size);
    if (!sizes || sizes->first == 0 || sizes->first != sizes->second) {
        throw CLI::ValidationError("--size", size + ": want one size in bytes, e.g. 64 or 4K");
    }
    config.size = sizes->first;
    config.connections = args.connections;
    config.duration = std::chrono::milliseconds(static_cast<long>(args.duration * 1000));
    config.rounds = args.rounds;
    config.pin = args.pin;
    config.rate = args.rate;
    if (args.reference && args.scenario != "echo") {
        throw CLI::ValidationError("--reference",
                                   "the C reference servers are echo servers: echo scenario only");
    }
    config.reference = args.reference;
    config.kpti_extra_ns = args.kpti_ns;
    if (!args.sweep.empty()) {
        config.sweep = parse_sweep(args.sweep);
    }
    config.command_line = command_line();
    return config;
}

} // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<bench_args>();
    CLI::App* command = app.add_subcommand(
        "bench",
        "Side-by-side benchmark: starts the server under test per backend and round, drives it "
        "with the load generator, counts its system calls and CPU time");
    command
        ->add_option("scenario",
                     args->scenario,
                     "echo; proxy (aioloop proxy and haproxy before one echo server); http "
                     "(aioloop http and nginx serving one file)")
        ->check(CLI::IsMember({"echo", "proxy", "http"}))
        ->capture_default_str();
    command->add_option("--backends", args->backends, "comma-separated: aio,epoll,uring")
        ->capture_default_str();
    command->add_option("--connections,-n", args->connections, "connections")
        ->check(CLI::Range(1u, 1u << 20))
        ->capture_default_str();
    command->add_option(
        "--size,-s", args->size, "message size in bytes (default 64); http: the file's (1K)");
    command->add_option("--duration,-d", args->duration, "seconds per run")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    command->add_option("--rounds,-r", args->rounds, "interleaved rounds")
        ->check(CLI::Range(1u, 1000u))
        ->capture_default_str();
    command->add_flag("--pin", args->pin, "server on core 0, load generator on core 1");
    command->add_option("--rate", args->rate, "open loop: requests/s offered (0: closed loop)")
        ->capture_default_str();
    command->add_option("--json", args->json, "write every figure to FILE as JSON");
    command->add_flag(
        "--reference", args->reference, "also the C servers of bench/reference (build them)");
    command->add_option("--sweep",
                        args->sweep,
                        "connection counts to run each backend at, e.g. 1,10,100,1000,10000");
    command->add_option("--plot", args->plot, "draw the results as an SVG picture in FILE.svg");
    command->add_option("--kpti-ns", args->kpti_ns, "assumed extra ns per system call, projection")
        ->capture_default_str();
    command->callback([args, &exit_code] {
        apps::bench_config config = make_config(*args);
        auto report = apps::run_bench(config);
        if (!report) {
            fmt::print(stderr, "aioloop bench: {}\n", report.error());
            exit_code = 1;
            return;
        }
        fmt::print("{}", apps::format_bench_table(*report));
        std::fflush(stdout);
        if (!args->json.empty()) {
            std::ofstream out(args->json);
            out << apps::format_bench_json(*report) << '\n';
            if (!out) {
                fmt::print(stderr, "aioloop bench: cannot write {}\n", args->json);
                exit_code = 1;
                return;
            }
        }
        if (!args->plot.empty()) {
            std::ofstream out(args->plot);
            out << apps::format_bench_svg(*report);
            if (!out) {
                fmt::print(stderr, "aioloop bench: cannot write {}\n", args->plot);
                exit_code = 1;
                return;
            }
        }
        // Failure when nothing was measured at all; a backend the kernel lacks is only skipped.
        bool any = false;
        for (const auto& s : report->summaries) {
            any = any || s.ok_rounds > 0;
        }
        exit_code = any ? 0 : 1;
    });
}

} // namespace aioloop::tool
