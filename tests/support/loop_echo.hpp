#pragma once

// The server side of the loop tests, written with the library: an accept loop that spawns one
// echo task per connection, and small helpers to wait for a condition on a running loop.

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <aioloop/loop.hpp>
#include <aioloop/net/tcp_listener.hpp>
#include <aioloop/net/tcp_stream.hpp>
#include <aioloop/task.hpp>

namespace aioloop::testing {

/// What an echo server saw; touched only on its loop's thread.
struct echo_server_state {
    std::size_t accepted = 0;
    std::size_t open = 0;
    std::size_t accept_errors = 0; ///< EMFILE and the like, retried after a pause
    int last_accept_error = 0;
    std::uint64_t bytes = 0;
    std::vector<std::string> errors; ///< per-connection failures, except cancellations
    std::vector<int> accepted_fds;
};

/// Echoes until end of stream, an error or a stop; records errors other than a cancellation.
inline task<void>
echo_connection(net::tcp_stream stream, std::size_t buffer, echo_server_state* st) {
    ++st->open;
    std::vector<std::byte> buf(buffer);
    for (;;) {
        auto reading = stream.read(buf);
        auto n = co_await std::move(reading);
        if (!n || *n == 0) {
            if (!n && n.error() != std::errc::operation_canceled) {
                st->errors.push_back("read: " + n.error().message());
            }
            break;
        }
        auto writing = stream.write(std::span<const std::byte>(buf.data(), *n));
        auto w = co_await std::move(writing);
        if (!w) {
            if (w.error() != std::errc::operation_canceled) {
                st->errors.push_back("write: " + w.error().message());
            }
            break;
        }
        if (*w != *n) {
            st->errors.push_back("write: short count");
            break;
        }
        st->bytes += *n;
    }
    --st->open;
}

/// Accepts until stopped, each connection echoed by a task spawned with the same stop token.
/// EMFILE and other accept errors pause 5 ms and retry, as run_server's accept loop does.
inline task<void>
accept_echo(net::tcp_listener* listener, std::size_t buffer, echo_server_state* st) {
    loop* ev = loop::current();
    std::stop_token token = co_await current_stop_token();
    for (;;) {
        auto accepting = listener->accept();
        auto accepted = co_await std::move(accepting);
        if (!accepted) {
            // By value, not `== std::errc::operation_canceled`: that is a virtual call, which
            // UBSan checks by probing memory through a pipe, and during the EMFILE test there is
            // no fd for one (a false "invalid vptr").
            if (accepted.error().value() == ECANCELED) {
                co_return;
            }
            ++st->accept_errors;
            st->last_accept_error = accepted.error().value();
            auto pause = ev->sleep_for(std::chrono::milliseconds(5));
            auto slept = co_await pause;
            if (!slept) {
                co_return;
            }
            continue;
        }
        ++st->accepted;
        st->accepted_fds.push_back(accepted->fd());
        ev->spawn(echo_connection(std::move(*accepted), buffer, st), token);
    }
}

/// Sleeps in 1 ms steps until `done()` or `limit`; says whether `done()` became true.
inline task<bool> wait_until(std::function<bool()> done, clock::duration limit) {
    loop* ev = loop::current();
    auto until = clock::now() + limit;
    while (!done()) {
        if (clock::now() > until) {
            co_return false;
        }
        auto step = ev->sleep_for(std::chrono::milliseconds(1));
        auto slept = co_await step;
        if (!slept) {
            co_return done();
        }
    }
    co_return true;
}

} // namespace aioloop::testing
