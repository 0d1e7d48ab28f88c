#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include <aioloop/apps/load.hpp>

#include "commands.hpp"

namespace aioloop::tool {

namespace {

struct load_args {
    std::string connect;
    unsigned connections = 200;
    std::string size = "64";
    double duration = 5.0;
    std::uint64_t requests = 0;
    double rate = 0;
    unsigned threads = 1;
    std::string backend = "auto";
    std::uint64_t seed = 1;
    unsigned interval_ms = 1000;
    bool json = false;
    std::string http_path;
    std::string http_body;
};

apps::load_config make_config(const load_args& args, bool duration_given) {
    apps::load_config config;
    auto target = net::address::resolve(args.connect);
    if (!target) {
        throw CLI::ValidationError("--connect",
                                   fmt::format("{}: {}", args.connect, target.error().message()));
    }
    config.target = target->front();
    auto sizes = apps::parse_size_range(args.size);
    if (!sizes || sizes->first == 0) {
        throw CLI::ValidationError("--size",
                                   args.size + ": want BYTES or MIN-MAX, e.g. 64 or 1-64K");
    }
    config.min_size = sizes->first;
    config.max_size = sizes->second;
    config.connections = args.connections;
    config.requests = args.requests;
    if (duration_given || args.requests == 0) {
        config.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(args.duration));
    }
    config.rate = args.rate;
    config.threads = args.threads;
    config.loop.backend = *parse_backend_kind(args.backend);
    config.seed = args.seed;
    config.interval = std::chrono::milliseconds(args.interval_ms);
    if (!args.http_path.empty()) {
        if (args.http_path.front() != '/') {
            throw CLI::ValidationError("--http",
                                       args.http_path + ": want a path such as /index.html");
        }
        config.protocol = apps::load_protocol::http;
        config.http_path = args.http_path;
    }
    if (!args.http_body.empty()) {
        std::ifstream in(args.http_body, std::ios::binary);
        std::stringstream content;
        content << in.rdbuf();
        if (!in) {
            throw CLI::ValidationError("--http-body", args.http_body + ": cannot read it");
        }
        config.http_body = std::make_shared<const std::string>(content.str());
    }
    return config;
}

} // namespace

void add_load_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<load_args>();
    CLI::App* command = app.add_subcommand(
        "load",
        "Load generator: N connections send echo messages (or, with --http, GET requests on "
        "persistent connections), check every byte that comes back, and record the latency of "
        "each request");
    command->add_option("--connect,-c", args->connect, "HOST:PORT of the server")->required();
    command->add_option("--connections,-n", args->connections, "connections")
        ->check(CLI::Range(1u, 1u << 20))
        ->capture_default_str();
    command->add_option("--size,-s", args->size, "message size: BYTES or MIN-MAX (64, 1-64K)")
        ->capture_default_str();
    auto* duration = command->add_option("--duration,-d", args->duration, "seconds to send for")
                         ->check(CLI::PositiveNumber)
                         ->capture_default_str();
    command->add_option("--requests", args->requests, "stop after this many requests in all");
    command->add_option(
        "--rate,-r", args->rate, "open loop: requests/s offered in all (0: closed loop)");
    command->add_option("--threads,-t", args->threads, "client loops, one per thread")
        ->check(CLI::Range(1u, 1024u))
        ->capture_default_str();
    command->add_option("--backend,-b", args->backend, "client backend: aio, epoll, uring or auto")
        ->check(CLI::IsMember({"auto", "aio", "epoll", "uring"}))
        ->capture_default_str();
    command->add_option("--seed", args->seed, "seed of message sizes and content")
        ->capture_default_str();
    command->add_option("--interval-ms", args->interval_ms, "width of the JSON's intervals")
        ->check(CLI::Range(1u, 3600000u))
        ->capture_default_str();
    command->add_flag("--json", args->json, "print the result as one JSON object too");
    auto* http = command->add_option(
        "--http",
        args->http_path,
        "HTTP/1.1 mode: GET PATH on persistent connections; a status other than 200, a short "
        "or malformed response is an error (--size is not used)");
    command
        ->add_option("--http-body",
                     args->http_body,
                     "with --http: every body must equal this local FILE's bytes")
        ->needs(http)
        ->check(CLI::ExistingFile);
    command->callback([args, duration, &exit_code] {
        apps::load_config config = make_config(*args, duration->count() > 0);
        auto done = apps::run_load(config);
        if (!done) {
            fmt::print(stderr, "aioloop load: {}\n", done.error().message);
            exit_code = 1;
            return;
        }
        fmt::print("{}\n", apps::format_summary(*done));
        if (args->json) {
            fmt::print("{}\n", apps::format_json(*done));
        }
        std::fflush(stdout);
        if (!done->first_error.empty()) {
            fmt::print(stderr, "aioloop load: {}\n", done->first_error);
        }
        // Like a test: any error, or nothing answered, is a failure.
        exit_code = done->requests == 0 || done->errors.total() > 0 ? 1 : 0;
    });
}

} // namespace aioloop::tool
