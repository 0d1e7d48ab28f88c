#include <memory>

#include <fmt/format.h>

#include <aioloop/apps/echo.hpp>
#include <aioloop/buffer_pool.hpp>

namespace aioloop::apps {

namespace {

// Waits for data without holding a buffer, so that an idle connection costs only its task frame
// and its pending readiness wait; then borrows a buffer, reads what is there and writes it back.
// On io_uring a readiness wait is a separate SQE and a turn before the recv, so there the buffer
// is borrowed for the read itself.
task<void> echo_connection(net::tcp_stream stream,
                           connection_context ctx,
                           std::shared_ptr<buffer_pool> pool,
                           bool wait_before_read) {
    bool drained = true; // the last read came back short: the socket is empty
    for (;;) {
        if (wait_before_read && drained) {
            auto ready = co_await ctx.owner.fd_readable(stream.fd());
            if (!ready) {
                co_return;
            }
        }
        buffer_pool::buffer buf = pool->acquire();
        auto n = co_await stream.read(buf.span());
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
        auto sent = co_await stream.write(buf.span().first(*n));
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
