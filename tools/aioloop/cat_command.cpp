// `aioloop cat`: options only; the work is aioloop::apps::run_cat.

#include <string>

#include <aioloop/apps/cat.hpp>

#include "commands.hpp"

namespace aioloop::tool {

void add_cat_command(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("cat", "concatenate files to standard output through Linux AIO");
    // Options live as long as the app: CLI11 calls the callback after main's parse.
    static apps::cat_options options;
    static std::string block_size = "256K";
    cmd->add_option("files", options.files, "files to copy; - or none is standard input");
    cmd->add_flag("--direct", options.direct, "O_DIRECT reads where the filesystem allows them");
    cmd->add_option("--queue-depth,-q", options.queue_depth, "reads in flight")
        ->default_val(apps::default_cat_queue_depth)
        ->check(CLI::Range(1u, apps::max_cat_queue_depth));
    cmd->add_option("--block-size,-b", block_size, "bytes per read: 4096, 64K, 1M ...")
        ->default_val(std::to_string(apps::default_cat_block_size >> 10) + "K")
        ->check([](const std::string& text) -> std::string {
            auto size = apps::parse_size(text);
            if (!size) {
                return "not a size (examples: 4096, 64K, 1M): " + size.error().message();
            }
            return {};
        });
    cmd->add_flag("--stats", options.stats, "print the AIO counters to standard error at the end");
    cmd->callback([&exit_code]() {
        options.block_size = apps::parse_size(block_size).value_or(0);
        exit_code = apps::run_cat(options);
    });
}

} // namespace aioloop::tool
