#include <memory>

#include <fmt/format.h>

#include <aioloop/apps/http.hpp>

#include "commands.hpp"
#include "server_options.hpp"

namespace aioloop::tool {

void add_http_command(CLI::App& app, int& exit_code) {
    auto* command = app.add_subcommand("http", "static HTTP/1.1 server; disk reads never block");
    auto options = std::make_shared<server_options>();
    auto http = std::make_shared<apps::http_options>();
    auto header_timeout_ms = std::make_shared<unsigned>(10'000);
    auto keepalive_timeout_ms = std::make_shared<unsigned>(15'000);
    auto cache_ttl_ms = std::make_shared<unsigned>(1000);
    auto no_direct = std::make_shared<bool>(false);
    add_server_options(*command, *options);
    command->add_option("--root,-r", http->root, "directory to serve")
        ->required()
        ->check(CLI::ExistingDirectory);
    command->add_option("--access-log", http->access_log, "FILE to append to, or - for stdout");
    command
        ->add_option("--header-timeout-ms",
                     *header_timeout_ms,
                     "a request head must arrive within this (408 after)")
        ->capture_default_str();
    command
        ->add_option(
            "--keepalive-timeout-ms", *keepalive_timeout_ms, "idle connections close after this")
        ->capture_default_str();
    command->add_option("--pool-threads", http->pool_threads, "blocking-pool threads per loop")
        ->check(CLI::Range(1u, 256u))
        ->capture_default_str();
    command->add_option("--cache-entries", http->cache_entries, "open files kept per loop")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
        ->capture_default_str();
    command->add_option("--cache-ttl-ms", *cache_ttl_ms, "reopen cached files after this")
        ->capture_default_str();
    command->add_option("--chunk-size", http->chunk_size, "file bytes read and sent at once")
        ->check(CLI::Range(std::size_t{4096}, std::size_t{16} << 20))
        ->capture_default_str();
    command->add_flag("--no-direct-io", *no_direct, "aio: read page-cache misses on the pool");
    command->callback([=, &exit_code] {
        auto config = make_server_config(*options, "http", "127.0.0.1:8080");
        apps::http_options o = *http;
        o.header_timeout = std::chrono::milliseconds(*header_timeout_ms);
        o.keepalive_timeout = std::chrono::milliseconds(*keepalive_timeout_ms);
        o.cache_ttl = std::chrono::milliseconds(*cache_ttl_ms);
        o.direct_io = !*no_direct;
        auto factory = apps::make_http_handler(o);
        if (!factory) {
            fmt::print(stderr,
                       "aioloop http: {} or --access-log {}: {}\n",
                       o.root,
                       o.access_log,
                       factory.error().message());
            exit_code = 1;
            return;
        }
        exit_code = apps::run_server(config, *factory);
    });
}

} // namespace aioloop::tool
