// The system calls behind operations: recv and send on sockets (read and write on other fds),
// pread and pwrite on files, poll(2) when a flag can't be trusted. Each is counted in the stats,
// and each answer updates the fd's readiness flags.

#include <cerrno>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/epoll_backend.hpp"

namespace aioloop::backend {

using detail::operation;
using epoll_detail::readiness;

namespace {

ssize_t recv_once(int fd, std::byte* buf, std::size_t len, bool not_socket) noexcept {
    // MSG_DONTWAIT: an fd someone made blocking still can't stall the loop.
    return not_socket ? ::read(fd, buf, len) : ::recv(fd, buf, len, MSG_DONTWAIT);
}

ssize_t send_once(int fd, const std::byte* buf, std::size_t len, bool not_socket) noexcept {
    // MSG_NOSIGNAL: a reset peer is -EPIPE for this operation, not SIGPIPE for the process.
    return not_socket ? ::write(fd, buf, len) : ::send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

} // namespace

bool epoll_backend::try_recv(operation& op, fd_state& state) noexcept {
    ssize_t n;
    for (;;) {
        stats_.count(syscall_name::read);
        n = recv_once(op.fd, op.buf, op.len, state.not_socket);
        if (n < 0 && errno == ENOTSOCK && !state.not_socket) {
            state.not_socket = true; // a pipe or a tty: read(2) from now on
            continue;
        }
        if (n >= 0 || errno != EINTR) {
            break;
        }
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            ++stats_.eagain;
            state.in = readiness::not_ready;
            return false;
        }
        op.result = -errno;
        state.err = false; // this call returned it; the fd stays "ready": errors don't block
        return true;
    }
    auto got = static_cast<std::size_t>(n);
    if (op.len == 0) {
        // An empty read says nothing about the receive queue.
    } else if (got == 0) {
        state.rdhup = true; // end of stream: every later recv returns 0 at once
        state.in = readiness::ready;
    } else if (got < op.len && !state.rdhup && !state.hup) {
        // A stream socket read that stops short has emptied the receive queue (tcp_recvmsg and
        // unix_stream_read_generic stop only then); data arriving after it raises a new edge.
        // So wait for that edge rather than read again for an EAGAIN: mio/Tokio do the same.
        // recv is for stream sockets (a datagram one would wait with datagrams queued). Of other
        // fds a short read proves nothing (a tty returns a line at a time): try the next one.
        state.in = state.not_socket ? readiness::unknown : readiness::not_ready;
    } else {
        state.in = readiness::ready; // a full buffer probably left more behind
    }
    op.result = n;
    return true;
}

bool epoll_backend::try_send(operation& op, fd_state& state) noexcept {
    ssize_t n;
    for (;;) {
        stats_.count(syscall_name::write);
        n = send_once(op.fd, op.buf, op.len, state.not_socket);
        if (n < 0 && errno == ENOTSOCK && !state.not_socket) {
            state.not_socket = true;
            continue;
        }
        if (n >= 0 || errno != EINTR) {
            break;
        }
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            ++stats_.eagain;
            state.out = readiness::not_ready;
            return false;
        }
        op.result = -errno;
        state.err = false;
        return true;
    }
    // A short write filled the socket buffer and set SOCK_NOSPACE: the kernel raises EPOLLOUT
    // once there is room again. A full one says there was room, and probably still is.
    state.out = static_cast<std::size_t>(n) < op.len ? readiness::not_ready : readiness::ready;
    op.result = n;
    return true;
}

void epoll_backend::run_file_op(operation& op) noexcept {
    // Files can't be waited for with epoll: plain pread/pwrite, which may block on a cold page
    // cache. A thread pool is the way out, as libuv does; not here yet.
    ssize_t n;
    do {
        if (op.kind == op_kind::read_at) {
            stats_.count(syscall_name::read);
            n = ::pread(op.fd, op.buf, op.len, op.offset);
        } else {
            stats_.count(syscall_name::write);
            n = ::pwrite(op.fd, op.buf, op.len, op.offset);
        }
    } while (n < 0 && errno == EINTR);
    op.result = n < 0 ? -errno : n;
}

std::int64_t epoll_backend::check_now(int fd, std::uint32_t events, fd_state& state) noexcept {
    pollfd p{fd, static_cast<short>(events), 0};
    stats_.count(syscall_name::other);
    int rc = ::poll(&p, 1, 0);
    if (rc < 0) {
        return -errno;
    }
    if ((p.revents & POLLNVAL) != 0) {
        return -EBADF;
    }
    auto revents = static_cast<std::uint32_t>(static_cast<std::uint16_t>(p.revents));
    // What poll(2) did not report is not ready now, and since the fd is registered, epoll will
    // raise an edge when it becomes so.
    if ((events & (POLLIN | POLLRDNORM)) != 0 && state.in == readiness::unknown) {
        state.in = readiness::not_ready;
    }
    if ((events & (POLLOUT | POLLWRNORM)) != 0 && state.out == readiness::unknown) {
        state.out = readiness::not_ready;
    }
    if ((events & POLLPRI) != 0 && state.pri == readiness::unknown) {
        state.pri = readiness::not_ready;
    }
    state.err = false;
    epoll_detail::record(state, revents);
    return revents;
}

} // namespace aioloop::backend
