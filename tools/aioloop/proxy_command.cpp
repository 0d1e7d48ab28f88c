// `aioloop proxy`: options only; the work is aioloop::apps::make_proxy_handler under run_server.

#include <memory>
#include <string>

#include <fmt/format.h>

#include <aioloop/apps/proxy.hpp>

#include "commands.hpp"
#include "server_options.hpp"

namespace aioloop::tool {

namespace {

struct proxy_args {
    std::string upstream;
    unsigned connect_timeout_ms = 5000;
    unsigned idle_timeout_ms = 0;
    std::size_t buffer_size = 64 * 1024;
    std::size_t bulk_buffer_size = 256 * 1024;
    std::size_t bulk_low_water = 256 * 1024;
    unsigned bulk_low_water_wait_us = 1000;
};

} // namespace

void add_proxy_command(CLI::App& app, int& exit_code) {
    auto* command =
        app.add_subcommand("proxy", "TCP proxy: every client gets its own upstream connection");
    auto options = std::make_shared<server_options>();
    auto args = std::make_shared<proxy_args>();
    add_server_options(*command, *options);
    command
        ->add_option("--upstream,-u",
                     args->upstream,
                     "HOST:PORT to connect to; a name is resolved once, at start, and its "
                     "addresses (IPv6 and IPv4) tried in order")
        ->required();
    command
        ->add_option("--connect-timeout-ms", args->connect_timeout_ms, "per upstream address tried")
        ->check(CLI::Range(1u, 3'600'000u))
        ->capture_default_str();
    command
        ->add_option("--idle-timeout-ms",
                     args->idle_timeout_ms,
                     "close a pair that moved no byte either way for this long; 0: never")
        ->capture_default_str();
    command->add_option("--buffer-size", args->buffer_size, "bytes read at once per direction")
        ->transform(CLI::AsSizeValue(false))
        ->check(CLI::Range(std::size_t{512}, std::size_t{16} << 20))
        ->capture_default_str();
    command
        ->add_option("--bulk-buffer-size",
                     args->bulk_buffer_size,
                     "bytes read at once by a direction whose last read filled its buffer; at "
                     "most --buffer-size: never grow")
        ->transform(CLI::AsSizeValue(false))
        ->check(CLI::Range(std::size_t{512}, std::size_t{16} << 20))
        ->capture_default_str();
    command
        ->add_option("--bulk-low-water",
                     args->bulk_low_water,
                     "a direction that keeps moving bulk buffers wakes only once this many bytes "
                     "are queued (SO_RCVLOWAT), not at every TCP segment; 0: never")
        ->transform(CLI::AsSizeValue(false))
        ->check(CLI::Range(std::size_t{0}, std::size_t{16} << 20))
        ->capture_default_str();
    command
        ->add_option("--bulk-low-water-wait-us",
                     args->bulk_low_water_wait_us,
                     "the longest wait for the low-water mark; the last bytes of a sender that "
                     "stopped short of it go out this late, once per burst")
        ->check(CLI::Range(1u, 1'000'000u))
        ->capture_default_str();
    command->callback([options, args, &exit_code] {
        auto config = make_server_config(*options, "proxy", "127.0.0.1:7001");
        auto resolved = net::address::resolve(args->upstream);
        if (!resolved) {
            throw CLI::ValidationError(
                "--upstream", fmt::format("{}: {}", args->upstream, resolved.error().message()));
        }
        apps::proxy_options proxy;
        proxy.upstream = std::move(*resolved);
        proxy.upstream_name = args->upstream;
        proxy.connect_timeout = std::chrono::milliseconds(args->connect_timeout_ms);
        proxy.idle_timeout = std::chrono::milliseconds(args->idle_timeout_ms);
        proxy.buffer_size = args->buffer_size;
        proxy.bulk_buffer_size = args->bulk_buffer_size;
        proxy.bulk_low_water = args->bulk_low_water;
        proxy.bulk_low_water_wait = std::chrono::microseconds(args->bulk_low_water_wait_us);
        exit_code = apps::run_server(config, apps::make_proxy_handler(std::move(proxy)));
    });
}

} // namespace aioloop::tool
