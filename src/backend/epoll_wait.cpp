// A turn of the epoll backend: one epoll_wait for every fd at once, then each edge runs the
// operations waiting on its fd. Nothing is submitted here: epoll has no queue of operations, so
// starting one already did whatever system call it needed.

#include <cerrno>
#include <ctime>
#include <system_error>

#include <sys/epoll.h>

#include <climits>

#include "backend/epoll_backend.hpp"

namespace aioloop::backend {

using detail::completion_queue;
using detail::operation;
using epoll_detail::readiness;

result<void> epoll_backend::poll(completion_queue& done,
                                 std::optional<std::chrono::nanoseconds> timeout) noexcept {
    if (!done.empty()) {
        // The loop has work already; epoll_wait could only add to it, at a system call's price.
        if (waiting_ == 0 || polls_skipped_ < max_polls_skipped) {
            ++polls_skipped_;
            return {};
        }
        timeout = std::chrono::nanoseconds{0};
    }
    polls_skipped_ = 0;
    bool may_sleep = !timeout || timeout->count() > 0;
    if (waiting_ == 0 && !may_sleep) {
        return {}; // nothing could finish and nobody wants to sleep
    }
    if (may_sleep) {
        ++stats_.blocking_waits; // once per turn, however many epoll_waits the sleep takes
    }
    std::chrono::steady_clock::time_point deadline;
    if (timeout && may_sleep) {
        deadline = std::chrono::steady_clock::now() + *timeout;
    }
    for (;;) {
        if (int error = collect(timeout, done); error != 0) {
            if (error == -EINTR) {
                return {}; // a signal: the loop comes back
            }
            return tl::unexpected(std::error_code(-error, std::system_category()));
        }
        // Edges that only update flags (the writable edge of each new registration, data for an
        // fd nobody reads yet) finish nothing: sleep on for the rest of the timeout rather than
        // hand the loop an empty turn, as libuv's uv__io_poll does.
        if (!done.empty() || !may_sleep) {
            return {};
        }
        if (timeout) {
            auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::nanoseconds{0}) {
                return {};
            }
            timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(left);
        }
    }
}

int epoll_backend::collect(std::optional<std::chrono::nanoseconds> timeout,
                           completion_queue& done) noexcept {
    for (unsigned batch = 0; batch < max_batches; ++batch) {
        int n = wait_for_events(batch == 0 ? timeout : std::chrono::nanoseconds{0});
        if (n < 0) {
            return n;
        }
        stats_.events_from_syscall += static_cast<std::uint64_t>(n);
        for (int i = 0; i < n; ++i) {
            dispatch(events_[static_cast<std::size_t>(i)], done);
        }
        // A full batch may have left more behind; a short one drained the ready list.
        if (static_cast<std::size_t>(n) < event_batch) {
            break;
        }
    }
    return 0;
}

int epoll_backend::wait_for_events(std::optional<std::chrono::nanoseconds> timeout) noexcept {
    int rc = -1;
    if (have_pwait2_) {
        // epoll_pwait2 (5.11) takes the loop's nanosecond deadline as it is.
        timespec ts{};
        if (timeout) {
            auto ns = std::max<std::int64_t>(timeout->count(), 0);
            ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        }
        stats_.count(syscall_name::epoll_wait);
        rc = ::epoll_pwait2(epoll_fd_,
                            events_.data(),
                            static_cast<int>(events_.size()),
                            timeout ? &ts : nullptr,
                            nullptr);
        if (rc < 0 && (errno == ENOSYS || errno == EPERM)) {
            // Before 5.11, or a seccomp profile that doesn't know it: epoll_wait from now on.
            have_pwait2_ = false;
        } else {
            return rc < 0 ? -errno : rc;
        }
    }
    int ms = -1;
    if (timeout) {
        // Round up: waking before a timer is due would cost a turn that does nothing, and then
        // another epoll_wait.
        auto ns = std::max<std::int64_t>(timeout->count(), 0);
        std::int64_t rounded = (ns + 999'999) / 1'000'000;
        ms = static_cast<int>(std::min<std::int64_t>(rounded, INT_MAX));
    }
    stats_.count(syscall_name::epoll_wait);
    rc = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), ms);
    return rc < 0 ? -errno : rc;
}

void epoll_backend::dispatch(const epoll_event& event, completion_queue& done) noexcept {
    int fd = static_cast<int>(static_cast<std::uint32_t>(event.data.u64));
    auto generation = static_cast<std::uint32_t>(event.data.u64 >> 32);
    fd_state* state = fds_.find(fd);
    if (state == nullptr || state->generation != generation || !state->registered) {
        return; // the number's previous file, still registered through a dup
    }
    epoll_detail::record(*state, event.events);
    run_waiters(*state, done);
}

void epoll_backend::run_waiters(fd_state& state, completion_queue& done) noexcept {
    // Poll operations first, with what the edge said, as poll(2) or an aio POLL would have told
    // them at that moment; a recv below may then drain what they were told about, which their
    // owners handle as any poll user handles a spurious wake-up.
    std::uint32_t consumed_revents = 0;
    for (operation* op = state.pollers.front(); op != nullptr;) {
        operation* next = op->next_waiter;
        std::uint32_t revents = epoll_detail::known_revents(state, op->poll_events);
        if (revents != 0) {
            stop_waiting(state.pollers, *op);
            consumed_revents |= revents;
            complete(*op, revents, done);
        }
        op = next;
    }
    epoll_detail::consumed(state, consumed_revents);

    while (!state.readers.empty() && state.in != readiness::not_ready) {
        operation& op = *state.readers.front();
        if (!try_recv(op, state)) {
            break;
        }
        stop_waiting(state.readers, op);
        done.push(op);
    }
    while (!state.writers.empty() && state.out != readiness::not_ready) {
        operation& op = *state.writers.front();
        if (!try_send(op, state)) {
            break;
        }
        stop_waiting(state.writers, op);
        done.push(op);
    }
}

} // namespace aioloop::backend
