// The buffer pool reuses what a steady load needs and gives a passed burst back.

#include <cstddef>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include <aioloop/buffer_pool.hpp>

namespace {

using aioloop::buffer_pool;

std::vector<buffer_pool::buffer> lend(buffer_pool& pool, std::size_t n) {
    std::vector<buffer_pool::buffer> out;
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(pool.acquire());
    }
    return out;
}

TEST(BufferPool, ASteadyLoadReusesTheSameBuffers) {
    buffer_pool pool(4096, 4, 1000);
    std::set<std::byte*> first;
    {
        auto lent = lend(pool, 40);
        for (auto& b : lent) {
            first.insert(b.data());
        }
        EXPECT_EQ(pool.lent(), 40u);
    }
    EXPECT_EQ(pool.lent(), 0u);
    EXPECT_EQ(pool.idle(), 40u); // more than `keep`: 40 were lent at once
    for (int round = 0; round < 100; ++round) {
        auto lent = lend(pool, 40);
        for (auto& b : lent) {
            ASSERT_TRUE(first.count(b.data())) << "round " << round << ": a fresh allocation";
        }
    }
    EXPECT_EQ(pool.idle(), 40u);
}

TEST(BufferPool, ABurstThatPassedIsGivenBack) {
    buffer_pool pool(4096, 4, 100);
    lend(pool, 64); // the burst; all back at once
    EXPECT_EQ(pool.idle(), 64u);
    // Two windows of one buffer at a time: the burst's peak stops counting.
    for (int i = 0; i < 200; ++i) {
        auto b = pool.acquire();
        EXPECT_EQ(b.size(), 4096u);
    }
    EXPECT_EQ(pool.idle(), 4u);
    EXPECT_EQ(pool.lent(), 0u);
}

TEST(BufferPool, KeepsAtLeastKeepAndNeverMoreThanWereLent) {
    buffer_pool pool(512, 8, 50);
    lend(pool, 3);
    EXPECT_EQ(pool.idle(), 3u); // only what existed
    for (int i = 0; i < 500; ++i) {
        lend(pool, 2);
    }
    EXPECT_EQ(pool.idle(), 3u); // the 3 are within `keep` and stay
}

TEST(BufferPool, ABufferReleasedEarlyReturnsToThePool) {
    buffer_pool pool(1024);
    auto b = pool.acquire();
    EXPECT_EQ(pool.lent(), 1u);
    b.release();
    EXPECT_EQ(pool.lent(), 0u);
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(pool.idle(), 1u);
}

} // namespace
