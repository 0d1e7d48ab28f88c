#pragma once

// The parts of `aioloop cat` shared between its files: inputs, the output, and the copy engine.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <system_error>

#include <sys/uio.h>

#include <aioloop/apps/cat.hpp>
#include <aioloop/sys/aio.hpp>

namespace aioloop::apps::detail {

/// Where one-line notes and error messages go (already prefixed with the program name).
using diag_fn = std::function<void(const std::string&)>;

/// One input: a file we opened (closed by the destructor) or standard input (left open).
class cat_input {
public:
    cat_input() = default;
    cat_input(cat_input&& other) noexcept;
    cat_input& operator=(cat_input&& other) noexcept;
    cat_input(const cat_input&) = delete;
    cat_input& operator=(const cat_input&) = delete;
    ~cat_input();

    int fd = -1;
    bool owned = false;
    std::string name;
    /// Read with offsets, several blocks in flight, below `limit`; sequentially from there on.
    bool seekable = false;
    /// lseek works: reads name offsets from `start` on (procfs honours them; pipes can't seek),
    /// and standard input is left positioned after what was read, as read(2) would leave it.
    bool positioned = false;
    std::int64_t start = 0; ///< first offset (standard input may be positioned mid-file)
    std::int64_t limit = 0; ///< end of the parallel phase: the size, aligned up for O_DIRECT
    bool direct = false;    ///< O_DIRECT is set on fd
    std::size_t align = 1;  ///< offset and length alignment while direct
    bool aio_reads = true;  ///< false once the file refused IOCB_CMD_PREAD (procfs, seq_file)
};

/// Opens `name` ("-" is in_fd). With `direct`, asks for O_DIRECT using the statx STATX_DIOALIGN
/// alignment (4096 when unknown) and falls back to buffered reads with a note. Errors: open(2)
/// and fstat(2) errno values, EISDIR for a directory.
result<cat_input> open_input(
    const std::string& name, int in_fd, bool direct, std::size_t block_size, const diag_fn& diag);

/// Clears O_DIRECT (a read at an unaligned offset, or a filesystem that refused it at read time).
result<void> clear_direct(cat_input& input) noexcept;

/// The output descriptor: IOCB_CMD_PWRITEV when the kernel takes it, write(2) otherwise.
class cat_output {
public:
    /// Inspects `fd` (fstat, fcntl, lseek) and picks the AIO path when it may work.
    static result<cat_output> create(int fd) noexcept;

    int fd() const noexcept { return fd_; }
    bool aio() const noexcept { return aio_; }
    /// The offset for the next AIO write: ignored by the kernel for pipes, sockets and O_APPEND.
    std::int64_t offset() const noexcept { return pos_; }
    /// Records `n` bytes written by an AIO write.
    void advanced(std::size_t n) noexcept;
    /// Whether an AIO write error means "use write(2)" rather than a real failure.
    bool should_fall_back(int err) const noexcept;
    /// Leaves AIO for write(2), moving the file position to where AIO writes got to.
    result<void> to_sync() noexcept;
    /// writev(2) of `iov`: how many bytes it took (at least 1). Retries EINTR, polls on EAGAIN.
    result<std::size_t> write_some(std::span<const iovec> iov) noexcept;
    /// Leaves the file position after the data, as write(2) would have.
    result<void> finish() noexcept;

    std::uint64_t bytes_written() const noexcept { return bytes_; }
    std::uint64_t write_calls() const noexcept { return write_calls_; }
    bool same_file(dev_t dev, ino_t ino) const noexcept;
    /// Bytes worth gathering into one write: a pipe's capacity (a bigger write only waits for
    /// the reader while our next reads could run), unlimited otherwise.
    std::size_t max_write() const noexcept { return max_write_; }

private:
    int fd_ = -1;
    bool aio_ = false;
    bool seekable_ = false;
    bool append_ = false;
    bool regular_ = false;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::int64_t pos_ = 0;
    std::size_t max_write_ = SIZE_MAX;
    std::uint64_t aio_bytes_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t write_calls_ = 0;
};

/// Page-aligned buffers for queue_depth blocks of block_size bytes, shared by all inputs.
class cat_buffers {
public:
    static result<cat_buffers> create(unsigned queue_depth, std::size_t block_size) noexcept;
    cat_buffers(cat_buffers&& other) noexcept;
    cat_buffers& operator=(cat_buffers&&) = delete;
    cat_buffers(const cat_buffers&) = delete;
    cat_buffers& operator=(const cat_buffers&) = delete;
    ~cat_buffers();

    std::byte* block(unsigned i) const noexcept { return base_ + std::size_t{i} * block_size_; }
    unsigned queue_depth() const noexcept { return queue_depth_; }
    std::size_t block_size() const noexcept { return block_size_; }

private:
    cat_buffers(std::byte* base, unsigned queue_depth, std::size_t block_size) noexcept;
    std::byte* base_ = nullptr;
    unsigned queue_depth_ = 0;
    std::size_t block_size_ = 0;
};

/// How copying one input ended: a read error is about this file; a write error ends the run.
struct copy_outcome {
    std::error_code read_error;
    std::error_code write_error;
    std::uint64_t sync_reads = 0;
};

/// Copies `input` to `output` through `ctx`, keeping up to queue_depth reads in flight.
copy_outcome copy_input(sys::aio_context& ctx,
                        const cat_buffers& buffers,
                        cat_input& input,
                        cat_output& output,
                        const diag_fn& diag);

} // namespace aioloop::apps::detail
