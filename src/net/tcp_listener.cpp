#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <aioloop/net/tcp_listener.hpp>

namespace aioloop::net {

tcp_listener::tcp_listener(tcp_listener&& other) noexcept
    : loop_(other.loop_)
    , fd_(std::exchange(other.fd_, -1))
    , maybe_pending_(other.maybe_pending_) {
    loop::move_tracked(waiting_, other.waiting_);
}

tcp_listener& tcp_listener::operator=(tcp_listener&& other) noexcept {
    if (this != &other) {
        close();
        loop_ = other.loop_;
        fd_ = std::exchange(other.fd_, -1);
        maybe_pending_ = other.maybe_pending_;
        loop::move_tracked(waiting_, other.waiting_);
    }
    return *this;
}

tcp_listener::~tcp_listener() {
    close();
}

void tcp_listener::close() noexcept {
    if (fd_ < 0) {
        return;
    }
    loop_->cancel(waiting_);
    loop_->forget_fd(fd_);
    ::close(fd_);
    fd_ = -1;
}

result<tcp_listener> tcp_listener::bind(loop& owner, const address& at, listen_options options) {
    int fd = ::socket(at.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail_errno();
    }
    tcp_listener listener;
    listener.loop_ = &owner;
    listener.fd_ = fd;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        return fail_errno();
    }
    if (at.family() == AF_INET6) {
        int v6_only = options.v6_only ? 1 : 0;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof(v6_only));
    }
    if (::bind(fd, at.data(), at.size()) != 0 || ::listen(fd, options.backlog) != 0) {
        return fail_errno();
    }
    return listener;
}

address tcp_listener::local_address() const noexcept {
    address out;
    socklen_t len = address::capacity();
    if (::getsockname(fd_, out.data(), &len) == 0) {
        out.set_size(len);
    }
    return out;
}

// There is no AIO accept: wait for readability with a POLL, then accept4. After a success the
// backlog may hold more, so the next accept tries accept4 before waiting.
task<result<tcp_stream>> tcp_listener::accept() {
    for (;;) {
        if (maybe_pending_) {
            loop_->count_syscall(syscall_name::accept4);
            int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                tcp_stream stream(*loop_, fd);
                (void)stream.set_nodelay(true);
                co_return stream;
            }
            int err = errno;
            if (err == ECONNABORTED || err == EINTR) {
                continue;
            }
            if (err != EAGAIN) {
                co_return fail(err); // EMFILE, ENFILE, ENOBUFS...: the caller decides
            }
            maybe_pending_ = false;
        }
        auto ready = co_await loop_->fd_readable(fd_).tracked_by(&waiting_);
        if (!ready) {
            co_return tl::unexpected(ready.error());
        }
        maybe_pending_ = true;
    }
}

} // namespace aioloop::net
