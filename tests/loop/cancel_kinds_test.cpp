// Cancellation of every kind of operation through the stop token given to spawn(), and
// per-operation deadlines: each ends with operation_canceled (or timed_out) and nothing else.

#include <chrono>
#include <optional>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

std::error_code outcome(const result<std::size_t>& r) {
    return r ? std::error_code{} : r.error();
}

task<void> keep(task<std::error_code> work, std::optional<std::error_code>* out) {
    *out = co_await std::move(work);
}

class CancelKinds : public testing::loop_test {
protected:
    // Runs `work` under a stop source that is stopped after `delay` (from another thread when
    // `from_thread`); what the operation answered, or nullopt if it never finished.
    std::optional<std::error_code>
    stopped(task<std::error_code> work, clock::duration delay = 30ms, bool from_thread = false) {
        std::optional<std::error_code> out;
        std::stop_source source;
        ev().spawn(keep(std::move(work), &out), source.get_token());
        std::thread stopper;
        auto main = [&]() -> task<void> {
            if (from_thread) {
                stopper = std::thread([&] {
                    std::this_thread::sleep_for(delay);
                    source.request_stop();
                });
            } else {
                auto nap = ev().sleep_for(delay);
                co_await nap;
                EXPECT_FALSE(out.has_value()) << "finished before the stop: " << out->message();
                source.request_stop();
            }
            auto done = testing::wait_until([&] { return out.has_value(); }, 3s);
            co_await std::move(done);
        };
        ev().block_on(main());
        if (stopper.joinable()) {
            stopper.join();
        }
        EXPECT_EQ(ev().live_tasks(), 0u);
        EXPECT_EQ(ev().stats().stale_completions, 0u);
        return out;
    }

    // Fills fd's send buffer so that the next send waits.
    static void fill(int fd) {
        std::vector<char> junk(64 * 1024);
        while (::send(fd, junk.data(), junk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
        }
    }
};

const std::error_condition canceled = std::errc::operation_canceled;
const std::error_condition timed_out = std::errc::timed_out;

TEST_P(CancelKinds, Recv) {
    auto [a, b] = testing::stream_pair();
    auto work = [](loop* l, int fd) -> task<std::error_code> {
        std::byte buf[64];
        auto reading = l->recv(fd, buf);
        co_return outcome(co_await std::move(reading));
    };
    EXPECT_EQ(stopped(work(&ev(), b.get())), canceled);
    // The socket is still usable, and the cancelled read took nothing.
    testing::write_all(a.get(), "x");
    auto again = [](loop* l, int fd) -> task<result<std::size_t>> {
        std::byte buf[64];
        auto reading = l->recv(fd, buf).with_timeout(2s);
        co_return co_await std::move(reading);
    };
    auto r = ev().block_on(again(&ev(), b.get()));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, 1u);
}

TEST_P(CancelKinds, RecvStoppedFromAnotherThread) {
    auto [a, b] = testing::stream_pair();
    auto work = [](loop* l, int fd) -> task<std::error_code> {
        std::byte buf[64];
        auto reading = l->recv(fd, buf);
        co_return outcome(co_await std::move(reading));
    };
    EXPECT_EQ(stopped(work(&ev(), b.get()), 30ms, true), canceled);
}

TEST_P(CancelKinds, SendOnAFullSocket) {
    auto [a, b] = testing::stream_pair();
    fill(b.get());
    std::vector<std::byte> data(1 << 20);
    auto work = [](loop* l, int fd, std::span<const std::byte> d) -> task<std::error_code> {
        auto writing = l->send(fd, d);
        co_return outcome(co_await std::move(writing));
    };
    EXPECT_EQ(stopped(work(&ev(), b.get(), data)), canceled);
}

TEST_P(CancelKinds, Poll) {
    auto [a, b] = testing::stream_pair();
    auto work = [](loop* l, int fd) -> task<std::error_code> {
        auto waiting = l->fd_readable(fd);
        co_return outcome(co_await std::move(waiting));
    };
    EXPECT_EQ(stopped(work(&ev(), b.get())), canceled);
}

TEST_P(CancelKinds, Sleep) {
    auto work = [](loop* l) -> task<std::error_code> {
        auto nap = l->sleep_for(30s);
        auto slept = co_await nap;
        co_return slept ? std::error_code{} : slept.error();
    };
    EXPECT_EQ(stopped(work(&ev())), canceled);
}

