// The proxy's handler: connect to the upstream, then run the two directions (and the idle
// watchdog) and wait for all of them before the pair's streams close.

#include <memory>
#include <string>

#include <fmt/format.h>

#include <aioloop/apps/proxy.hpp>

#include "apps/proxy_pair.hpp"

namespace aioloop::apps {

namespace detail {

proxy_pair::proxy_pair(connection_context ctx,
                       proxy_shared& shared,
                       net::tcp_stream client,
                       net::tcp_stream upstream)
    : ctx_(std::move(ctx))
    , shared_(shared)
    , streams_{std::move(client), std::move(upstream)}
    , last_active_(clock::now()) {
}

void proxy_pair::touch() noexcept {
    if (idle_stop_.stop_possible()) {
        last_active_ = clock::now();
    }
}

void proxy_pair::close_side(side s, bool with_reset) noexcept {
    // A readiness wait isn't tracked by the stream: cancel it first, or (aio) the pending POLL
    // would keep the socket alive after close() and its FIN or RST would never leave.
    owner().cancel(waits_[s]);
    if (with_reset) {
        streams_[s].reset();
    } else {
        streams_[s].close();
    }
}

void proxy_pair::forward_eof(side from) noexcept {
    net::tcp_stream& to = streams_[other(from)];
    if (to.is_open()) {
        // ENOTCONN when the peer has already reset: nothing left to tell it.
        (void)to.shutdown_write();
    }
}

void proxy_pair::break_pair(side broken, std::error_code error, std::string_view what) {
    bool already = !streams_[client_side].is_open() && !streams_[upstream_side].is_open();
    if (already) {
        return;
    }
    ++ctx_.counters.errors;
    bool routine = error == std::errc::connection_reset || error == std::errc::broken_pipe;
    if (!ctx_.quiet && !routine) {
        fmt::print(stderr,
                   "aioloop proxy: client {} upstream {}: {} {}: {}\n",
                   streams_[client_side].peer().to_string(),
                   shared_.options.upstream_name,
                   what,
                   broken == client_side ? "client" : "upstream",
                   error.message());
    }
    close_side(other(broken), true);
    close_side(broken, false);
}

void proxy_pair::close_both() noexcept {
    close_side(client_side, false);
    close_side(upstream_side, false);
}

void proxy_pair::direction_finished() noexcept {
    if (--directions_ == 0 && idle_stop_.stop_possible()) {
        idle_stop_.request_stop(); // the watchdog's sleep ends on this turn
    }
}

void proxy_pair::task_finished() noexcept {
    if (--tasks_ == 0 && joiner_) {
        // The caller's last statement: the handler may free the pair as soon as it resumes.
        std::exchange(joiner_, {}).resume();
    }
}

} // namespace detail

namespace {

using detail::proxy_pair;
using detail::proxy_shared;

// Every resolved address in turn, each with the connect timeout; the last error if none answers.
task<result<net::tcp_stream>> connect_upstream(loop& owner, std::shared_ptr<proxy_shared> shared) {
    std::error_code last = std::make_error_code(std::errc::host_unreachable);
    for (const net::address& to : shared->options.upstream) {
        // Named first: a task temporary inside co_await trips GCC PR 100611.
        auto connecting = net::tcp_stream::connect(owner, to, shared->options.connect_timeout);
        auto connected = co_await std::move(connecting);
        if (connected) {
            co_return std::move(*connected);
        }
        last = connected.error();
        if (last == std::errc::operation_canceled) {
            break;
        }
    }
    co_return tl::unexpected(last);
}

// A spawned task of the pair: runs `work`, then tells the pair, as its very last act.
task<void> pair_task(proxy_pair* pair, task<void> work) {
    co_await std::move(work);
    pair->task_finished();
}

task<void> proxy_connection(net::tcp_stream client,
                            connection_context ctx,
                            std::shared_ptr<proxy_shared> shared) {
    auto connecting = connect_upstream(ctx.owner, shared);
    auto upstream = co_await std::move(connecting);
    if (!upstream) {
        if (upstream.error() != std::errc::operation_canceled) {
            ++ctx.counters.errors;
            if (!ctx.quiet) {
                fmt::print(stderr,
                           "aioloop proxy: client {}: upstream {} ({}): connect: {}; closing the "
                           "client\n",
                           client.peer().to_string(),
                           shared->options.upstream_name,
                           shared->options.upstream.size() == 1
                               ? shared->options.upstream.front().to_string()
                               : fmt::format("{} addresses", shared->options.upstream.size()),
                           upstream.error().message());
            }
        }
        if (upstream.error() == std::errc::connection_reset) {
            client.reset(); // it answered, then reset: tell the client the same way
        }
        co_return; // the client is closed as `client` goes out of scope
    }
    ++ctx.counters.requests;
    (void)client.set_nodelay(true);
    proxy_pair pair(ctx, *shared, std::move(client), std::move(*upstream));
    if (shared->options.idle_timeout.count() > 0) {
        pair.enable_idle_watch();
        pair.task_started();
        ctx.owner.spawn(pair_task(&pair, detail::watch_idle(&pair)), pair.idle_token());
    }
    pair.task_started();
    ctx.owner.spawn(pair_task(&pair, detail::forward(&pair, detail::upstream_side)), ctx.abort);
    // The other direction runs in this task, which inherits the server's abort token.
    pair.task_started();
    auto outbound = detail::forward(&pair, detail::client_side);
    co_await std::move(outbound);
    pair.task_finished();
    auto joined = pair.join();
    co_await joined;
}

} // namespace

handler_factory make_proxy_handler(proxy_options options) {
    return [options](loop& owner) -> connection_handler {
        auto shared = std::make_shared<proxy_shared>(options, owner.backend_name() != "uring");
        return [shared](net::tcp_stream stream, connection_context ctx) {
            return proxy_connection(std::move(stream), ctx, shared);
        };
    };
}

} // namespace aioloop::apps
