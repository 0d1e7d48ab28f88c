#pragma once

// Helpers shared by the sys tests: bounded reaping and a CPU pin. Header only, so that the
// tests/sys/*_test.cpp glob stays the only source list.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include <sched.h>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

namespace aioloop::sys::testing {

inline timespec to_timespec(std::chrono::nanoseconds d) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
    return timespec{static_cast<time_t>(secs.count()), static_cast<long>((d - secs).count())};
}

inline constexpr timespec zero_wait{0, 0};

/// Reaps until `n` completions arrived or `limit` passed (the limit only bounds the test; the
/// caller asserts on the count). EINTR is retried; another error fails the test.
inline std::vector<io_event>
reap_n(aio_context& ctx, std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(3)) {
    std::vector<io_event> out;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (out.size() < n) {
        auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds::zero()) {
            break;
        }
        timespec wait = to_timespec(left);
        std::vector<io_event> events(n - out.size());
        auto got = ctx.reap(events, events.size(), &wait);
        if (!got) {
            if (got.error().value() == EINTR) {
                continue;
            }
            ADD_FAILURE() << "reap: " << got.error().message();
            break;
        }
        out.insert(out.end(), events.begin(), events.begin() + static_cast<std::ptrdiff_t>(*got));
    }
    return out;
}

/// Whatever is ready now, without waiting.
inline std::vector<io_event> reap_now(aio_context& ctx, std::size_t max = 256) {
    std::vector<io_event> events(max);
    auto got = ctx.reap(events, 0, &zero_wait);
    EXPECT_TRUE(got) << got.error().message();
    events.resize(got ? *got : 0);
    return events;
}

/// Pins the calling thread to the CPU it runs on, and restores its affinity on destruction. The
/// kernel hands out a context's slots through per-CPU counters (fs/aio.c, reqs_available): on
/// one CPU the number of slots io_submit finds is deterministic.
class cpu_pin {
public:
    cpu_pin() {
        CPU_ZERO(&old_);
        if (::sched_getaffinity(0, sizeof(old_), &old_) != 0) {
            return;
        }
        int cpu = ::sched_getcpu();
        if (cpu < 0) {
            return;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pinned_ = ::sched_setaffinity(0, sizeof(one), &one) == 0;
    }
    cpu_pin(const cpu_pin&) = delete;
    cpu_pin& operator=(const cpu_pin&) = delete;
    ~cpu_pin() {
        if (pinned_) {
            ::sched_setaffinity(0, sizeof(old_), &old_);
        }
    }
    bool pinned() const noexcept { return pinned_; }

private:
    cpu_set_t old_;
    bool pinned_ = false;
};

/// The (data, res) pairs of `events`, sorted: for comparing completions regardless of order.
inline std::vector<std::pair<std::uint64_t, std::int64_t>>
data_and_res(const std::vector<io_event>& events) {
    std::vector<std::pair<std::uint64_t, std::int64_t>> out;
    out.reserve(events.size());
    for (const io_event& e : events) {
        out.emplace_back(e.data, e.res);
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace aioloop::sys::testing
