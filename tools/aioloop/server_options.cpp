#include "server_options.hpp"

#include <fmt/format.h>

namespace aioloop::tool {

void add_server_options(CLI::App& command, server_options& options) {
    command.add_option(
        "--listen,-l", options.listen, "ADDR:PORT to listen on (repeatable; [::1]:PORT for IPv6)");
    command.add_option("--backend,-b", options.backend, "aio, epoll, uring or auto")
        ->check(CLI::IsMember({"auto", "aio", "epoll", "uring"}))
        ->capture_default_str();
    command
        .add_option("--threads,-t",
                    options.threads,
                    "loops, one per thread, each with its own SO_REUSEPORT listener")
        ->check(CLI::Range(1u, 1024u))
        ->capture_default_str();
    command
        .add_option("--max-connections",
                    options.max_connections,
                    "connections per thread at most (sizes the AIO context)")
        ->check(CLI::Range(1u, 1u << 20))
        ->capture_default_str();
    command
        .add_option(
            "--grace-ms", options.grace_ms, "after SIGTERM, how long connections may finish")
        ->capture_default_str();
    command.add_flag("--quiet,-q", options.quiet, "no per-connection error lines");
    command.add_flag(
        "--stats", options.stats, "print loop statistics to stderr at exit (SIGUSR1: now)");
    command.add_flag("--force-syscalls",
                     options.force_syscalls,
                     "aio: no user-space ring reaping (for strace and valgrind)");
    command.add_option("--metrics", options.metrics, "ADDR:PORT to serve Prometheus /metrics on");
}

namespace {

net::address resolve_one(const std::string& text, const char* what) {
    auto found = net::address::resolve(text);
    if (!found) {
        throw CLI::ValidationError(what, fmt::format("{}: {}", text, found.error().message()));
    }
    return found->front();
}

} // namespace

apps::server_config make_server_config(const server_options& options,
                                       std::string name,
                                       const std::string& default_listen) {
    apps::server_config config;
    config.name = std::move(name);
    for (const std::string& text :
         options.listen.empty() ? std::vector{default_listen} : options.listen) {
        config.listen.push_back(resolve_one(text, "--listen"));
    }
    config.loop.backend = *parse_backend_kind(options.backend);
    config.loop.max_connections = options.max_connections;
    config.loop.force_syscalls = options.force_syscalls;
    config.threads = options.threads;
    config.grace = std::chrono::milliseconds(options.grace_ms);
    config.quiet = options.quiet;
    config.print_stats = options.stats;
    if (!options.metrics.empty()) {
        config.metrics = resolve_one(options.metrics, "--metrics");
    }
    return config;
}

} // namespace aioloop::tool
