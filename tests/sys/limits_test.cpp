#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

namespace aioloop::sys {
namespace {

std::uint64_t read_number(const char* path) {
    std::ifstream in(path);
    std::uint64_t value = 0;
    in >> value;
    return value;
}

TEST(Limits, ReadsTheSysctls) {
    auto limits = read_aio_limits();
    ASSERT_TRUE(limits) << limits.error().message();
    EXPECT_EQ(limits->max_nr, read_number("/proc/sys/fs/aio-max-nr"));
    EXPECT_GT(limits->max_nr, 0u);
    EXPECT_EQ(limits->room(), limits->nr >= limits->max_nr ? 0 : limits->max_nr - limits->nr);
}

TEST(Limits, RoomIsNeverNegative) {
    EXPECT_EQ((aio_limits{10, 4}.room()), 6u);
    EXPECT_EQ((aio_limits{10, 10}.room()), 0u);
    EXPECT_EQ((aio_limits{10, 12}.room()), 0u); // fs.aio-max-nr lowered below what is in use
}

// A live context is charged against fs.aio-nr by the nr_events it asked for.
TEST(Limits, AContextIsChargedItsNrEvents) {
    constexpr unsigned big = 4096;
    auto before = read_aio_limits();
    ASSERT_TRUE(before);
    if (before->room() < big) {
        GTEST_SKIP() << "no room for " << big << " under fs.aio-max-nr";
    }
    auto ctx = aio_context::create(big);
    ASSERT_TRUE(ctx) << setup_error_message(big, ctx.error());
    auto during = read_aio_limits();
    ASSERT_TRUE(during);
    // Other processes create and destroy contexts meanwhile, so only a lower bound holds, and
    // only while none of theirs went away.
    if (during->nr < before->nr) {
        GTEST_SKIP() << "fs.aio-nr dropped meanwhile: another process destroyed contexts";
    }
    EXPECT_GE(during->nr, big);
}

TEST(Limits, MessagesNameTheCallAndTheFix) {
    std::string eagain = setup_error_message(70000, errno_code(EAGAIN));
    EXPECT_NE(eagain.find("io_setup(70000)"), std::string::npos) << eagain;
    EXPECT_NE(eagain.find("EAGAIN"), std::string::npos) << eagain;
    EXPECT_NE(eagain.find("fs.aio-max-nr="), std::string::npos) << eagain;
    EXPECT_NE(eagain.find("fs.aio-nr="), std::string::npos) << eagain;
    EXPECT_NE(eagain.find("sysctl -w fs.aio-max-nr="), std::string::npos) << eagain;

    std::string enosys = setup_error_message(8, errno_code(ENOSYS));
    EXPECT_NE(enosys.find("io_setup(8): ENOSYS"), std::string::npos) << enosys;
    std::string eperm = setup_error_message(8, errno_code(EPERM));
    EXPECT_NE(eperm.find("io_setup(8): EPERM"), std::string::npos) << eperm;
    std::string einval = setup_error_message(8, errno_code(EINVAL));
    EXPECT_NE(einval.find("io_setup(8): EINVAL"), std::string::npos) << einval;
}

TEST(Limits, NotUnderValgrindHere) {
    // The test binary runs natively unless someone runs it under valgrind on purpose.
    if (running_under_valgrind()) {
        GTEST_SKIP() << "running under valgrind";
    }
    auto ctx = aio_context::create(4);
    ASSERT_TRUE(ctx);
    EXPECT_TRUE(ctx->ring_in_use()) << ctx->ring_unusable_reason();
}

} // namespace
} // namespace aioloop::sys
