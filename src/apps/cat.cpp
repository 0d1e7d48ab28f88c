// `aioloop cat`: the run over all files, messages, and --stats.

#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/apps/cat.hpp>

#include "apps/cat_internal.hpp"

namespace aioloop::apps {

namespace {

constexpr std::size_t page = 4096;

void write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return; // nowhere left to complain to
        }
        done += static_cast<std::size_t>(n);
    }
}

std::string stats_text(const cat_report& r, unsigned queue_depth) {
    std::string out = "aioloop cat statistics\n";
    out += fmt::format("{:<22} {}\n", "queue_depth", queue_depth);
    out += fmt::format("{:<22} {}\n", "block_size", r.block_size);
    out += fmt::format("{:<22} {}\n", "bytes_written", r.bytes_written);
    out += fmt::format("{:<22} {}\n", "output", r.output_aio ? "aio pwritev" : "writev(2)");
    out += fmt::format("{:<22} {}\n", "write_calls", r.write_calls);
    out += fmt::format("{:<22} {}\n", "sync_reads", r.sync_reads);
    out += fmt::format("{:<22} {}\n", "direct_files", r.direct_files);
    out += sys::format_counters(r.aio);
    return out;
}

} // namespace

int run_cat(const cat_options& options, cat_report* report) {
    const std::string& program = options.program;
    detail::diag_fn diag = [&](const std::string& line) {
        write_all(options.err_fd, fmt::format("{}: {}\n", program, line));
    };
    std::string why;
    if (!validate(options, why)) {
        diag(why);
        return 1;
    }
    std::size_t block_size = options.block_size;
    if (options.direct && block_size % page != 0) {
        // O_DIRECT needs aligned lengths: round up rather than refuse, and say so once.
        block_size = (block_size + page - 1) / page * page;
        diag(fmt::format("--direct: block size rounded up to {}", block_size));
    }
    auto buffers = detail::cat_buffers::create(options.queue_depth, block_size);
    if (!buffers) {
        diag(fmt::format("cannot allocate {} x {} bytes: {}",
                         options.queue_depth,
                         block_size,
                         buffers.error().message()));
        return 1;
    }
    // One slot per block and one for the write: submit never meets a full context.
    unsigned nr_events = options.queue_depth + 1;
    auto ctx = sys::aio_context::create(nr_events);
    if (!ctx) {
        diag(sys::setup_error_message(nr_events, ctx.error()));
        return 1;
    }
    auto output = detail::cat_output::create(options.out_fd);
    if (!output) {
        diag(fmt::format("standard output: {}", output.error().message()));
        return 1;
    }
    std::vector<std::string> files = options.files;
    if (files.empty()) {
        files.emplace_back("-");
    }
    cat_report r;
    r.block_size = block_size;
    int status = 0;
    bool write_failed = false;
    for (const std::string& name : files) {
        auto input = detail::open_input(name, options.in_fd, options.direct, block_size, diag);
        if (!input) {
            diag(fmt::format("{}: {}", name, input.error().message()));
            status = 1;
            continue;
        }
        struct stat st {};
        if (input->seekable && ::fstat(input->fd, &st) == 0 &&
            output->same_file(st.st_dev, st.st_ino)) {
            // Reading a file while appending it to itself never ends; cat refuses it too.
            diag(fmt::format("{}: input file is output file", name));
            status = 1;
            continue;
        }
        r.direct_files += input->direct ? 1 : 0;
        auto outcome = detail::copy_input(*ctx, *buffers, *input, *output, diag);
        r.sync_reads += outcome.sync_reads;
        if (outcome.read_error) {
            diag(fmt::format("{}: {}", name, outcome.read_error.message()));
            status = 1;
        }
        if (outcome.write_error) {
            diag(fmt::format("write error: {}", outcome.write_error.message()));
            status = 1;
            write_failed = true;
            break;
        }
    }
    if (auto finished = output->finish(); !finished && !write_failed) {
        diag(fmt::format("write error: {}", finished.error().message()));
        status = 1;
    }
    r.aio = ctx->counters();
    r.bytes_written = output->bytes_written();
    r.write_calls = output->write_calls();
    r.output_aio = output->aio();
    if (options.stats) {
        write_all(options.err_fd, stats_text(r, options.queue_depth));
    }
    if (report != nullptr) {
        *report = r;
    }
    return status;
}

} // namespace aioloop::apps
