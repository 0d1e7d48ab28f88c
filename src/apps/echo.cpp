#include <chrono>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include <aioloop/apps/echo.hpp>
#include <aioloop/buffer_pool.hpp>

namespace aioloop::apps {

namespace {

using namespace std::chrono_literals;

// On io_uring a read is issued holding its buffer (a readiness wait first would be one more SQE
// and one more turn per request); a connection that stays silent this long gives the buffer back
// and waits for readiness instead, so that idle connections hold no buffer on any backend.
constexpr auto read_patience = 20ms;

// Waits for data without holding a buffer, so that an idle connection costs only its task frame
// and its pending readiness wait; then borrows a buffer, reads what is there and writes it back.
task<void> echo_connection(net::tcp_stream stream,
                           connection_context ctx,
                           std::shared_ptr<buffer_pool> pool,
                           bool wait_before_read) {
    bool drained = true; // the last read came back short: the socket is empty
    bool idle = false;   // a patient read timed out: wait for readiness before the next one
    // One slot for the wait, the read and the write in turn: the frame, which is most of what an
    // idle connection costs, holds one awaitable instead of three.
    std::optional<io_awaitable> next;
    for (;;) {
        if ((wait_before_read && drained) || idle) {
            next.emplace(ctx.owner.fd_readable(stream.fd()));
            auto ready = co_await std::move(*next);
            if (!ready) {
                co_return;
            }
            idle = false;
        }
        buffer_pool::buffer buf = pool->acquire();
        next.emplace(stream.read(buf.span()));
        if (!wait_before_read) {
            std::move(*next).with_timeout(read_patience);
        }
        auto n = co_await std::move(*next);
        if (!n && n.error() == std::errc::timed_out) {
            idle = true;
            continue;
        }
        if (!n || *n == 0) {
            if (!n && !ctx.quiet && n.error() != std::errc::operation_canceled &&
                n.error() != std::errc::connection_reset) {
                fmt::print(stderr,
                           "aioloop echo: read from {}: {}\n",
                           stream.peer().to_string(),
                           n.error().message());
            }
            co_return;
        }
        ctx.counters.bytes_in += *n;
        drained = *n < buf.size();
        next.emplace(stream.write(buf.span().first(*n)));
        auto sent = co_await std::move(*next);
        if (!sent) {
            co_return;
        }
        ctx.counters.bytes_out += *sent;
        ++ctx.counters.requests;
    }
}

} // namespace

handler_factory make_echo_handler(echo_options options) {
    return [options](loop& owner) -> connection_handler {
        auto pool = std::make_shared<buffer_pool>(options.buffer_size);
        bool wait_before_read = owner.backend_name() != "uring";
        return [pool, wait_before_read](net::tcp_stream stream, connection_context ctx) {
            return echo_connection(std::move(stream), ctx, pool, wait_before_read);
        };
    };
}

} // namespace aioloop::apps
