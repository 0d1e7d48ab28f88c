#pragma once

// A listening TCP socket on a loop: co_await listener.accept() for the next connection.

#include <aioloop/loop.hpp>
#include <aioloop/net/address.hpp>
#include <aioloop/net/tcp_stream.hpp>
#include <aioloop/task.hpp>

namespace aioloop::net {

struct listen_options {
    int backlog = 4096;
    /// SO_REUSEPORT: one listener per loop thread on the same port, the kernel spreading
    /// connections between them.
    bool reuse_port = false;
    /// IPV6_V6ONLY for IPv6 listeners, so that an IPv4 listener can share the port.
    bool v6_only = true;
};

class tcp_listener {
public:
    tcp_listener() = default;
    tcp_listener(tcp_listener&& other) noexcept;
    tcp_listener& operator=(tcp_listener&& other) noexcept;
    tcp_listener(const tcp_listener&) = delete;
    tcp_listener& operator=(const tcp_listener&) = delete;
    ~tcp_listener();

    /// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen. EADDRINUSE, EACCES...
    static result<tcp_listener> bind(loop& owner, const address& at, listen_options options = {});

    /// The next connection, non-blocking, with TCP_NODELAY. EMFILE/ENFILE when out of fds (the
    /// connection stays queued in the kernel: wait, then accept again); operation_canceled when
    /// the task is stopped.
    task<result<tcp_stream>> accept();

    /// Where it listens (the port the kernel chose for port 0).
    address local_address() const noexcept;
    int fd() const noexcept { return fd_; }
    void close() noexcept;

private:
    loop* loop_ = nullptr;
    int fd_ = -1;
    bool maybe_pending_ = true; // the last accept4 succeeded: try again before waiting
    detail::operation* waiting_ = nullptr;
};

} // namespace aioloop::net
