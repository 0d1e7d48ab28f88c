#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"

namespace aioloop {
namespace {

using namespace std::chrono_literals;

class Cancellation : public testing::loop_test {};

TEST_P(Cancellation, StoppingManyPendingReadsCancelsEachOnce) {
    constexpr int readers = 20;
    std::vector<std::pair<testing::scoped_fd, testing::scoped_fd>> pairs;
    for (int i = 0; i < readers; ++i) {
        pairs.push_back(testing::stream_pair());
    }
    std::stop_source stop;
    int canceled = 0;
    auto reader = [&](int fd) -> task<void> {
        std::byte buf[16];
        auto n = co_await ev().recv(fd, buf);
        if (!n && n.error() == std::errc::operation_canceled) {
            ++canceled;
        }
    };
    for (auto& [a, b] : pairs) {
        ev().spawn(reader(b.get()), stop.get_token());
    }
    auto stopper = [&]() -> task<void> {
        co_await ev().sleep_for(20ms);
        stop.request_stop();
        for (int i = 0; i < 100 && canceled < readers; ++i) {
            co_await ev().sleep_for(5ms);
        }
        ev().stop();
    };
    ev().spawn(stopper());
    ev().run();
    EXPECT_EQ(canceled, readers);
    EXPECT_EQ(ev().live_tasks(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         Cancellation,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop
