#pragma once

// Shared by the probe's files (probe.cpp, probe_file.cpp, probe_uring.cpp). Private to src/sys/.

#include <string>
#include <utility>

#include <aioloop/sys/aio.hpp>
#include <aioloop/sys/probe.hpp>

namespace aioloop::sys::detail {

/// "EPERM" for EPERM: what the user greps for.
std::string errno_name(int err);
/// A true flag, with an optional note.
probe_flag yes(std::string note);
/// A false flag with its reason; `err` 0 when no errno stands behind it.
probe_flag no(int err, std::string reason);

/// One AIO PREAD of `len` bytes at offset 0 with RWF_NOWAIT, submitted and reaped: the
/// completion's res, or the error; `submit_error` says whether io_submit or the reap failed.
result<std::int64_t>
nowait_pread(aio_context& ctx, int fd, void* buf, std::size_t len, bool& submit_error);
/// "res=4096", "res=-EAGAIN".
std::string res_text(std::int64_t res);

/// Fills in rwf_nowait_file, dio, dio_mem_align and dio_offset_align; `ctx` null without AIO.
void probe_file(aio_context* ctx, const probe_options& options, probe_report& report);

/// Fills in io_uring, uring_defer_taskrun and io_uring_disabled.
void probe_uring(probe_report& report);

/// Closes its fd on destruction.
class fd_guard {
public:
    explicit fd_guard(int fd) noexcept
        : fd_(fd) {}
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard();
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

} // namespace aioloop::sys::detail
