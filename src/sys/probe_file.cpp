// The file half of the kernel probe: RWF_NOWAIT on a buffered file and O_DIRECT with its
// alignment (statx STATX_DIOALIGN, 6.1+), on a temporary file in the directory asked for.

#include <array>
#include <cstdlib>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/sys/aio.hpp>
#include <aioloop/sys/probe.hpp>

#include "sys/probe_detail.hpp"

// glibc 2.36 (Debian 12) predates STATX_DIOALIGN (6.1); <linux/stat.h> from newer kernel headers
// has it, and struct statx then has the stx_dio_* fields too.
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

namespace aioloop::sys::detail {

// A temporary file in the probe directory for RWF_NOWAIT and O_DIRECT, removed on return.
void probe_file(aio_context* ctx, const probe_options& options, probe_report& report) {
    std::string path = options.directory + "/.aioloop-probe-XXXXXX";
    fd_guard file(::mkostemp(path.data(), O_CLOEXEC));
    if (file.get() < 0) {
        int err = errno;
        std::string why = fmt::format("mkstemp in {}: {}", options.directory, errno_name(err));
        report.rwf_nowait_file = no(err, why);
        report.dio = no(err, why);
        report.dio_mem_align.reason = why;
        report.dio_offset_align.reason = why;
        return;
    }
    struct unlinker {
        const std::string& path;
        ~unlinker() { ::unlink(path.c_str()); }
    } remove_file{path};

    std::array<char, 4096> page;
    page.fill('a');
    if (::pwrite(file.get(), page.data(), page.size(), 0) != static_cast<ssize_t>(page.size())) {
        int err = errno;
        report.rwf_nowait_file = no(err, fmt::format("pwrite({}): {}", path, errno_name(err)));
    } else if (ctx == nullptr) {
        report.rwf_nowait_file = no(0, "not tried: AIO unavailable");
    } else {
        // The page was just written, so it is cached: expect the whole read; -EAGAIN would still
        // mean the flag is honoured. EOPNOTSUPP at submit: the filesystem lacks FMODE_NOWAIT.
        bool submit_error = false;
        auto res = nowait_pread(*ctx, file.get(), page.data(), page.size(), submit_error);
        if (!res) {
            int err = res.error().value();
            report.rwf_nowait_file_answer =
                fmt::format("{}: {}", submit_error ? "io_submit" : "reap", errno_name(err));
            report.rwf_nowait_file =
                no(err,
                   fmt::format("{}(PREAD, RWF_NOWAIT) on a file in {}: {}{}",
                               submit_error ? "io_submit" : "reaping",
                               options.directory,
                               errno_name(err),
                               err == EOPNOTSUPP ? ": the filesystem refuses RWF_NOWAIT" : ""));
        } else {
            report.rwf_nowait_file_answer = "cached page: " + res_text(*res);
            if (*res >= 0 || *res == -EAGAIN) {
                report.rwf_nowait_file = yes({});
            } else {
                report.rwf_nowait_file =
                    no(static_cast<int>(-*res),
                       "PREAD with RWF_NOWAIT on a file answered " + res_text(*res));
            }
        }
    }

    fd_guard direct(::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    if (direct.get() < 0) {
        int err = errno;
        report.dio = no(err,
                        fmt::format("open(O_DIRECT) in {}: {}{}",
                                    options.directory,
                                    errno_name(err),
                                    err == EINVAL ? ": the filesystem refuses O_DIRECT (as tmpfs "
                                                    "did on older kernels)"
                                                  : ""));
    } else {
        report.dio = yes({});
    }

    struct statx stx {};
    if (::statx(file.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0) {
        int err = errno;
        report.dio_mem_align.reason = fmt::format("statx: {}", errno_name(err));
    } else if ((stx.stx_mask & STATX_DIOALIGN) == 0) {
        report.dio_mem_align.reason = "statx didn't report STATX_DIOALIGN (kernel before 6.1, or "
                                      "the filesystem doesn't say)";
    } else if (stx.stx_dio_mem_align == 0) {
        report.dio_mem_align.reason = "statx STATX_DIOALIGN: the filesystem has no direct I/O "
                                      "for this file";
    } else {
        report.dio_mem_align.value = stx.stx_dio_mem_align;
        report.dio_offset_align.value = stx.stx_dio_offset_align;
    }
    if (!report.dio_mem_align.value) {
        report.dio_offset_align.reason = report.dio_mem_align.reason;
    }
}

} // namespace aioloop::sys::detail
