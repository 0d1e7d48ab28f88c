#pragma once

// A connected TCP socket on a loop: co_await stream.read(buf) / stream.write(buf). Closing it
// cancels the read and the write still pending on it, so no operation outlives the fd number.

#include <cstddef>
#include <span>
#include <utility>

#include <aioloop/loop.hpp>
#include <aioloop/net/address.hpp>
#include <aioloop/task.hpp>

namespace aioloop::net {

class tcp_stream {
public:
    tcp_stream() = default;
    /// Takes ownership of a connected, non-blocking socket.
    tcp_stream(loop& owner, int fd) noexcept
        : loop_(&owner)
        , fd_(fd) {}
    tcp_stream(tcp_stream&& other) noexcept;
    tcp_stream& operator=(tcp_stream&& other) noexcept;
    tcp_stream(const tcp_stream&) = delete;
    tcp_stream& operator=(const tcp_stream&) = delete;
    ~tcp_stream();

    /// Connects to `to` (non-blocking connect, then a wait for writability). ECONNREFUSED,
    /// ETIMEDOUT (after `timeout`, if given), ENETUNREACH...
    static task<result<tcp_stream>>
    connect(loop& owner, address to, std::optional<clock::duration> timeout = {});

    /// Reads what is there, up to buf.size() bytes; 0 means the peer closed its side.
    io_awaitable read(std::span<std::byte> buf) noexcept {
        return loop_->recv(fd_, buf).tracked_by(&reading_);
    }
    /// Writes all of `buf` or fails (EPIPE, ECONNRESET...).
    io_awaitable write(std::span<const std::byte> buf) noexcept {
        return loop_->send(fd_, buf).tracked_by(&writing_);
    }

    /// shutdown(SHUT_WR): the peer reads end of stream; we can still read.
    result<void> shutdown_write() noexcept;
    /// Cancels pending operations and closes the socket. Safe to call twice.
    void close() noexcept;
    /// Closes with a TCP reset instead of an orderly FIN (SO_LINGER 0).
    void reset() noexcept;

    bool is_open() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    loop& owner() const noexcept { return *loop_; }
    /// The peer's address (getpeername); empty when unknown.
    address peer() const noexcept;
    /// TCP_NODELAY on or off.
    result<void> set_nodelay(bool on) noexcept;
    /// The receive low-water mark (SO_RCVLOWAT): a readiness wait ends only once this many bytes
    /// are queued, or the peer ended or broke the stream, or its window is nearly closed; so does
    /// a read that has to wait (one that finds bytes at once returns them, however few). 1, the
    /// default, ends a wait at the first byte. Lowering the mark ends a pending wait at once when
    /// enough bytes are queued for the new mark.
    result<void> set_receive_low_water(std::size_t bytes) noexcept;

private:
    loop* loop_ = nullptr;
    int fd_ = -1;
    detail::operation* reading_ = nullptr;
    detail::operation* writing_ = nullptr;
};

} // namespace aioloop::net
