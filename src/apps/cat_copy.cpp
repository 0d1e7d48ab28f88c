// The copy engine of `aioloop cat`: up to queue_depth block reads in flight, and each turn one
// io_submit carrying the write of every block finished in order (one PWRITEV) followed by the
// reads that refill the freed blocks. Buffered reads and pipe writes complete inside io_submit,
// so their completions are already in the ring afterwards: about one system call per turn.

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include <poll.h>
#include <unistd.h>

#include <climits>
#include <fmt/format.h>

#include "apps/cat_internal.hpp"

namespace aioloop::apps::detail {

namespace {

constexpr std::uint64_t write_tag = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t no_seq = std::numeric_limits<std::uint64_t>::max();

struct block {
    std::byte* buf = nullptr;
    std::uint64_t seq = 0;
    std::int64_t offset = 0; ///< file offset of buf[0]
    std::size_t want = 0;    ///< bytes asked for
    std::size_t filled = 0;  ///< bytes read
    std::size_t written = 0; ///< bytes written out
    bool refill = false;     ///< a short read is retried (parallel phase of a regular file)
    bool reading = false;
    bool ready = false;
    bool eof = false;
    iocb cb{};
};

class copier {
public:
    copier(sys::aio_context& ctx,
           const cat_buffers& buffers,
           cat_input& input,
           cat_output& output,
           const diag_fn& diag)
        : ctx_(ctx)
        , input_(input)
        , output_(output)
        , diag_(diag)
        , blocks_(buffers.queue_depth())
        , block_size_(buffers.block_size())
        , next_offset_(input.start) {
        for (unsigned i = 0; i < buffers.queue_depth(); ++i) {
            blocks_[i].buf = buffers.block(i);
        }
        events_.resize(blocks_.size() + 1);
        batch_.reserve(blocks_.size() + 1);
    }

    copy_outcome run();
    std::int64_t end_offset() const { return next_offset_; }

private:
    block& at(std::uint64_t seq) { return blocks_[seq % blocks_.size()]; }
    bool parallel() const { return input_.seekable && next_offset_ < input_.limit; }
    bool may_start_read() const;
    void start_read();
    void issue(block& b);
    void on_read(block& b, std::int64_t res, bool from_aio);
    void on_write(std::int64_t res);
    void queue_write();
    void wrote(std::size_t n);
    void retire();
    void handle(std::span<const io_event> events);
    bool done() const { return (output_done_ || write_error_) && in_flight_ == 0; }

