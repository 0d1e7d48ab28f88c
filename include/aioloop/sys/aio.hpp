#pragma once

// The only interface to the Linux AIO system calls (io_setup, io_destroy, io_submit, io_getevents,
// io_pgetevents, io_cancel). Glibc has no wrappers for them, and libaio hides the completion ring,
// so everything below goes through syscall(2) with <linux/aio_abi.h>.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/uio.h>
#include <time.h>

#include <aioloop/result.hpp>

namespace aioloop::sys {

/// io_submit batch sizes are grouped into power-of-two buckets: bucket k counts batches of
/// [2^k, 2^(k+1)) iocbs; the last bucket takes everything larger.
inline constexpr std::size_t batch_histogram_buckets = 16;

/// What one AIO context did since it was created.
struct aio_counters {
    std::uint64_t submit_calls = 0;        ///< io_submit system calls
    std::uint64_t iocbs_submitted = 0;     ///< iocbs the kernel accepted
    std::uint64_t iocbs_failed = 0;        ///< iocbs refused by io_submit, failed back to the owner
    std::uint64_t getevents_calls = 0;     ///< io_getevents / io_pgetevents system calls
    std::uint64_t events_from_ring = 0;    ///< completions read from the ring in user space
    std::uint64_t events_from_syscall = 0; ///< completions returned by io_getevents
    std::uint64_t eagain_results = 0;      ///< completions whose res was -EAGAIN
    std::uint64_t cancel_calls = 0;        ///< io_cancel system calls
    std::array<std::uint64_t, batch_histogram_buckets> batch_sizes{}; ///< iocbs per io_submit

    /// The bucket of batch_sizes that a batch of `n` iocbs (n >= 1) falls into.
    static std::size_t bucket_of(std::size_t n) noexcept;
    /// Adds `other` to these counters.
    aio_counters& operator+=(const aio_counters& other) noexcept;
};

/// Human-readable counters, one `name value` pair per line.
std::string format_counters(const aio_counters& counters);

// --- iocb preparation --------------------------------------------------------------------------
// Each prep_* resets the iocb and fills in one command. `data` comes back untouched as
// io_event::data: the owner's cookie.

void prep_pread(
    iocb& cb, int fd, void* buf, std::size_t len, std::int64_t offset, std::uint64_t data) noexcept;
void prep_pwrite(iocb& cb,
                 int fd,
                 const void* buf,
                 std::size_t len,
                 std::int64_t offset,
                 std::uint64_t data) noexcept;
void prep_preadv(
    iocb& cb, int fd, std::span<const iovec> iov, std::int64_t offset, std::uint64_t data) noexcept;
void prep_pwritev(
    iocb& cb, int fd, std::span<const iovec> iov, std::int64_t offset, std::uint64_t data) noexcept;
void prep_fsync(iocb& cb, int fd, std::uint64_t data) noexcept;
void prep_fdsync(iocb& cb, int fd, std::uint64_t data) noexcept;
/// IOCB_CMD_POLL (4.18+): one-shot; completes with the ready revents mask as res.
/// `events` is 16 bits wide: EPOLLET, EPOLLONESHOT and EPOLLEXCLUSIVE don't fit.
void prep_poll(iocb& cb, int fd, std::uint16_t events, std::uint64_t data) noexcept;
/// Sets aio_rw_flags (RWF_NOWAIT, RWF_HIPRI, ...) on a read or write iocb.
void set_rw_flags(iocb& cb, int rwf_flags) noexcept;
/// Asks the kernel to signal `event_fd` (an eventfd) when this iocb completes.
void set_resfd(iocb& cb, int event_fd) noexcept;

/// How an aio_context reads completions.
struct aio_options {
    /// Read completions from the ring mapped into the process instead of io_getevents. Turned
    /// off automatically under valgrind, whose tools can't see stores the kernel makes there.
    bool use_ring = true;
};

/// One kernel AIO context: created by io_setup, destroyed by io_destroy. Move-only.
class aio_context {
public:
    /// io_setup(nr_events). EAGAIN means the request doesn't fit under fs.aio-max-nr; see
    /// setup_error_message() for what to tell the user. ENOSYS/EPERM: AIO unavailable or blocked.
    static result<aio_context> create(unsigned nr_events, aio_options options = {}) noexcept;

