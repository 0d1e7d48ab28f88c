#pragma once

// Signals as loop events. A signalfd can't be used here: an IOCB_CMD_POLL on it is re-checked by
// a kernel worker thread, which has no signals pending, so the POLL never fires (signalfd_poll
// looks at `current`). Instead a handler records the signal and writes to an eventfd that the loop
// polls like any other fd, which works the same on every backend.

#include <initializer_list>

#include <aioloop/loop.hpp>
#include <aioloop/task.hpp>

namespace aioloop {

class signal_set {
public:
    /// Installs handlers for `signals` (SA_RESTART) that wake `owner`. One signal_set per signal
    /// at a time in the process: EBUSY otherwise.
    static result<signal_set> create(loop& owner, std::initializer_list<int> signals) noexcept;

    signal_set(signal_set&& other) noexcept;
    signal_set& operator=(signal_set&& other) noexcept;
    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;
    /// Restores the handlers that were there before.
    ~signal_set();

    /// The next signal's number; operation_canceled when the task is stopped.
    task<result<int>> wait();

private:
    signal_set(loop& owner, int fd, std::uint64_t mask) noexcept
        : loop_(&owner)
        , fd_(fd)
        , mask_(mask) {}
    void release() noexcept;

    loop* loop_ = nullptr;
    int fd_ = -1;            // eventfd the handler writes to
    std::uint64_t mask_ = 0; // bit n: signal n is ours
};

} // namespace aioloop
