// The aio backend: every operation of a turn becomes an iocb, and one io_submit carries them all.
// Socket reads and writes run inside that io_submit and their results are in the ring when it
// returns; readiness waits are one-shot IOCB_CMD_POLLs. Completions are read from the ring in user
// space, and io_getevents is called only to sleep.

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <poll.h>
#include <signal.h>

#include <fmt/format.h>

#include <aioloop/sys/aio.hpp>
#include <aioloop/sys/probe.hpp>

#include "backend/backend.hpp"
#include "backend/readiness_hints.hpp"

namespace aioloop::backend {

namespace {

using detail::completion_queue;
using detail::op_state;
using detail::operation;

// What an iocb of an operation is doing.
enum phase : std::uint8_t {
    waiting_ready = 1, // an IOCB_CMD_POLL before the read or write
    transferring = 2,  // the PREAD / PWRITE itself
};

// Operations that hit a full context stay queued; if the kernel holds nothing of ours, nothing will
// free a slot, so they fail with this instead of waiting forever.
constexpr int no_room_error = ENOBUFS;

// The smallest context worth running with when fs.aio-max-nr leaves less than asked for.
constexpr unsigned minimum_events = 64;

class aio_backend final : public backend {
public:
    explicit aio_backend(sys::aio_context ctx)
        : ctx_(std::move(ctx))
        , events_(std::min<std::size_t>(ctx_.capacity(), 1024)) {}

    std::string_view name() const noexcept override { return "aio"; }

    void start(operation& op, completion_queue& done) noexcept override {
        (void)done;
        switch (op.kind) {
        case op_kind::recv:
            if (hints_.readable(op.fd)) {
                queue_transfer(op);
            } else {
                queue_poll(op, POLLIN);
            }
            break;
        case op_kind::send:
            if (hints_.writable(op.fd)) {
                queue_transfer(op);
            } else {
                queue_poll(op, POLLOUT);
            }
            break;
        case op_kind::poll:
            queue_poll(op, static_cast<std::uint16_t>(op.poll_events));
            break;
        case op_kind::read_at:
        case op_kind::write_at:
            queue_transfer(op);
            break;
        }
    }

    void cancel(operation& op, completion_queue& done) noexcept override {
        if (!op.in_kernel) {
            // Still queued for this turn's io_submit: take it back, the kernel never saw it.
            auto it = std::find(pending_.begin(), pending_.end(), &op.aio.cb);
            if (it != pending_.end()) {
                pending_.erase(it);
            }
            op.result = -ECANCELED;
            done.push(op);
            return;
        }
        // A pending POLL is removed and still posts its event; a read or write on a socket has
        // already completed inside io_submit and its event is in the ring (EINVAL here). Either
        // way the completion comes through the ring, and on_event() sees cancel_requested.
        (void)ctx_.cancel(op.aio.cb);
    }

