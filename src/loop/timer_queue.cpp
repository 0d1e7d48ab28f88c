#include "loop/timer_queue.hpp"

#include <algorithm>
#include <functional>

namespace aioloop::detail {

// An id is the slot's generation in the high half and slot index + 1 in the low half, so that 0
// is never an id and a reused slot doesn't answer to an old id.
std::uint64_t timer_queue::add(clock::time_point when, callback fn, void* context) {
    std::uint32_t index;
    if (!free_slots_.empty()) {
        index = free_slots_.back();
        free_slots_.pop_back();
    } else {
        index = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    slot& s = slots_[index];
    s.fn = fn;
    s.context = context;
    s.armed = true;
    std::uint64_t id = (static_cast<std::uint64_t>(s.generation) << 32) | (index + 1u);
    heap_.push_back(entry{when, sequence_++, id});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
    ++live_;
    return id;
}

timer_queue::slot* timer_queue::find(std::uint64_t id) noexcept {
    std::uint32_t low = static_cast<std::uint32_t>(id);
    if (low == 0 || low > slots_.size()) {
        return nullptr;
    }
    slot& s = slots_[low - 1];
    if (!s.armed || s.generation != static_cast<std::uint32_t>(id >> 32)) {
        return nullptr;
    }
    return &s;
}

bool timer_queue::cancel(std::uint64_t id) noexcept {
    slot* s = find(id);
    if (s == nullptr) {
        return false;
    }
    s->armed = false;
    ++s->generation;
    free_slots_.push_back(static_cast<std::uint32_t>(s - slots_.data()));
    --live_;
    // Deadlines that are cancelled long before they are due (a read's idle timeout) would pile
    // up in the heap: rebuild it once stale entries outnumber live ones.
    if (heap_.size() > 64 && heap_.size() > 2 * live_) {
        std::erase_if(heap_, [this](const entry& e) { return find(e.id) == nullptr; });
        std::make_heap(heap_.begin(), heap_.end(), std::greater<>{});
    }
    return true;
}

void timer_queue::drop_stale_top() noexcept {
    while (!heap_.empty() && find(heap_.front().id) == nullptr) {
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
        heap_.pop_back();
    }
}

std::optional<timer_queue::clock::time_point> timer_queue::next_deadline() noexcept {
    drop_stale_top();
    if (heap_.empty()) {
        return std::nullopt;
    }
    return heap_.front().when;
}

std::size_t timer_queue::fire_expired(clock::time_point now) {
    std::size_t fired = 0;
    for (;;) {
        drop_stale_top();
        if (heap_.empty() || heap_.front().when > now) {
            return fired;
        }
        std::uint64_t id = heap_.front().id;
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
        heap_.pop_back();
        slot* s = find(id);
        callback fn = s->fn;
        void* context = s->context;
        cancel(id); // release the slot before the callback, which may add timers
        fn(context);
        ++fired;
    }
}

} // namespace aioloop::detail