    aio_context(aio_context&& other) noexcept;
    aio_context& operator=(aio_context&& other) noexcept;
    aio_context(const aio_context&) = delete;
    aio_context& operator=(const aio_context&) = delete;
    ~aio_context();

    /// One io_submit of `batch`, as is: how many iocbs (a prefix) the kernel queued.
    result<std::size_t> submit_once(std::span<iocb* const> batch) noexcept;

    /// Submits `batch` in order, never dropping an iocb. Returns how many iocbs are settled: queued
    /// by the kernel, or refused with an error other than EAGAIN, in which case a completion with
    /// res = -errno is delivered by the next reap() to the owner of its data cookie, exactly once.
    /// A result smaller than batch.size() means the context is full (EAGAIN): the rest are still
    /// the caller's, to submit again once completions are reaped.
    std::size_t submit(std::span<iocb* const> batch) noexcept;

    /// Copies up to events.size() completions into `events` and returns how many: first the
    /// iocbs that submit() failed back, then the ring (in user space), then io_getevents when the
    /// ring holds fewer than `min_nr` and the wait isn't zero. `timeout` null waits forever; a
    /// zero timeout never blocks. EINTR is returned as an error for the caller to retry.
    result<std::size_t>
    reap(std::span<io_event> events, std::size_t min_nr, const timespec* timeout) noexcept;

    /// One zero-timeout io_getevents system call (io_pgetevents if that is what works), whatever
    /// the ring holds: tells whether a seccomp profile lets the loop ever sleep in the kernel.
    /// Events it returns are kept and delivered by the next reap().
    result<void> check_wait_allowed() noexcept;

    /// io_cancel(cb). Success means cancellation started: the iocb still completes through the
    /// ring. EINVAL: it isn't pending (already completed, or never submitted). EAGAIN/EINPROGRESS
    /// are reported as success since the completion will come.
    result<void> cancel(iocb& cb) noexcept;

    /// Whether completions are read from the mapped ring (false: every reap is a system call).
    bool ring_in_use() const noexcept { return ring_ != nullptr; }
    /// Why the ring isn't used, or empty when it is.
    const std::string& ring_unusable_reason() const noexcept { return ring_reason_; }
    /// Completions waiting in the ring right now, without a system call (0 without a ring).
    std::size_t ring_ready() const noexcept;
    /// The nr_events given to io_setup.
    unsigned capacity() const noexcept { return nr_events_; }
    /// The raw context id (the ring's address), for the probe and tests.
    aio_context_t id() const noexcept { return ctx_; }

    const aio_counters& counters() const noexcept { return counters_; }
    void reset_counters() noexcept { counters_ = {}; }

private:
    aio_context(aio_context_t ctx, unsigned nr_events, aio_options options) noexcept;
    std::size_t reap_ring(std::span<io_event> events) noexcept;
    result<std::size_t>
    reap_syscall(std::span<io_event> events, std::size_t min_nr, const timespec* timeout) noexcept;
    void count_eagain(std::span<const io_event> events) noexcept;

    aio_context_t ctx_ = 0;
    unsigned nr_events_ = 0;
    struct aio_ring* ring_ = nullptr; // null when completions must come from io_getevents
    std::string ring_reason_;
    std::vector<io_event> failed_; // iocbs refused by io_submit, delivered by the next reap()
    aio_counters counters_;
    bool use_pgetevents_ = false; // io_getevents was refused; io_pgetevents worked
};

/// The message for a failed io_setup(nr_events): names the call, the error and, for EAGAIN, the
/// knob (fs.aio-max-nr and fs.aio-nr with their values) and the fix.
std::string setup_error_message(unsigned nr_events, std::error_code error);

/// fs.aio-max-nr and fs.aio-nr as read from /proc/sys/fs.
struct aio_limits {
    std::uint64_t max_nr = 0;
    std::uint64_t nr = 0;
    std::uint64_t room() const noexcept { return nr >= max_nr ? 0 : max_nr - nr; }
};
result<aio_limits> read_aio_limits() noexcept;

/// Whether this process runs under valgrind (its preload library is present).
bool running_under_valgrind() noexcept;

} // namespace aioloop::sys
