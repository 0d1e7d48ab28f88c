#pragma once

// `aioloop cat`: concatenates files to an output descriptor through Linux AIO, with several reads
// in flight and the write of finished blocks batched into the same io_submit as the next reads.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <aioloop/result.hpp>
#include <aioloop/sys/aio.hpp>

namespace aioloop::apps {

/// Chosen by measurement (docs/cat.md): a 1 GiB file into a pipe.
inline constexpr unsigned default_cat_queue_depth = 8;
inline constexpr std::size_t default_cat_block_size = std::size_t{256} << 10;
/// Limits that keep the buffers (queue_depth * block_size) and the iovec count sane.
inline constexpr unsigned max_cat_queue_depth = 1024;
inline constexpr std::size_t max_cat_buffer_bytes = std::size_t{1} << 30;

struct cat_options {
    std::vector<std::string> files; ///< "-" is standard input; empty means standard input
    bool direct = false;            ///< O_DIRECT reads where the filesystem allows them
    unsigned queue_depth = default_cat_queue_depth;
    std::size_t block_size = default_cat_block_size;
    bool stats = false; ///< print the AIO counters to err_fd at the end
    int in_fd = 0;
    int out_fd = 1;
    int err_fd = 2;
    std::string program = "aioloop cat"; ///< prefix of every message
};

/// What a run did, for --stats and tests.
struct cat_report {
    sys::aio_counters aio;
    std::uint64_t bytes_written = 0;
    std::uint64_t write_calls = 0;  ///< write(2)/writev(2) calls (output that refused AIO)
    std::uint64_t sync_reads = 0;   ///< read(2)/pread(2) calls (inputs that refused AIO)
    std::uint64_t direct_files = 0; ///< files read with O_DIRECT
    bool output_aio = false;        ///< whether the output was written with IOCB_CMD_PWRITEV
    std::size_t block_size = 0;     ///< effective block size (rounded up for --direct)
};

/// Parses a size such as 4096, 64K, 64KiB, 1M or 1G (powers of 1024). EINVAL on anything else
/// or zero, ERANGE when it overflows.
result<std::size_t> parse_size(std::string_view text) noexcept;

/// Checks the options: EINVAL for a zero or too large queue depth or block size, with `why`.
result<void> validate(const cat_options& options, std::string& why);

/// Copies every file to options.out_fd. A file that can't be opened or read gets a message on
/// err_fd and the others are still copied; returns 0 when all went well, 1 otherwise (like cat).
int run_cat(const cat_options& options, cat_report* report = nullptr);

} // namespace aioloop::apps
