#pragma once

// The loop's unit of kernel work: one record per pending operation, owned by the loop's pool and
// never reused while a backend may still complete it. Backends keep their per-operation state in
// the fields marked for them.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>

#include <linux/aio_abi.h>

#include <aioloop/stats.hpp>

namespace aioloop {
class loop;
}

namespace aioloop::detail {

struct operation;

enum class op_state : std::uint8_t {
    free,    ///< in the pool's free list
    started, ///< handed to the backend
    done,    ///< the backend has finished with it; result is set
};

/// A std::stop_callback target: cancels the operation (or posts the cancel to its loop's thread).
struct cancel_on_stop {
    operation* op;
    void operator()() const noexcept;
};

/// The iocb of an operation and the way back to it: io_event::obj is the iocb's address, and
/// the iocb is the first member of this standard-layout struct.
struct aio_slot {
    iocb cb{};
    operation* op = nullptr;
};

struct operation {
    // What to do: set by the loop before start().
    op_kind kind = op_kind::recv;
    int fd = -1;
    std::byte* buf = nullptr;
    std::size_t len = 0;
    std::int64_t offset = 0;       // read_at / write_at
    std::uint32_t poll_events = 0; // poll

    // The outcome: >= 0 bytes (or revents for poll), < 0 is -errno.
    std::int64_t result = 0;
    std::size_t transferred = 0; // send: bytes written so far across partial writes

    // Bookkeeping of the loop.
    op_state state = op_state::free;
    bool cancel_requested = false;
    bool timed_out = false;
    std::uint32_t index = 0;      // position in the pool
    std::uint32_t generation = 0; // bumped on every reuse: stale kernel completions are dropped
    std::uint64_t timer = 0;      // deadline timer id, 0 when none
    std::coroutine_handle<> waiter;
    // Instead of a waiter, for the loop's own operations (wake-ups): called on completion.
    void (*on_done)(operation&, void*) = nullptr;
    void* on_done_context = nullptr;
    std::optional<std::stop_callback<cancel_on_stop>> stop_callback;
    loop* owner = nullptr;
    // Where the owner of the fd (a stream) keeps a pointer to this pending operation, so that it
    // can cancel it; cleared when the operation finishes or the owner lets go of it.
    operation** tracker = nullptr;
    operation* next = nullptr; // completion queue / free list

    // Backend scratch.
    std::uint8_t phase = 0;           // aio: waiting for readiness or transferring
    bool in_kernel = false;           // aio/uring: an iocb/SQE of this op is pending in the kernel
    operation* prev_waiter = nullptr; // epoll: per-fd wait list
    operation* next_waiter = nullptr;
    aio_slot aio; // aio: the iocb (its address identifies it to io_cancel)

    /// Back to a fresh record, keeping its place in the pool and bumping its generation.
    void reuse() noexcept {
        kind = op_kind::recv;
        fd = -1;
        buf = nullptr;
        len = 0;
        offset = 0;
        poll_events = 0;
        result = 0;
        transferred = 0;
        state = op_state::free;
        cancel_requested = false;
        timed_out = false;
        ++generation;
        timer = 0;
        waiter = {};
        on_done = nullptr;
        on_done_context = nullptr;
        stop_callback.reset();
        tracker = nullptr;
        next = nullptr;
        phase = 0;
        in_kernel = false;
        prev_waiter = nullptr;
        next_waiter = nullptr;
    }

    /// The cookie a backend gives the kernel: index and generation, so that a completion for a
    /// record that was reused since is recognised and dropped.
    std::uint64_t cookie() const noexcept {
        return (static_cast<std::uint64_t>(generation) << 32) | index;
    }
};

/// Operations the backend has finished, in completion order; intrusive, so pushing never
/// allocates.
class completion_queue {
public:
    void push(operation& op) noexcept {
        op.state = op_state::done;
        op.next = nullptr;
        if (tail_ != nullptr) {
            tail_->next = &op;
        } else {
            head_ = &op;
        }
        tail_ = &op;
        ++size_;
    }
    operation* pop() noexcept {
        operation* op = head_;
        if (op != nullptr) {
            head_ = op->next;
            if (head_ == nullptr) {
                tail_ = nullptr;
            }
            op->next = nullptr;
            --size_;
        }
        return op;
    }
    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }

private:
    operation* head_ = nullptr;
    operation* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace aioloop::detail