    sys::aio_context& ctx_;
    cat_input& input_;
    cat_output& output_;
    const diag_fn& diag_;
    std::vector<block> blocks_;
    std::size_t block_size_;
    std::vector<io_event> events_;
    std::vector<iocb*> batch_;
    std::vector<block*> refills_;
    std::vector<iovec> iov_;
    iocb write_cb_{};
    bool write_in_flight_ = false;
    std::size_t in_flight_ = 0; ///< iocbs the kernel holds
    std::size_t reading_ = 0;   ///< blocks whose read isn't finished (in flight or to refill)
    std::uint64_t head_seq_ = 0;
    std::uint64_t next_seq_ = 0;
    std::uint64_t eof_seq_ = no_seq;
    std::int64_t next_offset_ = 0;
    bool output_done_ = false;
    bool progress_ = false;
    copy_outcome outcome_;
    bool write_error_ = false;
};

bool copier::may_start_read() const {
    if (eof_seq_ != no_seq || write_error_ || next_seq_ - head_seq_ >= blocks_.size()) {
        return false;
    }
    // Past the size (or for a stream) read one block at a time until read says 0: a stream
    // has no offsets to read ahead at, and a file that grew is read the way cat reads it.
    return parallel() || reading_ == 0;
}

void copier::start_read() {
    block& b = at(next_seq_);
    b.seq = next_seq_++;
    b.offset = next_offset_;
    b.filled = 0;
    b.written = 0;
    b.ready = false;
    b.eof = false;
    b.refill = parallel();
    if (b.refill) {
        b.want = static_cast<std::size_t>(std::min<std::int64_t>(
            static_cast<std::int64_t>(block_size_), input_.limit - next_offset_));
        next_offset_ += static_cast<std::int64_t>(b.want);
    } else {
        b.want = block_size_;
    }
    b.reading = true;
    ++reading_;
    issue(b);
}

void copier::issue(block& b) {
    std::byte* buf = b.buf + b.filled;
    std::size_t len = b.want - b.filled;
    std::int64_t offset = b.offset + static_cast<std::int64_t>(b.filled);
    auto misaligned = [&](std::uint64_t v) { return v % input_.align != 0; };
    if (input_.direct && (misaligned(static_cast<std::uint64_t>(offset)) || misaligned(len) ||
                          misaligned(reinterpret_cast<std::uintptr_t>(buf)))) {
        // The unaligned tail of an O_DIRECT file: the rest is read through the page cache.
        if (auto cleared = clear_direct(input_); !cleared) {
            on_read(b, -cleared.error().value(), false);
            return;
        }
    }
    if (input_.aio_reads) {
        sys::prep_pread(b.cb, input_.fd, buf, len, input_.positioned ? offset : 0, b.seq);
        batch_.push_back(&b.cb);
        return;
    }
    ++outcome_.sync_reads;
    ssize_t n =
        input_.positioned ? ::pread(input_.fd, buf, len, offset) : ::read(input_.fd, buf, len);
    on_read(b, n < 0 ? -errno : n, false);
}

void copier::on_read(block& b, std::int64_t res, bool from_aio) {
    progress_ = true;
    if (eof_seq_ != no_seq && b.seq > eof_seq_) {
        // Read ahead past an end of file or an error: dropped, like a read cat never made.
        b.reading = false;
        --reading_;
        return;
    }
    int err = res < 0 ? static_cast<int>(-res) : 0;
    if (err == EINVAL && input_.direct) {
        diag_(fmt::format("{}: O_DIRECT read refused ({}); reading buffered",
                          input_.name,
                          std::strerror(EINVAL)));
        if (auto cleared = clear_direct(input_); cleared) {
            refills_.push_back(&b);
            return;
        }
    } else if (err == EINVAL && from_aio) {
        // Files without read_iter (procfs seq_files, some drivers) refuse IOCB_CMD_PREAD.
        input_.aio_reads = false;
        refills_.push_back(&b);
        return;
    } else if (err == EINTR) {
        refills_.push_back(&b);
        return;
    } else if (err == EAGAIN) {
        // A non-blocking standard input: wait the way a blocking read would.
        pollfd p{input_.fd, POLLIN, 0};
        ::poll(&p, 1, -1);
        refills_.push_back(&b);
        return;
    }
    if (res > 0) {
        b.filled += static_cast<std::size_t>(res);
        if (b.refill && b.filled < b.want) {
            // A short read inside the file's size: ask for the rest, never skip it.
            refills_.push_back(&b);
            return;
        }
        if (!b.refill) {
            next_offset_ = b.offset + static_cast<std::int64_t>(b.filled);
        }
    } else {
        if (res < 0) {
            outcome_.read_error = errno_code(err);
        }
        b.eof = true;
        eof_seq_ = b.seq;
    }
    b.reading = false;
    b.ready = true;
    --reading_;
}

void copier::on_write(std::int64_t res) {
    progress_ = true;
    write_in_flight_ = false;
    if (res > 0) {
        output_.advanced(static_cast<std::size_t>(res));
        wrote(static_cast<std::size_t>(res));
        return;
    }
    int err = res == 0 ? EIO : static_cast<int>(-res);
    if (err == EINTR) {
        return; // queue_write() sends the same bytes again
    }
    if (output_.should_fall_back(err)) {
        if (auto ok = output_.to_sync(); ok) {
            return;
        }
        err = errno;
    }
    outcome_.write_error = errno_code(err);
    write_error_ = true;
}

// One PWRITEV for every block finished in order: a single iocb keeps the output in order even
// if the kernel wrote it short, since nothing behind it was submitted.
void copier::queue_write() {
    if (write_in_flight_ || write_error_) {
        return;
    }
    iov_.clear();
    std::size_t bytes = 0;
    for (std::uint64_t seq = head_seq_;
         seq < next_seq_ && iov_.size() < IOV_MAX && bytes < output_.max_write();
         ++seq) {
        block& b = at(seq);
        if (!b.ready) {
            break;
        }
        if (b.filled > b.written) {
            iov_.push_back({b.buf + b.written, b.filled - b.written});
            bytes += b.filled - b.written;
        }
        if (b.eof) {
            break;
        }
    }
    if (iov_.empty()) {
        return;
    }
    if (output_.aio()) {
        sys::prep_pwritev(write_cb_, output_.fd(), iov_, output_.offset(), write_tag);
        batch_.push_back(&write_cb_);
        write_in_flight_ = true;
        return;
    }
    progress_ = true;
    auto n = output_.write_some(iov_);
    if (!n) {
        outcome_.write_error = n.error();
        write_error_ = true;
        return;
    }
    wrote(*n);
}

void copier::wrote(std::size_t n) {
    for (std::uint64_t seq = head_seq_; n > 0 && seq < next_seq_; ++seq) {
        block& b = at(seq);
        std::size_t take = std::min(n, b.filled - b.written);
        b.written += take;
        n -= take;
    }
    retire();
}

void copier::retire() {
    while (!output_done_ && head_seq_ < next_seq_) {
        block& b = at(head_seq_);
        if (!b.ready || b.written < b.filled) {
            break;
        }
        b.ready = false;
        ++head_seq_;
        output_done_ = b.eof;
    }
}

void copier::handle(std::span<const io_event> events) {
    for (const io_event& ev : events) {
        --in_flight_;
        if (ev.data == write_tag) {
            on_write(ev.res);
        } else {
            on_read(at(ev.data), ev.res, true);
        }
    }
}

copy_outcome copier::run() {
    const timespec zero{};
    while (!done()) {
        progress_ = false;
        if (in_flight_ > 0 && ctx_.ring_in_use()) {
            if (auto n = ctx_.reap(events_, 0, &zero); n) {
                handle(std::span(events_).first(*n));
            }
        }
        retire();
        batch_.clear();
        queue_write();
        // Refills first: they are older than any new block and keep a stream's order.
        while (!refills_.empty() && !write_error_) {
            block* b = refills_.back();
            refills_.pop_back();
            issue(*b);
        }
        while (may_start_read()) {
            start_read();
        }
        if (!batch_.empty()) {
            std::size_t taken = ctx_.submit(batch_);
            // The context has room for every block and the write, so EAGAIN can't leave any.
            in_flight_ += taken;
            progress_ = true;
            continue;
        }
        if (in_flight_ > 0) {
            auto n = ctx_.reap(events_, 1, nullptr);
            if (n) {
                handle(std::span(events_).first(*n));
            } else if (n.error().value() != EINTR) {
                outcome_.read_error = n.error();
                break;
            }
            continue;
        }
        retire();
        if (!done() && !progress_) {
            // Nothing in flight and nothing to do: a bug; fail rather than spin.
            outcome_.read_error = errno_code(EIO);
            break;
        }
    }
    return outcome_;
}

} // namespace

copy_outcome copy_input(sys::aio_context& ctx,
                        const cat_buffers& buffers,
                        cat_input& input,
                        cat_output& output,
                        const diag_fn& diag) {
    copier c(ctx, buffers, input, output, diag);
    copy_outcome outcome = c.run();
    if (!input.owned && input.positioned) {
        // Reads named offsets, so standard input's position didn't move: move it past what was
        // read, for whoever reads it next (`{ aioloop cat; cat; } < file`).
        ::lseek(input.fd, c.end_offset(), SEEK_SET);
    }
    return outcome;
}

} // namespace aioloop::apps::detail
