#pragma once

// What the load generator's files share: the message content pattern, the per-thread state that
// connection tasks update, and a single-threaded counter that a task can wait on.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include <aioloop/apps/load.hpp>
#include <aioloop/net/tcp_stream.hpp>

namespace aioloop::apps::detail {

std::uint64_t splitmix64(std::uint64_t x) noexcept;

/// The bytes of message `key` at [offset, offset + out.size()): byte o is byte o % 8 of
/// splitmix64(key + o / 8), so that any slice can be made, or checked, without the rest.
void fill_pattern(std::uint64_t key, std::uint64_t offset, std::span<std::byte> out) noexcept;
bool matches_pattern(std::uint64_t key,
                     std::uint64_t offset,
                     std::span<const std::byte> in) noexcept;

/// Counts tasks in flight on one loop; one task may wait until at most `n` remain. Touched only
/// on the loop's thread, so it needs no lock, and the waiter is resumed inline.
class task_counter {
public:
    void add() noexcept { ++count_; }
    void done() noexcept {
        --count_;
        if (waiter_ && count_ <= limit_) {
            std::exchange(waiter_, {}).resume();
        }
    }
    std::size_t count() const noexcept { return count_; }

    struct awaiter {
        task_counter* self;
        std::size_t limit;
        bool await_ready() const noexcept { return self->count_ <= limit; }
        void await_suspend(std::coroutine_handle<> caller) noexcept {
            self->limit_ = limit;
            self->waiter_ = caller;
        }
        void await_resume() const noexcept {}
    };
    /// Resumes the awaiting task once at most `limit` tasks are in flight.
    awaiter at_most(std::size_t limit) noexcept { return {this, limit}; }

private:
    std::size_t count_ = 0;
    std::size_t limit_ = 0;
    std::coroutine_handle<> waiter_;
};

/// What one connection is asked to do.
struct connection_plan {
    unsigned index = 0;         ///< among all threads' connections: seeds its sizes and content
    std::uint64_t requests = 0; ///< 0: until the deadline or a stop
    clock::duration period{0};  ///< open loop: time between its sends; 0: closed loop
    clock::duration phase{0};   ///< open loop: its first send, after the start
};

/// One loop thread's share of the run. Members are touched only on that loop's thread.
struct thread_state {
    const load_config* config = nullptr;
    std::vector<connection_plan> plans;
    std::vector<net::tcp_stream> streams; ///< one per plan; closed when its connect failed
    std::string first_error;

    clock::time_point start;
    std::optional<clock::time_point> deadline;  ///< no new request after it
    std::optional<clock::time_point> hard_stop; ///< requests still out are abandoned
    clock::time_point last_end;
    bool stop_sending = false;
    std::stop_source abort;
    task_counter running;

    load_result result;
    std::unique_ptr<loop> ev; ///< last: destroyed first, with the task frames it still holds
};

/// Connects every plan's stream, a few dozen at a time so the listener's backlog keeps up.
task<void> connect_all(thread_state* t);
/// One HTTP connection's requests (load_protocol::http), in load_http.cpp; signals `running`.
task<void> run_http_connection(thread_state* t, std::size_t slot);
/// Runs every connected plan to its end, then returns.
task<void> drive_all(thread_state* t);

} // namespace aioloop::apps::detail
