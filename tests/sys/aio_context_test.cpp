#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"

#include <gtest/gtest.h>

namespace aioloop::sys {
namespace {

TEST(AioContext, CreatesAndUsesTheRing) {
    auto ctx = aio_context::create(64);
    ASSERT_TRUE(ctx) << setup_error_message(64, ctx.error());
    EXPECT_TRUE(ctx->ring_in_use()) << ctx->ring_unusable_reason();
    EXPECT_EQ(ctx->capacity(), 64u);
}

} // namespace
} // namespace aioloop::sys
