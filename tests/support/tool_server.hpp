#pragma once

// An aioloop server subcommand (echo, proxy...) run from the built tool on port 0: started,
// waited for until its log says where it listens, stopped with SIGTERM. Header-only because
// AIOLOOP_TOOL_PATH is defined for the test binaries, not for this support library.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <aioloop/loop.hpp>

#include "support/child_process.hpp"

namespace aioloop::testing {

struct tool_server {
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0; ///< of the first listener; 0 when it didn't start
};

#ifdef AIOLOOP_TOOL_PATH
/// Runs `aioloop ARGS...` and waits (up to 10 s) for its "listening on" line.
inline tool_server start_tool_server(std::vector<std::string> args) {
    args.insert(args.begin(), AIOLOOP_TOOL_PATH);
    tool_server s;
    s.process = std::make_unique<child_process>(std::move(args));
    if (s.process->wait_for_stderr("listening on ", std::chrono::seconds(10))) {
        s.port = listening_port(s.process->err());
    }
    return s;
}
#endif

/// Whether a loop on `kind` can be made here; the reason when it can't.
inline std::string backend_unavailable(backend_kind kind) {
    loop_options options;
    options.backend = kind;
    options.max_connections = 64;
    auto made = loop::create(options);
    return made ? std::string() : made.error().message;
}

} // namespace aioloop::testing
