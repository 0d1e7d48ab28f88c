#include "commands.hpp"

namespace aioloop::tool {

void add_probe_command(CLI::App& app, int& exit_code) {
    (void)exit_code;
    app.add_subcommand("probe", "not written yet");
}

} // namespace aioloop::tool
