#include <algorithm>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>

#include <aioloop/net/tcp_stream.hpp>

namespace aioloop::net {

tcp_stream::tcp_stream(tcp_stream&& other) noexcept
    : loop_(other.loop_)
    , fd_(std::exchange(other.fd_, -1)) {
    loop::move_tracked(reading_, other.reading_);
    loop::move_tracked(writing_, other.writing_);
}

tcp_stream& tcp_stream::operator=(tcp_stream&& other) noexcept {
    if (this != &other) {
        close();
        loop_ = other.loop_;
        fd_ = std::exchange(other.fd_, -1);
        loop::move_tracked(reading_, other.reading_);
        loop::move_tracked(writing_, other.writing_);
    }
    return *this;
}

tcp_stream::~tcp_stream() {
    close();
}

// A cancelled operation never issues another system call on its fd (the backends check
// cancel_requested before each phase), so the number can be released at once even though the
// kernel may still post the cancelled POLL's event, which the loop then drops.
void tcp_stream::close() noexcept {
    if (fd_ < 0) {
        return;
    }
    loop_->cancel(reading_);
    loop_->cancel(writing_);
    loop_->forget_fd(fd_);
    ::close(fd_);
    fd_ = -1;
}

void tcp_stream::reset() noexcept {
    if (fd_ >= 0) {
        linger hard{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    }
    close();
}

result<void> tcp_stream::shutdown_write() noexcept {
    if (::shutdown(fd_, SHUT_WR) != 0) {
        return fail_errno();
    }
    return {};
}

address tcp_stream::peer() const noexcept {
    address out;
    socklen_t len = address::capacity();
    if (::getpeername(fd_, out.data(), &len) == 0) {
        out.set_size(len);
    }
    return out;
}

result<void> tcp_stream::set_nodelay(bool on) noexcept {
    int value = on ? 1 : 0;
    if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) != 0) {
        return fail_errno();
    }
    return {};
}

result<void> tcp_stream::set_receive_low_water(std::size_t bytes) noexcept {
    int value = static_cast<int>(std::clamp<std::size_t>(bytes, 1, INT_MAX));
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVLOWAT, &value, sizeof(value)) != 0) {
        return fail_errno();
    }
    return {};
}

task<result<tcp_stream>>
tcp_stream::connect(loop& owner, address to, std::optional<clock::duration> timeout) {
    int fd = ::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        co_return fail_errno();
    }
    tcp_stream stream(owner, fd);
    owner.count_syscall(syscall_name::connect);
    if (::connect(fd, to.data(), to.size()) != 0) {
        if (errno != EINPROGRESS) {
            co_return fail_errno();
        }
        auto writable = owner.fd_writable(fd);
        auto ready = timeout ? co_await std::move(writable).with_timeout(*timeout)
                             : co_await std::move(writable);
        if (!ready) {
            co_return tl::unexpected(ready.error());
        }
        int error = 0;
        socklen_t len = sizeof(error);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
            co_return fail_errno();
        }
        if (error != 0) {
            co_return fail(error);
        }
    }
    (void)stream.set_nodelay(true);
    co_return stream;
}

} // namespace aioloop::net
