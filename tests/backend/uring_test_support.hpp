#pragma once

// Drives the uring backend directly, the way the loop does: operation records in a deque that
// never moves them, start/cancel/poll, and a completion queue popped after every turn.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/uring_backend.hpp"

namespace aioloop::backend::uring_testing {

using namespace std::chrono_literals;
using detail::completion_queue;
using detail::op_state;
using detail::operation;

inline std::uint64_t enters(const loop_stats& stats) {
    return stats.syscalls[static_cast<std::size_t>(syscall_name::io_uring_enter)];
}

inline std::string text(const operation& op) {
    if (op.result <= 0) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(op.buf), static_cast<std::size_t>(op.result));
}

class UringBackend : public ::testing::Test {
protected:
    void SetUp() override {
        auto made = make_uring_backend(backend_config{});
        if (!made) {
            GTEST_SKIP() << made.error().message;
        }
        backend_ = std::move(*made);
        uring_ = dynamic_cast<uring_backend*>(backend_.get());
        ASSERT_NE(uring_, nullptr);
    }

    // A record as the loop would hand it over; kept in a deque so addresses stay put.
    operation& start(op_kind kind,
                     int fd,
                     std::size_t len = 64,
                     std::int64_t offset = 0,
                     std::uint32_t poll_events = 0) {
        operation& op = ops_.emplace_back();
        buffers_.emplace_back(std::max<std::size_t>(len, 1));
        op.kind = kind;
        op.fd = fd;
        op.buf = buffers_.back().data();
        op.len = len;
        op.offset = offset;
        op.poll_events = poll_events;
        op.index = static_cast<std::uint32_t>(ops_.size());
        op.state = op_state::started;
        backend_->start(op, done_);
        return op;
    }
    operation& start_send(int fd, const std::string& data) {
        // The kernel reads the buffer when poll() submits the SQE: filling it now is in time.
        operation& op = start(op_kind::send, fd, data.size());
        std::memcpy(op.buf, data.data(), data.size());
        return op;
    }
    operation& start_poll(int fd, std::uint32_t events) {
        return start(op_kind::poll, fd, 0, 0, events);
    }

    // Turns until `count` operations completed, or about 4 s went by (only when a test fails).
    std::vector<operation*> collect(std::size_t count) {
        std::vector<operation*> out;
        for (int turn = 0; turn < 20 && out.size() < count; ++turn) {
            take(200ms, out);
        }
        return out;
    }
    // One turn that never sleeps; returns what completed.
    std::vector<operation*> turn() {
        std::vector<operation*> out;
        take(0ns, out);
        return out;
    }
    void take(std::chrono::nanoseconds timeout, std::vector<operation*>& out) {
        EXPECT_TRUE(backend_->poll(done_, timeout).has_value());
        while (operation* op = done_.pop()) {
            out.push_back(op);
        }
    }

    // Records and buffers outlive the backend, whose destructor ends what is still in flight:
    // the loop destroys them in the same order.
    std::deque<operation> ops_;
    std::deque<std::vector<std::byte>> buffers_;
    completion_queue done_;
    std::unique_ptr<backend> backend_;
    uring_backend* uring_ = nullptr;
};

} // namespace aioloop::backend::uring_testing
