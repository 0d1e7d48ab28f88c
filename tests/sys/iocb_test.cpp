#include <cstring>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>

#include "support/sockets.hpp"
#include "sys/aio_test_support.hpp"

// What each prepared command does on the real kernel: POLL on sockets, the file commands, and
// the per-iocb flags (RWF_NOWAIT, IOCB_FLAG_RESFD).

namespace aioloop::sys {
namespace {

using aioloop::testing::scoped_fd;
using aioloop::testing::stream_pair;
using aioloop::testing::temp_path;
using aioloop::testing::write_all;
using testing::reap_n;
using testing::reap_now;

aio_context make_context(unsigned nr_events = 64) {
    auto ctx = aio_context::create(nr_events);
    if (!ctx) {
        ADD_FAILURE() << setup_error_message(nr_events, ctx.error());
        std::abort();
    }
    return std::move(*ctx);
}

void submit_one(aio_context& ctx, iocb& cb) {
    iocb* batch[] = {&cb};
    auto n = ctx.submit_once(batch);
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, 1u);
}

// A temporary file, removed on destruction.
class temp_file {
public:
    temp_file()
        : path_(temp_path("iocb"))
        , fd_(::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) {}
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() { ::unlink(path_.c_str()); }
    int fd() const noexcept { return fd_.get(); }

private:
    std::string path_;
    scoped_fd fd_;
};

TEST(Iocb, PrepFillsTheFieldsTheKernelReads) {
    char buf[8];
    iocb cb;
    std::memset(&cb, 0xff, sizeof(cb)); // prep must reset everything
    prep_pread(cb, 5, buf, sizeof(buf), 42, 0x1234);
    EXPECT_EQ(cb.aio_lio_opcode, IOCB_CMD_PREAD);
    EXPECT_EQ(cb.aio_fildes, 5u);
    EXPECT_EQ(cb.aio_buf, reinterpret_cast<std::uintptr_t>(buf));
    EXPECT_EQ(cb.aio_nbytes, sizeof(buf));
    EXPECT_EQ(cb.aio_offset, 42);
    EXPECT_EQ(cb.aio_data, 0x1234u);
    EXPECT_EQ(cb.aio_flags, 0u);
    EXPECT_EQ(cb.aio_rw_flags, 0);
    EXPECT_EQ(cb.aio_reqprio, 0);

    // fs/aio.c aio_poll: the mask goes in aio_buf; offset, nbytes and rw_flags must be 0.
    std::memset(&cb, 0xff, sizeof(cb));
    prep_poll(cb, 3, POLLIN | POLLOUT, 9);
    EXPECT_EQ(cb.aio_lio_opcode, IOCB_CMD_POLL);
    EXPECT_EQ(cb.aio_buf, static_cast<std::uint64_t>(POLLIN | POLLOUT));
    EXPECT_EQ(cb.aio_offset, 0);
    EXPECT_EQ(cb.aio_nbytes, 0u);
    EXPECT_EQ(cb.aio_rw_flags, 0);

    set_rw_flags(cb, RWF_NOWAIT);
    EXPECT_EQ(cb.aio_rw_flags, RWF_NOWAIT);
    set_resfd(cb, 11);
    EXPECT_TRUE(cb.aio_flags & IOCB_FLAG_RESFD);
    EXPECT_EQ(cb.aio_resfd, 11u);
}

// IOCB_CMD_POLL is one-shot: it completes once with the ready mask, and later data produces no
// second event until it is submitted again.
TEST(Iocb, PollIsOneShotAndReportsRevents) {
    auto [a, b] = stream_pair();
    auto ctx = make_context();
    iocb cb{};
    prep_poll(cb, a.get(), POLLIN, 77);
    submit_one(ctx, cb);
    EXPECT_EQ(ctx.ring_ready(), 0u) << "POLL on an empty socket completed at once";
    EXPECT_TRUE(reap_now(ctx).empty());

    write_all(b.get(), "1");
    auto events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 77u);
    EXPECT_EQ(events[0].obj, reinterpret_cast<std::uintptr_t>(&cb));
    // res is the wake-up key (fs/aio.c aio_poll_wake), which may hold more than was asked for.
    EXPECT_TRUE(events[0].res & POLLIN) << events[0].res;
    EXPECT_FALSE(events[0].res & (POLLERR | POLLHUP | POLLNVAL)) << events[0].res;

