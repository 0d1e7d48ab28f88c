#pragma once

// Drives the epoll backend directly, the way the loop does: operation records in a deque that
// never moves them, start/cancel/poll, and a completion queue popped after every call, checking
// that each record comes back exactly once.

#include <chrono>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "backend/epoll_backend.hpp"
#include "loop/operation.hpp"

namespace aioloop::testing {

class epoll_harness {
public:
    epoll_harness() {
        auto made = backend::make_epoll_backend(backend::backend_config{});
        if (!made) {
            ADD_FAILURE() << made.error().message;
            return;
        }
        backend_ = std::move(*made);
    }

    backend::backend& backend() { return *backend_; }
    const loop_stats& stats() const { return backend_->stats(); }
    std::uint64_t calls(syscall_name name) const {
        return stats().syscalls[static_cast<std::size_t>(name)];
    }
    std::size_t waiting() const {
        return static_cast<const backend::epoll_backend&>(*backend_).waiting();
    }

    detail::operation& make(op_kind kind, int fd) {
        detail::operation& op = ops_.emplace_back();
        op.kind = kind;
        op.fd = fd;
        op.index = static_cast<std::uint32_t>(ops_.size() - 1);
        return op;
    }
    detail::operation& recv(int fd, std::size_t len = 4096) {
        detail::operation& op = make(op_kind::recv, fd);
        auto& buf = buffers_.emplace_back(len);
        op.buf = buf.data();
        op.len = len;
        return start(op);
    }
    detail::operation& send(int fd, const std::string& data) {
        detail::operation& op = make(op_kind::send, fd);
        auto& buf = buffers_.emplace_back(data.size());
        std::memcpy(buf.data(), data.data(), data.size());
        op.buf = buf.data();
        op.len = data.size();
        return start(op);
    }
    detail::operation& poll(int fd, std::uint32_t events) {
        detail::operation& op = make(op_kind::poll, fd);
        op.poll_events = events;
        return start(op);
    }
    detail::operation& start(detail::operation& op) {
        op.state = detail::op_state::started;
        op.result = 0;
        backend_->start(op, done_);
        drain();
        return op;
    }
    void cancel(detail::operation& op) {
        backend_->cancel(op, done_);
        drain();
    }
    /// One poll() of the backend; false when it reported an error.
    bool turn(std::optional<std::chrono::nanoseconds> timeout) {
        auto polled = backend_->poll(done_, timeout);
        EXPECT_TRUE(polled) << polled.error().message();
        drain();
        return polled.has_value();
    }
    /// Polls until `op` is done; gives up (returning false) after a few seconds, so that a bug
    /// fails the test instead of hanging it. Passing never depends on the time taken.
    bool wait_for(const detail::operation& op) {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (op.state != detail::op_state::done) {
            if (std::chrono::steady_clock::now() > give_up) {
                return false;
            }
            turn(std::chrono::milliseconds(100));
        }
        return true;
    }
    static std::string data_of(const detail::operation& op) {
        return std::string(reinterpret_cast<const char*>(op.buf),
                           op.result > 0 ? static_cast<std::size_t>(op.result) : 0);
    }
    bool is_done(const detail::operation& op) const { return op.state == detail::op_state::done; }
    std::size_t completed() const { return finished_.size(); }

private:
    void drain() {
        while (detail::operation* op = done_.pop()) {
            EXPECT_TRUE(finished_.insert(op).second) << "operation completed twice";
        }
    }

    std::unique_ptr<backend::backend> backend_;
    detail::completion_queue done_;
    std::deque<detail::operation> ops_;
    std::deque<std::vector<std::byte>> buffers_;
    std::set<detail::operation*> finished_;
};

/// Reads what is there (up to `max`) from a non-blocking fd, waiting up to a second for the first
/// byte.
inline std::string read_some(int fd, std::size_t max = 65536) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 1000);
    std::string out(max, '\0');
    ssize_t n = ::read(fd, out.data(), max);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

} // namespace aioloop::testing