    result<void> poll(completion_queue& done,
                      std::optional<std::chrono::nanoseconds> timeout) noexcept override {
        bool may_sleep = !timeout || timeout->count() > 0;
        for (;;) {
            std::size_t submitted = flush(done);
            auto reaped = ctx_.reap(events_, 0, &zero_wait);
            if (!reaped) {
                sync_stats();
                return tl::unexpected(reaped.error());
            }
            on_events(std::span(events_).first(*reaped), done);
            if (!done.empty()) {
                break;
            }
            if (!pending_.empty() && (submitted > 0 || *reaped > 0)) {
                continue; // readiness turned into reads and writes: submit them now
            }
            // Here either nothing is queued, or the context is full and nothing came back to
            // free a slot: only a completion can help, so wait for one (or give up the turn).
            if (!may_sleep) {
                break;
            }
            // Nothing to do until the kernel says so: sleep in io_getevents, the only blocking
            // call of the loop, for at most the time until the next timer.
            timespec wait{};
            if (timeout) {
                wait.tv_sec = static_cast<time_t>(timeout->count() / 1'000'000'000);
                wait.tv_nsec = static_cast<long>(timeout->count() % 1'000'000'000);
            }
            ++stats_.blocking_waits;
            auto woke = ctx_.reap(events_, 1, timeout ? &wait : nullptr);
            may_sleep = false;
            if (!woke) {
                if (woke.error().value() == EINTR) {
                    break;
                }
                sync_stats();
                return tl::unexpected(woke.error());
            }
            on_events(std::span(events_).first(*woke), done);
            if (!done.empty() || pending_.empty()) {
                break;
            }
        }
        sync_stats();
        return {};
    }

    void forget_fd(int fd) noexcept override { hints_.forget(fd); }

private:
    void queue(operation& op, phase p) {
        op.phase = p;
        op.in_kernel = false;
        pending_.push_back(&op.aio.cb);
    }

    void queue_poll(operation& op, std::uint16_t events) {
        sys::prep_poll(op.aio.cb, op.fd, events, op.cookie());
        queue(op, waiting_ready);
    }

    void queue_transfer(operation& op) {
        bool is_read = op.kind == op_kind::recv || op.kind == op_kind::read_at;
        // Sockets ignore the offset; files get theirs.
        std::int64_t offset =
            op.kind == op_kind::read_at || op.kind == op_kind::write_at ? op.offset : 0;
        if (is_read) {
            sys::prep_pread(op.aio.cb, op.fd, op.buf, op.len, offset, op.cookie());
        } else {
            sys::prep_pwrite(op.aio.cb, op.fd, op.buf, op.len, offset, op.cookie());
        }
        queue(op, transferring);
    }

    static operation& owner_of(std::uint64_t obj) noexcept {
        static_assert(std::is_standard_layout_v<detail::aio_slot>);
        return *reinterpret_cast<detail::aio_slot*>(static_cast<std::uintptr_t>(obj))->op;
    }

    // One io_submit for everything queued. What the kernel refuses comes back through reap() with
    // -errno; what doesn't fit (context full) waits for the next turn. Returns how many the
    // kernel settled.
    std::size_t flush(completion_queue& done) {
        if (pending_.empty()) {
            return 0;
        }
        std::size_t settled = ctx_.submit(pending_);
        for (std::size_t i = 0; i < settled; ++i) {
            owner_of(reinterpret_cast<std::uintptr_t>(pending_[i])).in_kernel = true;
        }
        in_kernel_ += settled;
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(settled));
        if (!pending_.empty() && in_kernel_ == 0) {
            for (iocb* cb : pending_) {
                operation& op = owner_of(reinterpret_cast<std::uintptr_t>(cb));
                op.result = -no_room_error;
                done.push(op);
            }
            pending_.clear();
        }
        return settled;
    }

    void on_events(std::span<const io_event> events, completion_queue& done) {
        for (const io_event& event : events) {
            operation& op = owner_of(event.obj);
            if (op.state != op_state::started || event.data != op.cookie()) {
                ++stats_.stale_completions;
                continue;
            }
            --in_kernel_;
            op.in_kernel = false;
            on_event(op, event.res, done);
        }
    }

    void on_event(operation& op, std::int64_t res, completion_queue& done) {
        if (op.phase == waiting_ready) {
            if (op.kind == op_kind::poll) {
                // A cancelled POLL posts a 0 mask: say cancelled, but keep a real readiness.
                op.result = op.cancel_requested && res == 0 ? -ECANCELED : res;
                // A task that waits for readiness reads next: let that read skip its own POLL.
                if (res > 0 && (res & (POLLIN | POLLHUP | POLLERR)) != 0) {
                    hints_.set_readable(op.fd, true);
                }
                if (res > 0 && (res & (POLLOUT | POLLHUP | POLLERR)) != 0) {
                    hints_.set_writable(op.fd, true);
                }
                done.push(op);
            } else if (op.cancel_requested) {
                op.result = -ECANCELED;
                done.push(op);
            } else if (res < 0) {
                op.result = res;
                done.push(op);
            } else {
                queue_transfer(op); // ready (or in error, which the transfer will report)
            }
            return;
        }
        bool is_socket_op = op.kind == op_kind::recv || op.kind == op_kind::send;
        if (res == -EAGAIN && is_socket_op) {
            // The speculation was wrong: wait for readiness, then try again.
            if (op.kind == op_kind::recv) {
                hints_.set_readable(op.fd, false);
            } else {
                hints_.set_writable(op.fd, false);
            }
            if (op.cancel_requested) {
                op.result = -ECANCELED;
                done.push(op);
            } else {
                queue_poll(op, op.kind == op_kind::recv ? POLLIN : POLLOUT);
            }
            return;
        }
        if (res >= 0 && is_socket_op) {
            // A read that filled the buffer probably left more behind; a shorter one drained the
            // socket. A write that fell short filled the socket buffer.
            bool full = static_cast<std::size_t>(res) == op.len;
            if (op.kind == op_kind::recv) {
                hints_.set_readable(op.fd, full && res > 0);
            } else {
                hints_.set_writable(op.fd, full);
            }
        }
        op.result = res;
        done.push(op);
    }

    void sync_stats() noexcept {
        const sys::aio_counters& c = ctx_.counters();
        stats_.syscalls[static_cast<std::size_t>(syscall_name::io_submit)] = c.submit_calls;
        stats_.syscalls[static_cast<std::size_t>(syscall_name::io_getevents)] = c.getevents_calls;
        stats_.syscalls[static_cast<std::size_t>(syscall_name::io_cancel)] = c.cancel_calls;
        stats_.iocbs_submitted = c.iocbs_submitted;
        stats_.events_from_ring = c.events_from_ring;
        stats_.events_from_syscall = c.events_from_syscall;
        stats_.eagain = c.eagain_results;
        for (std::size_t i = 0; i < batch_buckets && i < c.batch_sizes.size(); ++i) {
            stats_.batch_sizes[i] = c.batch_sizes[i];
        }
    }

    static constexpr timespec zero_wait{0, 0};

    sys::aio_context ctx_;
    std::vector<iocb*> pending_; // this turn's iocbs, in the order they were started
    std::vector<io_event> events_;
    std::size_t in_kernel_ = 0; // iocbs submitted whose completion we haven't reaped
    readiness_hints hints_;
};

// Sizes the context to what the caller asked, shrinking it (with a warning) to the room that
// fs.aio-max-nr leaves, and failing with the sysctl to raise when even the minimum doesn't fit.
tl::expected<unsigned, backend_error> choose_size(const backend_config& config) {
    unsigned wanted = std::max(config.max_operations, minimum_events);
    auto limits = sys::read_aio_limits();
    if (!limits || limits->room() >= wanted) {
        return wanted;
    }
    if (limits->room() >= minimum_events) {
        auto room = static_cast<unsigned>(limits->room());
        if (config.on_warning) {
            config.on_warning(fmt::format(
                "fs.aio-max-nr={} (fs.aio-nr={}) leaves room for {} of the {} AIO events asked "
                "for; using {} (raise it: sysctl -w fs.aio-max-nr={})",
                limits->max_nr,
                limits->nr,
                room,
                wanted,
                room,
                limits->nr + wanted));
        }
        return room;
    }
    std::error_code code = errno_code(EAGAIN);
    return tl::unexpected(backend_error{code, sys::setup_error_message(wanted, code)});
}

// An IOCB_CMD_PWRITE on a socket goes through sock_write_iter, which has no MSG_NOSIGNAL: a write
// to a connection that is already reset or shut down raises SIGPIPE in the submitting thread, and
// its default action kills the whole server for one peer's misbehaviour (found by
// Backpressure.PeersThatResetMidTransferFailOnlyTheirConnection). The epoll and uring backends
// pass MSG_NOSIGNAL instead. So this backend ignores SIGPIPE, but only where nobody chose a
// disposition: the write then fails with EPIPE for that operation alone, as in nginx or redis.
void ignore_default_sigpipe() noexcept {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
        (current.sa_flags & SA_SIGINFO) == 0) {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        ::sigaction(SIGPIPE, &ignore, nullptr);
    }
}

} // namespace

tl::expected<std::unique_ptr<backend>, backend_error>
make_aio_backend(const backend_config& config) {
    auto size = choose_size(config);
    if (!size) {
        return tl::unexpected(size.error());
    }
    // One context, checked for IOCB_CMD_POLL and a permitted io_getevents, and kept: io_destroy
    // of a trial context would cost tens of milliseconds at start.
    auto ctx = sys::create_checked_aio_context(
        *size, sys::aio_options{.use_ring = !config.force_syscalls});
    if (!ctx) {
        return tl::unexpected(backend_error{ctx.error().error, ctx.error().reason});
    }
    ignore_default_sigpipe();
    return std::make_unique<aio_backend>(std::move(*ctx));
}

} // namespace aioloop::backend
