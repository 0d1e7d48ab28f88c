#pragma once

// The epoll backend: the honest baseline the aio and uring backends are measured against, written
// the way the best epoll loops are (mio/Tokio, Seastar's epoll reactor, libuv). Each fd is
// registered once, edge-triggered, for everything (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI), on the
// first operation that has to wait; from then on readiness flags per fd decide when a read or a
// write is tried, so an operation costs its one read or write and a share of one epoll_wait per
// turn, with no epoll_ctl and (almost) no EAGAIN. Private to src/ and the tests.

#include <array>
#include <cstddef>
#include <cstdint>

#include <sys/epoll.h>

#include "backend/backend.hpp"
#include "backend/epoll_fd_table.hpp"

namespace aioloop::backend {

class epoll_backend final : public backend {
public:
    /// Takes ownership of an epoll fd made with epoll_create1.
    explicit epoll_backend(int epoll_fd) noexcept;
    ~epoll_backend() override;
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;

    std::string_view name() const noexcept override { return "epoll"; }
    void start(detail::operation& op, detail::completion_queue& done) noexcept override;
    void cancel(detail::operation& op, detail::completion_queue& done) noexcept override;
    result<void> poll(detail::completion_queue& done,
                      std::optional<std::chrono::nanoseconds> timeout) noexcept override;
    void forget_fd(int fd) noexcept override;

    /// Operations waiting for readiness.
    std::size_t waiting() const noexcept { return waiting_; }
    /// False once epoll_pwait2 was refused (before 5.11, or by seccomp): timeouts round up to ms.
    bool has_pwait2() const noexcept { return have_pwait2_; }

    /// Consecutive poll() calls that may skip epoll_wait because the loop already has completions
    /// to run; then one non-blocking epoll_wait, so that operations that always finish at once
    /// (file reads, a sender that never fills its socket) can't starve the ones that wait.
    static constexpr unsigned max_polls_skipped = 16;
    static constexpr std::size_t event_batch = 256;
    /// epoll_waits per poll() while each returns a full batch.
    static constexpr unsigned max_batches = 4;

private:
    using fd_state = epoll_detail::fd_state;

    // operation::phase: whether the record sits on one of its fd's wait lists.
    static constexpr std::uint8_t phase_idle = 0;
    static constexpr std::uint8_t phase_waiting = 1;

    // Starting (epoll_backend.cpp).
    void start_recv(detail::operation& op, fd_state& fd, detail::completion_queue& done) noexcept;
    void start_send(detail::operation& op, fd_state& fd, detail::completion_queue& done) noexcept;
    void start_poll(detail::operation& op, fd_state& fd, detail::completion_queue& done) noexcept;
    void run_file_op(detail::operation& op) noexcept;
    /// Adds the fd to the epoll set unless it is in it: 0, or -errno. EPERM is not an error: it
    /// marks the fd refused (regular files are always ready, as poll(2) says).
    int ensure_registered(int fd, fd_state& state) noexcept;
    void wait_on(epoll_detail::wait_list& list, detail::operation& op) noexcept;
    void stop_waiting(epoll_detail::wait_list& list, detail::operation& op) noexcept;
    void
    complete(detail::operation& op, std::int64_t result, detail::completion_queue& done) noexcept;

    // Transfers (epoll_io.cpp). Each returns true when op finished (op.result set) and false on
    // EAGAIN, and updates the fd's flags with what the kernel's answer says.
    bool try_recv(detail::operation& op, fd_state& state) noexcept;
    bool try_send(detail::operation& op, fd_state& state) noexcept;
    /// Asks poll(2) what `events` the fd has now and records it: revents, or -errno.
    std::int64_t check_now(int fd, std::uint32_t events, fd_state& state) noexcept;

    // Waiting (epoll_wait.cpp).
    /// epoll_wait until a batch comes back short (at most max_batches), dispatching each event:
    /// 0, or -errno.
    int collect(std::optional<std::chrono::nanoseconds> timeout,
                detail::completion_queue& done) noexcept;
    int wait_for_events(std::optional<std::chrono::nanoseconds> timeout) noexcept;
    void dispatch(const epoll_event& event, detail::completion_queue& done) noexcept;
    void run_waiters(fd_state& state, detail::completion_queue& done) noexcept;

    int epoll_fd_;
    epoll_detail::fd_table fds_;
    std::size_t waiting_ = 0;
    unsigned polls_skipped_ = 0;
    bool have_pwait2_ = true;
    std::array<epoll_event, event_batch> events_{};
};

namespace epoll_detail {

/// What the flags say `events` (poll(2) bits) are ready now, with POLLERR and POLLHUP always.
std::uint32_t known_revents(const fd_state& state, std::uint32_t events) noexcept;
/// True when a direction `events` asks for is unknown, so only the kernel can answer.
bool needs_check(const fd_state& state, std::uint32_t events) noexcept;
/// A finished poll's owner will act on `revents` where we can't see it: ready becomes unknown.
void consumed(fd_state& state, std::uint32_t revents) noexcept;
/// Records what epoll (or poll(2): the bits are the same) says is ready.
void record(fd_state& state, std::uint32_t events) noexcept;

/// The epoll_data of an fd's registration: its number and its generation.
inline std::uint64_t event_key(int fd, std::uint32_t generation) noexcept {
    return (static_cast<std::uint64_t>(generation) << 32) | static_cast<std::uint32_t>(fd);
}

} // namespace epoll_detail

} // namespace aioloop::backend
