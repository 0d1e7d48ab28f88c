// aioloop: one binary, one subcommand per job. Parses options with CLI11 and calls the library.

#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"aioloop: Linux network servers on batched AIO"};
    app.require_subcommand(1);
    int exit_code = 0;
    aioloop::tool::add_probe_command(app, exit_code);
    aioloop::tool::add_cat_command(app, exit_code);
    aioloop::tool::add_echo_command(app, exit_code);
    aioloop::tool::add_http_command(app, exit_code);
    aioloop::tool::add_proxy_command(app, exit_code);
    aioloop::tool::add_load_command(app, exit_code);
    aioloop::tool::add_bench_command(app, exit_code);
    CLI11_PARSE(app, argc, argv);
    return exit_code;
}
