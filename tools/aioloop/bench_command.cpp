#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

#include "commands.hpp"

namespace aioloop::tool {

namespace {

struct bench_args {
    std::string scenario = "echo";
    std::string backends = "aio,epoll,uring";
    unsigned connections = 200;
    std::string size = "64";
    double duration = 3.0;
    unsigned rounds = 3;
    bool pin = false;
    double rate = 0;
    std::string json;
    bool reference = false;
    double kpti_ns = 200;
};

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
    auto sizes = apps::parse_size_range(args.size);
    if (!sizes || sizes->first == 0 || sizes->first != sizes->second) {
        throw CLI::ValidationError("--size", args.size + ": want one size in bytes, e.g. 64 or 4K");
    }
    config.size = sizes->first;
    config.connections = args.connections;
    config.duration = std::chrono::milliseconds(static_cast<long>(args.duration * 1000));
    config.rounds = args.rounds;
    config.pin = args.pin;
    config.rate = args.rate;
    config.reference = args.reference;
    config.kpti_extra_ns = args.kpti_ns;
    return config;
}

} // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<bench_args>();
    CLI::App* command = app.add_subcommand(
        "bench",
        "Side-by-side benchmark: starts the server under test per backend and round, drives it "
        "with the load generator, counts its system calls and CPU time");
    command->add_option("scenario", args->scenario, "what to run (echo)")
        ->check(CLI::IsMember({"echo"}))
        ->capture_default_str();
    command->add_option("--backends", args->backends, "comma-separated: aio,epoll,uring")
        ->capture_default_str();
    command->add_option("--connections,-n", args->connections, "connections")
        ->check(CLI::Range(1u, 1u << 20))
        ->capture_default_str();
    command->add_option("--size,-s", args->size, "message size in bytes")->capture_default_str();
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
        // Failure when nothing was measured at all; a backend the kernel lacks is only skipped.
        bool any = false;
        for (const auto& s : report->summaries) {
            any = any || s.ok_rounds > 0;
        }
        exit_code = any ? 0 : 1;
    });
}

} // namespace aioloop::tool
