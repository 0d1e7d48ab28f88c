#pragma once

// Timers live in user space: a binary heap of deadlines. The kernel only ever sees the timeout of
// the loop's blocking wait, taken from the earliest deadline here. Cancelling is O(1): the slot is
// released and its heap entry, now stale, is skipped when it reaches the top.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace aioloop::detail {

class timer_queue {
public:
    using clock = std::chrono::steady_clock;
    using callback = void (*)(void* context) noexcept;

    /// Calls fn(context) once `when` has passed. Returns an id for cancel(); never 0.
    std::uint64_t add(clock::time_point when, callback fn, void* context);
    /// Forgets timer `id` if it hasn't fired. Returns whether it was pending; ids of fired or
    /// cancelled timers are ignored.
    bool cancel(std::uint64_t id) noexcept;
    /// The earliest pending deadline.
    std::optional<clock::time_point> next_deadline() noexcept;
    /// Fires every timer due at `now`, earliest first; returns how many fired. A callback may add
    /// or cancel timers.
    std::size_t fire_expired(clock::time_point now);
    /// Timers pending.
    std::size_t size() const noexcept { return live_; }

private:
    struct slot {
        callback fn = nullptr;
        void* context = nullptr;
        std::uint32_t generation = 0;
        bool armed = false;
    };
    struct entry {
        clock::time_point when;
        std::uint64_t sequence; // ties fire in the order they were added
        std::uint64_t id;
        bool operator>(const entry& other) const noexcept {
            return when != other.when ? when > other.when : sequence > other.sequence;
        }
    };

    slot* find(std::uint64_t id) noexcept;
    void drop_stale_top() noexcept;

    std::vector<entry> heap_;
    std::vector<slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    std::uint64_t sequence_ = 0;
    std::size_t live_ = 0;
};

} // namespace aioloop::detail