    // More data: no second event. The wait is only there to give a wrong second event the
    // chance to show up; the test can't pass or fail by timing.
    write_all(b.get(), "2");
    timespec wait = testing::to_timespec(std::chrono::milliseconds(100));
    io_event extra[1];
    auto got = ctx.reap(extra, 1, &wait);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, 0u) << "a fired POLL produced a second event";

    // Re-armed, it completes again (at once: the socket is readable).
    prep_poll(cb, a.get(), POLLIN, 78);
    submit_one(ctx, cb);
    events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 78u);
    EXPECT_TRUE(events[0].res & POLLIN);
}

// On a socket that is already readable, POLL completes inside io_submit, and its res is the
// requested bits of the socket's mask (fs/aio.c aio_poll: vfs_poll() & events).
TEST(Iocb, PollCompletesAtOnceWhenAlreadyReady) {
    auto [a, b] = stream_pair();
    auto ctx = make_context();
    write_all(b.get(), "ready");
    pollfd p{a.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1);

    iocb in{};
    iocb out{};
    prep_poll(in, a.get(), POLLIN, 1);
    prep_poll(out, b.get(), POLLOUT, 2);
    iocb* batch[] = {&in, &out};
    ASSERT_EQ(ctx.submit(batch), 2u);
    EXPECT_EQ(ctx.ring_ready(), 2u) << "a POLL on a ready socket did not complete inside io_submit";
    auto events = reap_now(ctx);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, 1u);
    EXPECT_EQ(events[0].res, POLLIN);
    EXPECT_EQ(events[1].data, 2u);
    EXPECT_EQ(events[1].res, POLLOUT);
    EXPECT_EQ(ctx.counters().getevents_calls, 0u);
}

// POLLHUP and POLLERR are always reported, even when not asked for.
TEST(Iocb, PollReportsHangupWithoutAsking) {
    auto [a, b] = stream_pair();
    auto ctx = make_context();
    iocb cb{};
    prep_poll(cb, a.get(), POLLPRI, 5);
    submit_one(ctx, cb);
    b.reset();
    auto events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(events[0].res & POLLHUP) << events[0].res;
}

TEST(Iocb, VectoredReadWriteAndSyncOnAFile) {
    temp_file file;
    ASSERT_GE(file.fd(), 0) << std::strerror(errno);
    auto ctx = make_context();

    std::string head = "hello, ";
    std::string tail = "vectored world";
    iovec out[] = {{head.data(), head.size()}, {tail.data(), tail.size()}};
    iocb wr{};
    prep_pwritev(wr, file.fd(), out, 100, 1);
    submit_one(ctx, wr);
    auto events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].res, static_cast<std::int64_t>(head.size() + tail.size()));

    // FSYNC and FDSYNC run in a kernel worker (fs/aio.c aio_fsync_work): reap with a wait.
    iocb sync{};
    iocb dsync{};
    prep_fsync(sync, file.fd(), 2);
    prep_fdsync(dsync, file.fd(), 3);
    iocb* syncs[] = {&sync, &dsync};
    ASSERT_EQ(ctx.submit(syncs), 2u);
    EXPECT_EQ(ctx.counters().iocbs_failed, 0u);
    events = reap_n(ctx, 2);
    ASSERT_EQ(events.size(), 2u);
    for (const io_event& e : events) {
        EXPECT_TRUE(e.data == 2 || e.data == 3) << e.data;
        EXPECT_EQ(e.res, 0) << "sync iocb " << e.data;
    }

    char first[7] = {};
    char second[32] = {};
    iovec in[] = {{first, sizeof(first)}, {second, sizeof(second)}};
    iocb rd{};
    prep_preadv(rd, file.fd(), in, 100, 4);
    submit_one(ctx, rd);
    events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].res, static_cast<std::int64_t>(head.size() + tail.size()));
    EXPECT_EQ(std::string(first, sizeof(first)), head);
    EXPECT_EQ(std::string(second, tail.size()), tail);

    // Before the data: the hole reads as zeros.
    char hole[4] = {1, 1, 1, 1};
    prep_pread(rd, file.fd(), hole, sizeof(hole), 0, 5);
    submit_one(ctx, rd);
    events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].res, 4);
    EXPECT_EQ(std::string(hole, 4), std::string(4, '\0'));
}

