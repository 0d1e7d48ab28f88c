#include <algorithm>
#include <atomic>
#include <cstring>

#include <aioloop/sys/aio.hpp>

#include "sys/aio_ring.hpp"
#include "sys/syscalls.hpp"

namespace aioloop::sys {

namespace {

io_event* ring_events(aio_ring* ring) noexcept {
    return reinterpret_cast<io_event*>(reinterpret_cast<char*>(ring) + ring->header_length);
}

} // namespace

std::size_t aio_context::ring_ready() const noexcept {
    if (ring_ == nullptr) {
        return 0;
    }
    unsigned head = std::atomic_ref(ring_->head).load(std::memory_order_relaxed);
    unsigned tail = std::atomic_ref(ring_->tail).load(std::memory_order_acquire);
    return tail >= head ? tail - head : tail + ring_->nr - head;
}

// The kernel publishes events with a write barrier before it moves `tail` (aio_complete), so
// `tail` is read with acquire; the events are copied out before `head` is stored with release,
// because once head moves the kernel may overwrite those slots.
std::size_t aio_context::reap_ring(std::span<io_event> events) noexcept {
    unsigned nr = ring_->nr;
    unsigned head = std::atomic_ref(ring_->head).load(std::memory_order_relaxed);
    unsigned tail = std::atomic_ref(ring_->tail).load(std::memory_order_acquire);
    const io_event* slots = ring_events(ring_);
    std::size_t count = 0;
    while (head != tail && count < events.size()) {
        // Contiguous run up to the end of the ring or the tail, whichever comes first.
        unsigned end = tail > head ? tail : nr;
        std::size_t run = std::min<std::size_t>(end - head, events.size() - count);
        std::memcpy(&events[count], &slots[head], run * sizeof(io_event));
        count += run;
        head = static_cast<unsigned>((head + run) % nr);
    }
    if (count > 0) {
        std::atomic_ref(ring_->head).store(head, std::memory_order_release);
        counters_.events_from_ring += count;
    }
    return count;
}

result<std::size_t> aio_context::reap_syscall(std::span<io_event> events,
                                              std::size_t min_nr,
                                              const timespec* timeout) noexcept {
    ++counters_.getevents_calls;
    // io_getevents may write the remaining time back: hand it a copy.
    timespec wait{};
    timespec* wait_ptr = nullptr;
    if (timeout != nullptr) {
        wait = *timeout;
        wait_ptr = &wait;
    }
    long min = static_cast<long>(min_nr);
    long max = static_cast<long>(events.size());
    long n = use_pgetevents_
                 ? detail::io_pgetevents(ctx_, min, max, events.data(), wait_ptr, nullptr)
                 : detail::io_getevents(ctx_, min, max, events.data(), wait_ptr);
    if (n < 0 && !use_pgetevents_ && (errno == ENOSYS || errno == EPERM)) {
        // Some seccomp profiles and newer architectures drop io_getevents but keep
        // io_pgetevents: switch for good if it works.
        n = detail::io_pgetevents(ctx_, min, max, events.data(), wait_ptr, nullptr);
        use_pgetevents_ = n >= 0;
    }
    if (n < 0) {
        return fail_errno();
    }
    counters_.events_from_syscall += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
}

void aio_context::count_eagain(std::span<const io_event> events) noexcept {
    for (const io_event& event : events) {
        if (event.res == -EAGAIN) {
            ++counters_.eagain_results;
        }
    }
}

result<void> aio_context::check_wait_allowed() noexcept {
    io_event events[8];
    timespec zero{0, 0};
    auto got = reap_syscall(events, 0, &zero);
    if (!got) {
        return tl::unexpected(got.error());
    }
    failed_.insert(failed_.end(), events, events + *got);
    return {};
}

// Reap from the ring only when it already holds min_nr events or the caller won't wait: a wait
// must be a system call, since only the kernel can sleep until the tail moves.
result<std::size_t> aio_context::reap(std::span<io_event> events,
                                      std::size_t min_nr,
                                      const timespec* timeout) noexcept {
    std::size_t count = std::min(failed_.size(), events.size());
    if (count > 0) {
        std::copy_n(failed_.begin(), count, events.begin());
        failed_.erase(failed_.begin(), failed_.begin() + static_cast<std::ptrdiff_t>(count));
    }
    if (ring_ != nullptr) {
        count += reap_ring(events.subspan(count));
    }
    bool zero_wait = timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
    bool ring_only = ring_ != nullptr && (count >= min_nr || zero_wait);
    if (!ring_only && count < events.size()) {
        // io_getevents answers EINVAL when min_nr exceeds the room it is given; wait for no more
        // than fits, as the ring path does.
        std::size_t room = events.size() - count;
        std::size_t still_needed = std::min(min_nr > count ? min_nr - count : 0, room);
        auto more = reap_syscall(events.subspan(count), still_needed, timeout);
        if (!more) {
            if (count == 0) {
                return tl::unexpected(more.error());
            }
        } else {
            count += *more;
        }
    }
    count_eagain(events.first(count));
    return count;
}

} // namespace aioloop::sys
