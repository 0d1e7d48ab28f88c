#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include <aioloop/sys/probe.hpp>

#include "commands.hpp"

namespace aioloop::tool {

namespace {

struct probe_args {
    bool json = false;
    std::string directory = ".";
};

} // namespace

void add_probe_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<probe_args>();
    CLI::App* probe = app.add_subcommand(
        "probe",
        "Report what this kernel and sandbox allow: AIO, AIO poll, its ring, RWF_NOWAIT, "
        "O_DIRECT alignment, io_uring");
    probe->add_flag("--json", args->json, "Print one JSON object instead of a table");
    probe
        ->add_option("--dir",
                     args->directory,
                     "Directory for the temporary file of the RWF_NOWAIT and O_DIRECT tests")
        ->capture_default_str();
    // A missing feature is an answer, not a failure: exit 0 whenever the probe ran.
    probe->callback([args, &exit_code] {
        auto report = sys::probe_kernel(sys::probe_options{.directory = args->directory});
        fmt::print("{}",
                   args->json ? sys::format_probe_json(report) : sys::format_probe_table(report));
        std::fflush(stdout);
        exit_code = 0;
    });
}

} // namespace aioloop::tool
