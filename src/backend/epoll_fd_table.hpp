#pragma once

// What the epoll backend keeps per fd: whether the fd is in the epoll set, what the kernel last
// said about its readiness, and the operations waiting for it. Registration is edge-triggered and
// made once per fd, so these flags, not epoll_ctl, decide when to try a read or a write.

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "loop/operation.hpp"

namespace aioloop::backend::epoll_detail {

/// One direction (in, out, pri) of an fd as far as the backend knows.
enum class readiness : std::uint8_t {
    /// Not ready, and an edge will say when it is: either our own syscall saw EAGAIN or a short
    /// transfer (so the kernel will wake epoll on the next change), or registration is pending
    /// (EPOLL_CTL_ADD queues an event for whatever is ready at once).
    not_ready,
    /// Ready or not: nothing has told us, or someone we don't see (the owner of a finished poll
    /// operation) may have consumed it. A transfer tries at once; a poll asks the kernel.
    unknown,
    /// An edge or our own last transfer says so.
    ready,
};

/// Operations waiting on one fd, oldest first; intrusive through operation::prev/next_waiter,
/// so waiting never allocates.
class wait_list {
public:
    bool empty() const noexcept { return head_ == nullptr; }
    detail::operation* front() const noexcept { return head_; }

    void push_back(detail::operation& op) noexcept {
        op.prev_waiter = tail_;
        op.next_waiter = nullptr;
        if (tail_ != nullptr) {
            tail_->next_waiter = &op;
        } else {
            head_ = &op;
        }
        tail_ = &op;
    }

    void remove(detail::operation& op) noexcept {
        if (op.prev_waiter != nullptr) {
            op.prev_waiter->next_waiter = op.next_waiter;
        } else {
            assert(head_ == &op);
            head_ = op.next_waiter;
        }
        if (op.next_waiter != nullptr) {
            op.next_waiter->prev_waiter = op.prev_waiter;
        } else {
            assert(tail_ == &op);
            tail_ = op.prev_waiter;
        }
        op.prev_waiter = nullptr;
        op.next_waiter = nullptr;
    }

private:
    detail::operation* head_ = nullptr;
    detail::operation* tail_ = nullptr;
};

struct fd_state {
    /// Bumped when the fd number is forgotten: epoll events carry it, so that an event for the
    /// number's previous file (still registered through a dup) is not taken for the new one's.
    std::uint32_t generation = 0;
    bool registered = false; ///< in the epoll set
    bool refused = false;    ///< epoll_ctl said EPERM (regular file, directory): never blocks
    bool not_socket = false; ///< send/recv said ENOTSOCK (pipe, tty): use write/read
    bool rdhup = false;      ///< the peer shut down writing: reads return 0 from now on
    bool hup = false;        ///< hung up both ways; permanent for sockets and pipes
    bool err = false;        ///< EPOLLERR seen and no syscall has returned the error yet
    // A new fd is registered when its first operation has to wait, and EPOLL_CTL_ADD reports
    // what is ready then; until that, a send tries at once (a new socket has room) and a recv
    // waits for the event (Tokio/mio do the same), so that neither costs an EAGAIN.
    readiness in = readiness::not_ready;
    readiness out = readiness::unknown;
    readiness pri = readiness::not_ready;
    wait_list readers; ///< recv operations
    wait_list writers; ///< send operations
    wait_list pollers; ///< poll operations

    bool idle() const noexcept { return readers.empty() && writers.empty() && pollers.empty(); }
};

/// fd_state by fd number. Entries are reset, never freed: fd numbers are small and reused.
class fd_table {
public:
    /// The state for `fd` >= 0, made on first use. The reference lasts until the next at().
    fd_state& at(int fd) {
        auto index = static_cast<std::size_t>(fd);
        if (index >= states_.size()) {
            states_.resize(std::max(index + 1, states_.size() * 2));
        }
        return states_[index];
    }

    /// The state for `fd`, or null when the table has never seen it.
    fd_state* find(int fd) noexcept {
        auto index = static_cast<std::size_t>(fd);
        return fd >= 0 && index < states_.size() ? &states_[index] : nullptr;
    }

    /// The fd is being closed and its number will come back for another file.
    void forget(int fd) noexcept {
        fd_state* state = find(fd);
        if (state == nullptr) {
            return;
        }
        assert(state->idle() && "forget_fd with operations still waiting");
        std::uint32_t generation = state->generation + 1;
        *state = fd_state{};
        state->generation = generation;
    }

private:
    std::vector<fd_state> states_;
};

} // namespace aioloop::backend::epoll_detail