// RWF_NOWAIT on a buffered read of data in the page cache completes with the data; a file
// system without FMODE_NOWAIT refuses it at io_submit with EOPNOTSUPP (fs/read_write.c
// kiocb_set_rw_flags), which submit() fails back.
TEST(Iocb, NowaitReadOfCachedFileData) {
    temp_file file;
    ASSERT_GE(file.fd(), 0) << std::strerror(errno);
    const std::string data = "cached bytes";
    ASSERT_EQ(::pwrite(file.fd(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    auto ctx = make_context();

    char buf[32] = {};
    iocb rd{};
    prep_pread(rd, file.fd(), buf, sizeof(buf), 0, 9);
    set_rw_flags(rd, RWF_NOWAIT);
    iocb* batch[] = {&rd};
    ASSERT_EQ(ctx.submit(batch), 1u);
    auto events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 9u);
    if (events[0].res == -EOPNOTSUPP) {
        EXPECT_EQ(ctx.counters().iocbs_failed, 1u);
        GTEST_SKIP() << "this file system refuses RWF_NOWAIT (EOPNOTSUPP)";
    }
    EXPECT_EQ(events[0].res, static_cast<std::int64_t>(data.size()));
    EXPECT_EQ(std::string(buf, data.size()), data);

    // An unknown RWF_ flag is refused at io_submit, and submit() fails it back.
    prep_pread(rd, file.fd(), buf, sizeof(buf), 0, 10);
    set_rw_flags(rd, 0x40000000);
    ASSERT_EQ(ctx.submit(batch), 1u);
    events = reap_now(ctx);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].res, -EOPNOTSUPP);
}

// IOCB_FLAG_RESFD: the kernel adds 1 to an eventfd for each completion of such an iocb, which
// lets an epoll or poll loop wait for AIO completions.
TEST(Iocb, ResfdSignalsAnEventfdOnCompletion) {
    scoped_fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    ASSERT_GE(efd.get(), 0);
    auto [a, b] = stream_pair();
    auto ctx = make_context();

    iocb cb{};
    prep_poll(cb, a.get(), POLLIN, 1);
    set_resfd(cb, efd.get());
    submit_one(ctx, cb);
    std::uint64_t count = 0;
    EXPECT_EQ(::read(efd.get(), &count, sizeof(count)), -1) << "signalled before completion";
    EXPECT_EQ(errno, EAGAIN);

    write_all(b.get(), "x");
    pollfd p{efd.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1) << "the eventfd was not signalled";
    ASSERT_EQ(::read(efd.get(), &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
    EXPECT_EQ(count, 1u);
    auto events = reap_n(ctx, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, 1u);

    // Two synchronous completions in one io_submit add 2.
    char buf[8];
    iocb reads[2];
    prep_pread(reads[0], a.get(), buf, sizeof(buf), 0, 2);
    prep_pread(reads[1], a.get(), buf, sizeof(buf), 0, 3);
    set_resfd(reads[0], efd.get());
    set_resfd(reads[1], efd.get());
    iocb* batch[] = {&reads[0], &reads[1]};
    ASSERT_EQ(ctx.submit(batch), 2u);
    ASSERT_EQ(::read(efd.get(), &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
    EXPECT_EQ(count, 2u);
    events = reap_now(ctx);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].res, 1);
    EXPECT_EQ(events[1].res, -EAGAIN);
}

} // namespace
} // namespace aioloop::sys
