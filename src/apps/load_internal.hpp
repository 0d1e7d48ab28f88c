#pragma once

// What the load generator's files share: the message content pattern, the per-thread state that
// connection tasks update, a single-threaded counter that a task can wait on, and the interface
// through which a protocol (echo, http) plugs into the shared connection loop.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
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

/// How one request ended; anything but `ok` ends its connection and is counted in load_errors.
enum class outcome { ok, bad_response, mismatch, reset, closed, timeout, connect_failed, other };

/// A failed read or write as an outcome: reset, timeout (the run's abort cancelled it) or other.
outcome classify(std::error_code error) noexcept;

struct exchange_result {
    outcome kind = outcome::ok;
    std::size_t bytes = 0; ///< ok: the bytes answered and checked (echo: the message; http: body)
    std::string why;       ///< not ok: details for first_error, may be empty
};

inline exchange_result answered(std::size_t bytes) {
    return {outcome::ok, bytes, {}};
}
inline exchange_result failed(outcome kind, std::string why = {}) {
    return {kind, 0, std::move(why)};
}

/// What a protocol supplies to a connection: one request sent and its answer read and checked.
/// The loop around it (deadline, open-loop schedule, latency, counts, errors) is shared, in
/// load_connection.cpp. An exchanger runs on its connection's loop thread only.
class exchanger {
public:
    virtual ~exchanger() = default;
    /// Request number `seq` of this connection, on its stream.
    virtual task<exchange_result> exchange(std::uint64_t seq) = 0;
};

/// Echo (load_echo.cpp): a message of the configured size, its echo checked byte by byte.
std::unique_ptr<exchanger> make_echo_exchanger(thread_state* t, std::size_t slot);
/// HTTP/1.1 (load_http.cpp): GET the configured path, check status, length and body.
std::unique_ptr<exchanger> make_http_exchanger(thread_state* t, std::size_t slot);

/// Connects every plan's stream, a few dozen at a time so the listener's backlog keeps up.
task<void> connect_all(thread_state* t);
/// Runs every connected plan to its end, then returns.
task<void> drive_all(thread_state* t);

} // namespace aioloop::apps::detail
