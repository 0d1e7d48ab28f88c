// An echo server: each connection is a coroutine that reads and writes back until the peer
// closes. Ctrl-C stops it. Usage: echo_server [PORT]   (default 7000, 0 picks a free one)

#include <cstdlib>
#include <string>

#include <signal.h>

#include <fmt/format.h>

#include <aioloop/loop.hpp>
#include <aioloop/net/tcp_listener.hpp>
#include <aioloop/signals.hpp>

using namespace aioloop;

task<void> echo(net::tcp_stream stream) {
    std::byte buf[4096];
    for (;;) {
        auto n = co_await stream.read(buf);
        if (!n || *n == 0) {
            co_return; // error or the peer closed its side
        }
        auto sent = co_await stream.write(std::span(buf, *n));
        if (!sent) {
            co_return;
        }
    }
}

task<void> accept_all(net::tcp_listener listener) {
    for (;;) {
        auto stream = co_await listener.accept();
        if (!stream) {
            co_return; // stopped
        }
        spawn(echo(std::move(*stream))); // fire and forget: one task per connection
    }
}

task<void> stop_on_ctrl_c(loop& ev, std::stop_source accepting) {
    auto signals = signal_set::create(ev, {SIGINT, SIGTERM});
    if (signals) {
        co_await signals->wait();
    }
    accepting.request_stop(); // cancels the pending accept
    ev.stop();
}

int main(int argc, char** argv) {
    auto ev = loop::create(); // aio when the kernel allows it, else io_uring, else epoll
    if (!ev) {
        fmt::print(stderr, "{}\n", ev.error().message);
        return 1;
    }
    std::string port = argc > 1 ? argv[1] : "7000";
    auto listener = net::tcp_listener::bind(**ev, *net::address::parse("127.0.0.1:" + port));
    if (!listener) {
        fmt::print(stderr, "listen: {}\n", listener.error().message());
        return 1;
    }
    fmt::print("echo_server: listening on {} with the {} backend\n",
               listener->local_address().to_string(),
               (*ev)->backend_name());
    std::fflush(stdout);
    std::stop_source accepting;
    (*ev)->spawn(accept_all(std::move(*listener)), accepting.get_token());
    (*ev)->spawn(stop_on_ctrl_c(**ev, accepting));
    (*ev)->run();
    return 0;
}
