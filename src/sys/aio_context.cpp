#include <utility>

#include <aioloop/sys/aio.hpp>

#include "sys/aio_ring.hpp"
#include "sys/syscalls.hpp"

namespace aioloop::sys {

namespace {

// The ring layout is ABI but undocumented: use it only when the header says it is the layout we
// know, as fio and Seastar do, and otherwise let io_getevents do the reading.
std::string ring_check(const aio_ring* ring) {
    if (ring == nullptr) {
        return "context id is not a ring address";
    }
    if (ring->magic != aio_ring_magic) {
        return "ring magic mismatch";
    }
    if (ring->incompat_features != aio_ring_incompat_features) {
        return "ring has incompatible features";
    }
    if (ring->header_length != sizeof(aio_ring)) {
        return "ring header length mismatch";
    }
    return {};
}

} // namespace

result<aio_context> aio_context::create(unsigned nr_events, aio_options options) noexcept {
    aio_context_t ctx = 0;
    if (detail::io_setup(nr_events, &ctx) < 0) {
        return fail_errno();
    }
    return aio_context(ctx, nr_events, options);
}

aio_context::aio_context(aio_context_t ctx, unsigned nr_events, aio_options options) noexcept
    : ctx_(ctx)
    , nr_events_(nr_events) {
    if (!options.use_ring) {
        ring_reason_ = "turned off by the caller";
    } else if (running_under_valgrind()) {
        ring_reason_ = "turned off under valgrind";
    } else {
        auto* ring = reinterpret_cast<aio_ring*>(ctx);
        ring_reason_ = ring_check(ring);
        if (ring_reason_.empty()) {
            ring_ = ring;
        }
    }
}

aio_context::aio_context(aio_context&& other) noexcept
    : ctx_(std::exchange(other.ctx_, 0))
    , nr_events_(other.nr_events_)
    , ring_(std::exchange(other.ring_, nullptr))
    , ring_reason_(std::move(other.ring_reason_))
    , failed_(std::move(other.failed_))
    , counters_(other.counters_)
    , use_pgetevents_(other.use_pgetevents_) {
}

aio_context& aio_context::operator=(aio_context&& other) noexcept {
    if (this != &other) {
        this->~aio_context();
        new (this) aio_context(std::move(other));
    }
    return *this;
}

aio_context::~aio_context() {
    if (ctx_ != 0) {
        // io_destroy waits for in-flight iocbs to finish or be cancelled.
        detail::io_destroy(ctx_);
    }
}

result<std::size_t> aio_context::submit_once(std::span<iocb* const> batch) noexcept {
    if (batch.empty()) {
        return 0;
    }
    ++counters_.submit_calls;
    long n =
        detail::io_submit(ctx_, static_cast<long>(batch.size()), const_cast<iocb**>(batch.data()));
    if (n < 0) {
        return fail_errno();
    }
    counters_.iocbs_submitted += static_cast<std::uint64_t>(n);
    if (n > 0) {
        ++counters_.batch_sizes[aio_counters::bucket_of(static_cast<std::size_t>(n))];
    }
    return static_cast<std::size_t>(n);
}

// io_submit stops at the first iocb it cannot queue and returns how many it took, or -errno when
// it took none. The rest are still ours: an iocb the kernel refuses (EBADF, EINVAL, ...) is failed
// back through the completion path, one the kernel has no room for (EAGAIN) is left to the
// caller to resubmit. Nothing is dropped and nothing is reported twice.
std::size_t aio_context::submit(std::span<iocb* const> batch) noexcept {
    std::size_t done = 0;
    while (done < batch.size()) {
        auto taken = submit_once(batch.subspan(done));
        if (taken) {
            done += *taken;
            continue;
        }
        int err = taken.error().value();
        if (err == EINTR) {
            continue;
        }
        if (err == EAGAIN) {
            break;
        }
        const iocb* refused = batch[done];
        failed_.push_back(io_event{refused->aio_data,
                                   reinterpret_cast<std::uintptr_t>(refused),
                                   -static_cast<std::int64_t>(err),
                                   0});
        ++counters_.iocbs_failed;
        ++done;
    }
    return done;
}

result<void> aio_context::cancel(iocb& cb) noexcept {
    ++counters_.cancel_calls;
    io_event unused{};
    if (detail::io_cancel(ctx_, &cb, &unused) == 0) {
        return {};
    }
    // Since 4.19 a successful cancel answers -EINPROGRESS and posts the event to the ring.
    if (errno == EINPROGRESS || errno == EAGAIN) {
        return {};
    }
    return fail_errno();
}

} // namespace aioloop::sys
