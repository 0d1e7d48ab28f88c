#pragma once

// Each subcommand adds itself to the app; main() only parses and returns the exit code that the
// chosen subcommand left in `exit_code`.

#include <CLI/CLI.hpp>

namespace aioloop::tool {

void add_probe_command(CLI::App& app, int& exit_code);
void add_cat_command(CLI::App& app, int& exit_code);
void add_echo_command(CLI::App& app, int& exit_code);
void add_http_command(CLI::App& app, int& exit_code);
void add_proxy_command(CLI::App& app, int& exit_code);
void add_load_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);

} // namespace aioloop::tool
