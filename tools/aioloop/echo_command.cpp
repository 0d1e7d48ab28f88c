#include <memory>

#include <aioloop/apps/echo.hpp>

#include "commands.hpp"
#include "server_options.hpp"

namespace aioloop::tool {

void add_echo_command(CLI::App& app, int& exit_code) {
    auto* command = app.add_subcommand("echo", "TCP echo server: every byte comes back");
    auto options = std::make_shared<server_options>();
    auto buffer_size = std::make_shared<std::size_t>(16 * 1024);
    add_server_options(*command, *options);
    command->add_option("--buffer-size", *buffer_size, "bytes read at once")
        ->check(CLI::Range(std::size_t{64}, std::size_t{16} << 20))
        ->capture_default_str();
    command->callback([options, buffer_size, &exit_code] {
        auto config = make_server_config(*options, "echo", "127.0.0.1:7000");
        exit_code =
            apps::run_server(config, apps::make_echo_handler({.buffer_size = *buffer_size}));
    });
}

} // namespace aioloop::tool
