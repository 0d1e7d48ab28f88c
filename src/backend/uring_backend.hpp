#pragma once

// The io_uring backend (liburing 2.3+). Each operation is one SQE whose user_data is the
// operation's cookie (index and generation, see operation.hpp), so that a completion or a cancel
// for a record that was reused since is recognised; a turn's SQEs reach the kernel in the same
// io_uring_enter that reaps completions or waits for them.
// Private to src/: the loop and the tests use it for setup_flags() and setup_note().

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <liburing.h>

#include "backend/backend.hpp"

namespace aioloop::backend {

class uring_backend final : public backend {
public:
    /// Takes a ring set up with IORING_SETUP_R_DISABLED and the flags it was set up with;
    /// `note` says what setup gave up on, empty when nothing.
    uring_backend(const io_uring& ring, unsigned flags, std::string note) noexcept;
    ~uring_backend() override;
    uring_backend(const uring_backend&) = delete;
    uring_backend& operator=(const uring_backend&) = delete;

    std::string_view name() const noexcept override { return "uring"; }
    void start(detail::operation& op, detail::completion_queue& done) noexcept override;
    void cancel(detail::operation& op, detail::completion_queue& done) noexcept override;
    result<void> poll(detail::completion_queue& done,
                      std::optional<std::chrono::nanoseconds> timeout) noexcept override;

    /// The IORING_SETUP_* flags the kernel accepted.
    unsigned setup_flags() const noexcept { return flags_; }
    /// Why the ring runs without IORING_SETUP_DEFER_TASKRUN, in one line; empty when it has it.
    const std::string& setup_note() const noexcept { return note_; }
    /// SQEs one submission can carry; a turn with more costs an extra io_uring_enter.
    unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
    /// Operation SQEs whose completion hasn't been reaped: the operations started and not yet
    /// handed back, plus the requests of stale ones the kernel still holds.
    std::size_t in_flight() const noexcept { return in_flight_; }

private:
    io_uring_sqe* get_sqe() noexcept;
    unsigned publish_sq() noexcept;
    int enter(unsigned to_submit,
              unsigned min_complete,
              unsigned flags,
              const __kernel_timespec* timeout) noexcept;
    int submit_now() noexcept;
    int ensure_enabled() noexcept;
    void prep(io_uring_sqe& sqe, detail::operation& op, bool poll_first) noexcept;
    bool remember(detail::operation& op) noexcept;
    detail::operation* find(std::uint64_t cookie) const noexcept;
    void on_cancel_done(std::uint64_t target, int res) noexcept;
    bool withdraw_unsubmitted(detail::operation& op) noexcept;
    std::size_t reap(detail::completion_queue* done, bool after_syscall) noexcept;
    void complete(detail::operation& op, int res, detail::completion_queue* done) noexcept;
    void drain_for_exit() noexcept;

    io_uring ring_;
    unsigned flags_;
    std::string note_;
    bool enabled_ = false;
    int last_submit_error_ = 0;
    std::size_t in_flight_ = 0;
    std::vector<detail::operation*> records_; // by operation index: cookie back to record
};

} // namespace aioloop::backend