TEST_P(CancelKinds, Accept) {
    auto listener = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
    ASSERT_TRUE(listener) << listener.error().message();
    auto work = [](net::tcp_listener* l) -> task<std::error_code> {
        auto accepting = l->accept();
        auto s = co_await std::move(accepting);
        co_return s ? std::error_code{} : s.error();
    };
    EXPECT_EQ(stopped(work(&*listener)), canceled);
}

// A listener whose accept queue is full drops new SYNs, so a connect to it stays in progress:
// a blackhole on loopback. Returns the sockets that filled the queue.
std::vector<testing::scoped_fd> fill_backlog(const net::address& at) {
    std::vector<testing::scoped_fd> fillers;
    for (int i = 0; i < 16; ++i) {
        testing::scoped_fd fd(::socket(at.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        ::connect(fd.get(), at.data(), at.size());
        pollfd p{fd.get(), POLLOUT, 0};
        bool connected = ::poll(&p, 1, 100) == 1;
        fillers.push_back(std::move(fd));
        if (!connected) {
            return fillers; // this one hangs: the queue is full
        }
    }
    return {};
}

task<std::error_code> connect_to(loop* l, net::address at, std::optional<clock::duration> limit) {
    auto connecting = net::tcp_stream::connect(*l, at, limit);
    auto s = co_await std::move(connecting);
    co_return s ? std::error_code{} : s.error();
}

TEST_P(CancelKinds, ConnectToABlackhole) {
    auto listener = net::tcp_listener::bind(
        ev(), *net::address::parse("127.0.0.1:0"), net::listen_options{.backlog = 0});
    ASSERT_TRUE(listener) << listener.error().message();
    auto fillers = fill_backlog(listener->local_address());
    if (fillers.empty()) {
        GTEST_SKIP() << "the accept queue never filled: no blackhole on this kernel";
    }
    EXPECT_EQ(stopped(connect_to(&ev(), listener->local_address(), std::nullopt)), canceled);
    // And with a deadline instead of a stop.
    auto limited = ev().block_on(connect_to(&ev(), listener->local_address(), 50ms));
    EXPECT_EQ(limited, timed_out) << limited.message();
}

TEST_P(CancelKinds, AlreadyStoppedTokenCancelsAtOnce) {
    auto [a, b] = testing::stream_pair();
    std::stop_source source;
    source.request_stop();
    std::optional<std::error_code> out;
    auto work = [](loop* l, int fd) -> task<std::error_code> {
        std::byte buf[8];
        auto reading = l->recv(fd, buf);
        co_return outcome(co_await std::move(reading));
    };
    ev().spawn(keep(work(&ev(), b.get()), &out), source.get_token());
    auto main = [&]() -> task<void> {
        auto done = testing::wait_until([&] { return out.has_value(); }, 2s);
        co_await std::move(done);
    };
    ev().block_on(main());
    EXPECT_EQ(out, canceled);
}

TEST_P(CancelKinds, DeadlinesTimeOutEachKind) {
    auto [a, b] = testing::stream_pair();
    auto [c, d] = testing::stream_pair();
    fill(d.get());
    std::vector<std::byte> data(1 << 20);
    auto all = [](loop* l,
                  int rfd,
                  int wfd,
                  std::span<const std::byte> out) -> task<std::vector<std::error_code>> {
        std::vector<std::error_code> got;
        std::byte buf[8];
        auto reading = l->recv(rfd, buf).with_timeout(20ms);
        got.push_back(outcome(co_await std::move(reading)));
        auto writing = l->send(wfd, out).with_timeout(20ms);
        got.push_back(outcome(co_await std::move(writing)));
        auto polling = l->fd_readable(rfd).with_timeout(20ms);
        got.push_back(outcome(co_await std::move(polling)));
        auto deadline = l->recv(rfd, buf).with_deadline(clock::now() + 20ms);
        got.push_back(outcome(co_await std::move(deadline)));
        co_return got;
    };
    auto got = ev().block_on(all(&ev(), b.get(), d.get(), data));
    ASSERT_EQ(got.size(), 4u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i], timed_out) << "operation " << i << ": " << got[i].message();
    }
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         CancelKinds,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
