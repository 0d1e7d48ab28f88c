#pragma once

// What this kernel (and the sandbox around this process) lets an event loop use: Linux AIO, its
// IOCB_CMD_POLL and completion ring, RWF_NOWAIT, O_DIRECT alignment, io_uring. Every answer comes
// from a real system call, so seccomp profiles, sysctls and old kernels show up as they are.
// `aioloop probe` prints the report; the loop's `auto` backend calls the check_* functions.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <aioloop/result.hpp>
#include <aioloop/sys/aio.hpp>

namespace aioloop::sys {

/// A yes/no answer and, when no, why: the call, the errno and what it means.
struct probe_flag {
    bool value = false;
    std::string reason;    ///< empty when value is true (or a note about how it was answered)
    std::error_code error; ///< the errno behind a false value, when there is one
};

/// A number, or why it could not be read.
struct probe_number {
    std::optional<std::uint64_t> value;
    std::string reason; ///< empty when value is set
};

struct probe_options {
    /// Where the temporary file for the RWF_NOWAIT and O_DIRECT tests is created (and removed).
    std::string directory = ".";
};

struct probe_report {
    std::string kernel;            ///< uname release, e.g. "6.1.0-18-amd64"
    std::string kernel_warning;    ///< non-empty below 5.16, where AIO poll had races
    probe_flag aio;                ///< io_setup works
    probe_flag aio_poll;           ///< IOCB_CMD_POLL on an eventfd fires and is reaped by a syscall
    probe_flag aio_pgetevents;     ///< io_pgetevents itself works (some seccomp profiles refuse it)
    probe_flag aio_ring;           ///< the completion ring can be read in user space
    probe_number aio_max_nr;       ///< fs.aio-max-nr
    probe_number aio_nr;           ///< fs.aio-nr
    probe_flag rwf_nowait;         ///< AIO PREAD with RWF_NOWAIT on a socket is honoured
    std::string rwf_nowait_answer; ///< what the kernel answered, e.g. "res=-EAGAIN when empty"
    probe_flag rwf_nowait_file;    ///< AIO PREAD with RWF_NOWAIT on a file in `directory`
    std::string rwf_nowait_file_answer; ///< what the kernel answered for the file
    probe_flag dio;                     ///< the filesystem of `directory` accepts O_DIRECT
    probe_number dio_mem_align;         ///< statx STATX_DIOALIGN (6.1+): buffer alignment
    probe_number dio_offset_align;      ///< statx STATX_DIOALIGN (6.1+): offset/length alignment
    probe_flag io_uring;                ///< io_uring_queue_init works
    probe_flag uring_defer_taskrun;     ///< IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN accepted
    probe_number io_uring_disabled;     ///< kernel.io_uring_disabled (6.6+), absent before
};

/// Runs every probe. Never fails: what can't be used is false with a reason. Takes milliseconds.
probe_report probe_kernel(const probe_options& options = {});

/// The report as one JSON object: each feature a key, and a `<key>_reason` beside each false one.
std::string format_probe_json(const probe_report& report);
/// The report as a table, one line per feature: name, value, reason.
std::string format_probe_table(const probe_report& report);

/// Why a backend can't run here: the errno, and one line naming the call, the cause and the fix.
struct unusable {
    std::error_code error;
    std::string reason;
};
/// Nothing, or why not.
using check_result = tl::expected<void, unusable>;

/// Whether the AIO backend can run with a context of `nr_events`: io_setup(nr_events) (EAGAIN:
/// over fs.aio-max-nr, ENOSYS, EPERM), then an IOCB_CMD_POLL on an eventfd (EINVAL before 4.18)
/// reaped by io_getevents or io_pgetevents (EPERM under some seccomp profiles).
check_result check_aio_usable(unsigned nr_events);

/// check_aio_usable's test on the context the loop will use, handed back when it passes: one
/// io_setup and no io_destroy (which waits out an RCU grace period, tens of ms) at start-up.
tl::expected<aio_context, unusable> create_checked_aio_context(unsigned nr_events,
                                                               aio_options options = {});

/// Whether the io_uring backend can run: io_uring_setup (ENOSYS, EPERM from seccomp or
/// kernel.io_uring_disabled), and with `defer_taskrun` also IORING_SETUP_SINGLE_ISSUER |
/// IORING_SETUP_DEFER_TASKRUN (6.1+; EINVAL before).
check_result check_uring_usable(bool defer_taskrun = true);

/// "major.minor" of a uname release such as "5.15.0-91-generic"; nullopt when it doesn't parse.
std::optional<std::pair<int, int>> parse_kernel_version(const std::string& release) noexcept;

} // namespace aioloop::sys
