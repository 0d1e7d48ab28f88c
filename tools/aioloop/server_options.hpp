#pragma once

// The options every server subcommand shares (--listen, --backend, --threads, ...), turned into a
// server_config once CLI11 has parsed them.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <aioloop/apps/server.hpp>

namespace aioloop::tool {

struct server_options {
    std::vector<std::string> listen;
    std::string backend = "auto";
    unsigned threads = 1;
    unsigned max_connections = 4096;
    unsigned grace_ms = 5000;
    bool quiet = false;
    bool stats = false;
    bool force_syscalls = false;
    std::string metrics;
};

/// Adds the shared options to `command`; `default_listen` is used when --listen is absent.
void add_server_options(CLI::App& command, server_options& options);

/// The server_config for the parsed options; throws CLI::ValidationError for bad addresses.
apps::server_config make_server_config(const server_options& options,
                                       std::string name,
                                       const std::string& default_listen);

} // namespace aioloop::tool
