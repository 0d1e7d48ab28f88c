// Writes larger than the socket buffers: one write() of 8 MiB to a peer that reads slowly must
// complete with every byte, in order; and peers that reset mid-transfer give the server an
// error on that connection only (ECONNRESET or EPIPE, never a signal or a crash).

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/net/tcp_listener.hpp>

#include "support/echo_clients.hpp"
#include "support/loop_echo.hpp"
#include "support/loop_fixture.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> pattern(std::size_t connection, std::size_t size) {
    std::vector<std::byte> out(size);
    for (std::size_t i = 0; i < size; ++i) {
        out[i] = testing::pattern_byte(connection, 0, i);
    }
    return out;
}

void set_blocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

class Backpressure : public testing::loop_test {};

TEST_P(Backpressure, EightMegabytesInOneWriteToASlowReader) {
    constexpr std::size_t size = 8 << 20;
    auto [server_fd, peer] = testing::tcp_pair();
    // Small buffers on both sides: the write must go out in many partial pieces.
    int small = 16 * 1024;
    ::setsockopt(server_fd.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    ::setsockopt(peer.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    set_blocking(peer.get());
    std::vector<std::byte> data = pattern(7, size);

    std::string reader_error;
    std::size_t read_total = 0;
    std::thread reader([&, fd = peer.get()] {
        std::vector<std::byte> buf(32 * 1024);
        while (read_total < size) {
            // Slow: a pause every 32 KiB keeps the server's socket full most of the time.
            std::this_thread::sleep_for(200us);
            ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
            if (n <= 0) {
                reader_error = n == 0 ? "end of stream" : std::strerror(errno);
                return;
            }
            for (ssize_t i = 0; i < n; ++i) {
                if (buf[static_cast<std::size_t>(i)] !=
                    data[read_total + static_cast<std::size_t>(i)]) {
                    reader_error =
                        "byte " + std::to_string(read_total + static_cast<std::size_t>(i));
                    return;
                }
            }
            read_total += static_cast<std::size_t>(n);
        }
    });
    net::tcp_stream stream(ev(), server_fd.release());
    auto write_all = [&]() -> task<result<std::size_t>> {
        auto writing = stream.write(data);
        co_return co_await std::move(writing);
    };
    auto written = ev().block_on(write_all());
    reader.join();
    ASSERT_TRUE(written) << written.error().message();
    EXPECT_EQ(*written, size);
    EXPECT_EQ(read_total, size);
    EXPECT_EQ(reader_error, "");
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

// Eight peers each get 4 MiB; three of them read a little and then reset the connection.
TEST_P(Backpressure, PeersThatResetMidTransferFailOnlyTheirConnection) {
    constexpr std::size_t size = 4 << 20;
    constexpr int peers = 8;
    auto is_bad = [](int i) { return i % 3 == 1; };
    auto listener = net::tcp_listener::bind(ev(), *net::address::parse("127.0.0.1:0"));
    ASSERT_TRUE(listener) << listener.error().message();
    auto at = listener->local_address();

    std::array<std::string, peers> peer_errors;
    std::vector<std::thread> threads;
    for (int i = 0; i < peers; ++i) {
        threads.emplace_back([&, i] {
            try {
                // Small buffers on the bad peers' side, so that 4 MiB can't all fit in flight
                // before they reset.
                testing::scoped_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                int small = 16 * 1024;
                ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
                if (::connect(fd.get(), at.data(), at.size()) != 0) {
                    peer_errors[i] = std::string("connect: ") + std::strerror(errno);
                    return;
                }
                auto id = static_cast<std::byte>(i);
                ::send(fd.get(), &id, 1, MSG_NOSIGNAL);
                std::vector<std::byte> buf(64 * 1024);
                std::size_t got = 0;
                std::size_t stop_at = is_bad(i) ? 100 * 1024 : size;
                while (got < stop_at) {
                    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
                    if (n <= 0) {
                        peer_errors[i] = "short read at " + std::to_string(got);
                        return;
                    }
                    for (ssize_t k = 0; k < n; ++k) {
                        auto at_byte = got + static_cast<std::size_t>(k);
                        if (buf[static_cast<std::size_t>(k)] !=
                            testing::pattern_byte(i, 0, at_byte)) {
                            peer_errors[i] = "byte " + std::to_string(at_byte);
                            return;
                        }
                    }
                    got += static_cast<std::size_t>(n);
                }
                if (is_bad(i)) {
                    linger hard{1, 0};
                    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
                }
            } catch (const std::exception& e) {
                peer_errors[i] = e.what();
            }
        });
    }

    std::array<std::error_code, peers> write_results;
    std::array<bool, peers> served{};
    std::array<bool, peers> second_write_failed{};
    std::vector<std::vector<std::byte>> payloads;
    for (int i = 0; i < peers; ++i) {
        payloads.push_back(pattern(static_cast<std::size_t>(i), size));
    }
    int finished = 0;
    auto serve = [&](net::tcp_stream s) -> task<void> {
        std::byte id{};
        auto first = s.read(std::span(&id, 1));
        auto n = co_await std::move(first);
        if (!n || *n != 1) {
            ++finished;
            co_return;
        }
        auto i = static_cast<std::size_t>(id);
        int small = 32 * 1024;
        ::setsockopt(s.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        auto writing = s.write(payloads[i]);
        auto w = co_await std::move(writing);
        write_results[i] = w ? std::error_code{} : w.error();
        served[i] = w && *w == size;
        if (!w) {
            // Writing again after the error is EPIPE: for this operation, never a SIGPIPE that
            // kills the process.
            auto again = s.write(std::span(payloads[i]).first(1000));
            auto w2 = co_await std::move(again);
            second_write_failed[i] = !w2;
        }
        // Whatever the read says after a reset (an error or end of stream), it must return.
        std::byte rest[16];
        auto tail = s.read(rest);
        co_await std::move(tail);
        ++finished;
    };
    auto main = [&]() -> task<void> {
        for (int i = 0; i < peers; ++i) {
            auto accepting = listener->accept();
            auto s = co_await std::move(accepting);
            if (s) {
                ev().spawn(serve(std::move(*s)));
            }
        }
        auto all = testing::wait_until([&] { return finished == peers; }, 15s);
        co_await std::move(all);
    };
    ev().block_on(main());
    for (auto& t : threads) {
        t.join();
    }
    ASSERT_EQ(finished, peers);
    for (int i = 0; i < peers; ++i) {
        EXPECT_EQ(peer_errors[i], "") << "peer " << i;
        if (is_bad(i)) {
            EXPECT_FALSE(served[i]) << "peer " << i;
            EXPECT_TRUE(second_write_failed[i]) << "peer " << i;
            EXPECT_TRUE(write_results[i] == std::errc::connection_reset ||
                        write_results[i] == std::errc::broken_pipe)
                << "peer " << i << ": " << write_results[i].message();
        } else {
            EXPECT_TRUE(served[i]) << "peer " << i << ": " << write_results[i].message();
        }
    }
    EXPECT_EQ(ev().stats().stale_completions, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         Backpressure,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
