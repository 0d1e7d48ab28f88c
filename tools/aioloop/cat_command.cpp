#include "commands.hpp"

namespace aioloop::tool {

void add_cat_command(CLI::App& app, int& exit_code) {
    (void)exit_code;
    app.add_subcommand("cat", "not written yet");
}

} // namespace aioloop::tool
