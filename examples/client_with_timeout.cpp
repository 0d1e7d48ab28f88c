// A client that gives up: it connects to a server that never answers (started here, so the
// example runs on its own) and waits for a reply with a deadline.

#include <chrono>

#include <fmt/format.h>

#include <aioloop/loop.hpp>
#include <aioloop/net/tcp_listener.hpp>

using namespace aioloop;
using namespace std::chrono_literals;

// Accepts one connection and keeps it open without a word.
task<void> silent_server(net::tcp_listener listener) {
    auto stream = co_await listener.accept();
    if (stream) {
        co_await sleep_for(2s);
    }
}

task<int> ask(net::address server) {
    auto stream = co_await net::tcp_stream::connect(*loop::current(), server, 1s);
    if (!stream) {
        fmt::print("connect: {}\n", stream.error().message());
        co_return 1;
    }
    std::string question = "anyone there?\n";
    co_await stream->write(std::as_bytes(std::span(question)));
    std::byte answer[256];
    auto n = co_await stream->read(answer).with_timeout(200ms);
    if (!n) {
        // std::errc::timed_out after 200 ms: the read was cancelled, the socket is still usable.
        fmt::print("no answer: {}\n", n.error().message());
        co_return n.error() == std::errc::timed_out ? 0 : 1;
    }
    fmt::print("answer: {} bytes\n", *n);
    co_return 1;
}

int main() {
    auto ev = loop::create();
    if (!ev) {
        fmt::print(stderr, "{}\n", ev.error().message);
        return 1;
    }
    auto listener = net::tcp_listener::bind(**ev, *net::address::parse("127.0.0.1:0"));
    if (!listener) {
        return 1;
    }
    net::address at = listener->local_address();
    (*ev)->spawn(silent_server(std::move(*listener)));
    return (*ev)->block_on(ask(at));
}
