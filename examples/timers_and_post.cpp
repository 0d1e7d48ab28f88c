// Timers live in the loop; other threads hand it work with post(), which wakes it.

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include <aioloop/loop.hpp>

using namespace aioloop;
using namespace std::chrono_literals;

task<void> tick(int id, std::chrono::milliseconds period, int times) {
    for (int i = 1; i <= times; ++i) {
        co_await sleep_for(period);
        fmt::print("timer {}: tick {}\n", id, i);
    }
}

int main() {
    auto made = loop::create();
    if (!made) {
        fmt::print(stderr, "{}\n", made.error().message);
        return 1;
    }
    loop& ev = **made;
    ev.spawn(tick(1, 30ms, 3));
    ev.spawn(tick(2, 50ms, 2));

    // A worker thread computes something and posts the result back to the loop's thread.
    std::thread worker([&ev] {
        std::this_thread::sleep_for(120ms);
        int answer = 6 * 7;
        ev.post([answer, &ev] {
            fmt::print("posted from another thread: {}\n", answer);
            ev.stop(); // the ticks are done by now: leave run()
        });
    });
    ev.run();
    worker.join();
    return 0;
}
