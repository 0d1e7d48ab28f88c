// The epoll backend's entry points: making it, starting and cancelling operations, forgetting
// fds. An operation whose fd is known ready runs its system call here, at once; the others wait
// on their fd's lists until epoll_wait reports an edge (epoll_wait.cpp).

#include "backend/epoll_backend.hpp"

#include <cerrno>
#include <memory>
#include <system_error>

#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aioloop::backend {

using detail::completion_queue;
using detail::operation;
using epoll_detail::readiness;

namespace {

// Everything, edge-triggered: one registration serves recv, send and poll operations alike, and
// never changes while the fd lives.
constexpr std::uint32_t registered_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;

// What poll(2) says of a file that has no poll method (fs/select.c DEFAULT_POLLMASK).
constexpr std::uint32_t always_ready = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

} // namespace

tl::expected<std::unique_ptr<backend>, backend_error> make_epoll_backend(const backend_config&) {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) {
        std::error_code code(errno, std::system_category());
        return tl::unexpected(
            backend_error{code,
                          fmt::format("epoll_create1: {}: raise the open-file limit (ulimit -n) or "
                                      "fs.epoll.max_user_watches",
                                      code.message())});
    }
    return std::make_unique<epoll_backend>(fd);
}

epoll_backend::epoll_backend(int epoll_fd) noexcept
    : epoll_fd_(epoll_fd) {
}

epoll_backend::~epoll_backend() {
    ::close(epoll_fd_);
}

void epoll_backend::start(operation& op, completion_queue& done) noexcept {
    op.phase = phase_idle;
    if (op.kind == op_kind::read_at || op.kind == op_kind::write_at) {
        run_file_op(op);
        done.push(op);
        return;
    }
    if (op.fd < 0) {
        complete(op, -EBADF, done);
        return;
    }
    fd_state& state = fds_.at(op.fd);
    switch (op.kind) {
    case op_kind::recv:
        start_recv(op, state, done);
        break;
    case op_kind::send:
        start_send(op, state, done);
        break;
    case op_kind::poll:
        start_poll(op, state, done);
        break;
    case op_kind::read_at:
    case op_kind::write_at:
        break;
    }
}

void epoll_backend::start_recv(operation& op, fd_state& state, completion_queue& done) noexcept {
    // Receivers already waiting go first: they wait for an edge that this one would only steal.
    bool tried = false;
    if (state.readers.empty() && state.in != readiness::not_ready) {
        tried = true;
        if (try_recv(op, state)) {
            done.push(op);
            return;
        }
    }
    if (int error = ensure_registered(op.fd, state); error != 0) {
        complete(op, error, done);
        return;
    }
    if (state.refused) {
        // Nothing can wake a wait on a file epoll refuses; such files don't block anyway.
        if (tried || !try_recv(op, state)) {
            op.result = -EAGAIN;
        }
        done.push(op);
        return;
    }
    wait_on(state.readers, op);
}

void epoll_backend::start_send(operation& op, fd_state& state, completion_queue& done) noexcept {
    // Senders already waiting go first, so that a stream's bytes keep their order.
    bool tried = false;
    if (state.writers.empty() && state.out != readiness::not_ready) {
        tried = true;
        if (try_send(op, state)) {
            done.push(op);
            return;
        }
    }
    if (int error = ensure_registered(op.fd, state); error != 0) {
        complete(op, error, done);
        return;
    }
    if (state.refused) {
        // Nothing can wake a wait on a file epoll refuses; such files don't block anyway.
        if (tried || !try_send(op, state)) {
            op.result = -EAGAIN;
        }
        done.push(op);
        return;
    }
    wait_on(state.writers, op);
}

void epoll_backend::start_poll(operation& op, fd_state& state, completion_queue& done) noexcept {
    std::uint32_t revents = epoll_detail::known_revents(state, op.poll_events);
    if (revents == 0 && !state.registered && !state.refused) {
        // EPOLL_CTL_ADD answers for every direction at the next epoll_wait: no poll(2) needed.
        if (int error = ensure_registered(op.fd, state); error != 0) {
            complete(op, error, done);
            return;
        }
    } else if (revents == 0 && !state.refused && epoll_detail::needs_check(state, op.poll_events)) {
        std::int64_t checked = check_now(op.fd, op.poll_events, state);
        if (checked < 0) {
            complete(op, checked, done);
            return;
        }
        revents = static_cast<std::uint32_t>(checked);
    }
    if (state.refused) {
        // poll(2) calls such a file always ready; a poll for POLLPRI alone waits forever there.
        revents = always_ready & op.poll_events;
    }
    if (revents != 0) {
        epoll_detail::consumed(state, revents);
        complete(op, revents, done);
        return;
    }
    wait_on(state.pollers, op);
}

int epoll_backend::ensure_registered(int fd, fd_state& state) noexcept {
    if (state.registered || state.refused) {
        return 0;
    }
    epoll_event event{};
    event.events = registered_events;
    event.data.u64 = epoll_detail::event_key(fd, state.generation);
    stats_.count(syscall_name::epoll_ctl);
    int rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
    if (rc < 0 && errno == EEXIST) {
        // Still in the set from an earlier life of this number (forget_fd without close, or a
        // dup kept the old file open): MOD re-keys it and, like ADD, reports what is ready now.
        stats_.count(syscall_name::epoll_ctl);
        rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
    }
    if (rc < 0) {
        if (errno == EPERM) {
            // Regular files and directories have no poll method; they never block either.
            state.refused = true;
            state.in = readiness::ready;
            state.out = readiness::ready;
            return 0;
        }
        return -errno;
    }
    state.registered = true;
    // ADD queues an event for whatever is ready now, so "unknown" becomes "the next epoll_wait
    // says": a recv waits for it rather than risk an EAGAIN. A send still tries at once, since a
    // socket nobody has filled has room.
    for (readiness* direction : {&state.in, &state.pri}) {
        if (*direction == readiness::unknown) {
            *direction = readiness::not_ready;
        }
    }
    return 0;
}

void epoll_backend::wait_on(epoll_detail::wait_list& list, operation& op) noexcept {
    op.phase = phase_waiting;
    list.push_back(op);
    ++waiting_;
}

void epoll_backend::stop_waiting(epoll_detail::wait_list& list, operation& op) noexcept {
    list.remove(op);
    op.phase = phase_idle;
    --waiting_;
}

void epoll_backend::complete(operation& op, std::int64_t result, completion_queue& done) noexcept {
    op.result = result;
    done.push(op);
}

void epoll_backend::cancel(operation& op, completion_queue& done) noexcept {
    // Only a waiting operation can still be cancelled: every other one finished inside start().
    if (op.state != detail::op_state::started || op.phase != phase_waiting) {
        return;
    }
    fd_state* state = fds_.find(op.fd);
    if (state == nullptr) {
        return;
    }
    switch (op.kind) {
    case op_kind::recv:
        stop_waiting(state->readers, op);
        break;
    case op_kind::send:
        stop_waiting(state->writers, op);
        break;
    case op_kind::poll:
        stop_waiting(state->pollers, op);
        break;
    case op_kind::read_at:
    case op_kind::write_at:
        return;
    }
    complete(op, -ECANCELED, done);
}

void epoll_backend::forget_fd(int fd) noexcept {
    // No EPOLL_CTL_DEL: closing the fd takes it out of the set (unless a dup keeps the file
    // open, and then the generation in its events tells them apart). That saves one system call
    // per connection.
    fds_.forget(fd);
}

} // namespace aioloop::backend
