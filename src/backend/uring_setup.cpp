// make_uring_backend: sets up the ring with the flags that made io_uring the fastest backend
// measured here (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 6.1+), falls back
// without them on an older kernel with a warning, and refuses in one line where io_uring can't
// run at all (ENOSYS, EPERM from seccomp or kernel.io_uring_disabled, ENOMEM from RLIMIT_MEMLOCK).
//
// The ring is set up on a short-lived thread of its own. io_uring_setup registers the calling
// thread with the ring (its io_uring_task gets a node in the ring's tctx_list), and when the ring
// is torn down the kernel's io_ring_exit_work, run asynchronously some 10-25 ms after the last
// close, task_work_add(TWA_SIGNAL)s every registered thread that is still alive. That interrupts
// whatever the thread is blocked in: recv on a socket with SO_RCVTIMEO, epoll_wait... return EINTR
// (io_uring/io_uring.c, io_ring_exit_work; seen on 6.18). A thread that only made a loop (to see
// whether the backend exists, or for another thread to run) must not get that surprise; a thread
// that exits drops its registration, so the helper's ends with it. The loop's own thread is
// registered at its first io_uring_enter, which is unavoidable and which it asked for.

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <string>

#include <pthread.h>

#include <fmt/format.h>

#include <aioloop/sys/probe.hpp>

#include "backend/uring_backend.hpp"

namespace aioloop::backend {

namespace {

struct setup_attempt {
    unsigned flags;
    const char* names;
    const char* kernel;
};

// Tried in order; each later one only after the kernel answered EINVAL to the one before.
// SUBMIT_ALL (5.18): an SQE that fails to prepare doesn't stop the rest of the batch.
// COOP_TASKRUN (5.19): no interrupting IPI per completion; they run at our next system call.
constexpr setup_attempt setup_attempts[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
     "IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN",
     "6.1"},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
     "IORING_SETUP_COOP_TASKRUN|IORING_SETUP_SUBMIT_ALL",
     "5.19"},
    {0, "", ""},
};

// CQSIZE (5.5) sizes the CQ for every operation in flight, CLAMP (5.6) caps what the kernel
// can't give, R_DISABLED (5.10) lets the ring bind to the loop's thread at its first submission.
constexpr unsigned common_flags =
    IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_R_DISABLED;

// One turn's submissions: the SQ needs no room for what is in flight, only for what a turn
// queues; a fuller turn costs one more io_uring_enter, never a dropped operation.
constexpr unsigned sq_size = 256;

std::string errno_text(int err) {
    return fmt::format("{} ({})", strerrordesc_np(err), strerrorname_np(err));
}

backend_error refusal(int err, unsigned cq_size) {
    // The probe knows how to explain ENOSYS, EPERM (seccomp, kernel.io_uring_disabled) and
    // ENOMEM: ask it, with a tiny ring, for the same errno.
    auto probed = sys::check_uring_usable(false);
    if (!probed && probed.error().error.value() == err) {
        return backend_error{errno_code(err), probed.error().reason};
    }
    if (err == ENOMEM) {
        return backend_error{
            errno_code(err),
            fmt::format("io_uring_setup(sq={}, cq={}): ENOMEM: RLIMIT_MEMLOCK too "
                        "low for the rings (counted before 5.12); raise ulimit -l, "
                        "lower --max-connections or use --backend aio",
                        sq_size,
                        cq_size)};
    }
    return backend_error{
        errno_code(err),
        fmt::format("io_uring_setup: {}; use --backend aio or epoll", errno_text(err))};
}

// What set_up() found: a ring (set up disabled) and its flags, or why not; and the warning for
// the caller's thread to give.
struct setup_outcome {
    io_uring ring{};
    unsigned flags = 0;
    std::string note;
    std::optional<backend_error> error;
};

setup_outcome set_up(unsigned max_operations) {
    // Every operation in flight may hold one CQE, and each cancel one more.
    unsigned cq_size = std::bit_ceil(std::max(2 * sq_size, 2 * std::max(max_operations, 1U)));
    setup_outcome out;
    for (const setup_attempt& attempt : setup_attempts) {
        io_uring ring{};
        io_uring_params params{};
        params.flags = common_flags | attempt.flags;
        params.cq_entries = cq_size;
        int ret = io_uring_queue_init_params(sq_size, &ring, &params);
        if (ret == -EINVAL && attempt.flags != 0) {
            if (out.note.empty()) {
                out.note =
                    fmt::format("io_uring_setup({}): EINVAL (needs kernel {}+): io_uring runs "
                                "without them, where it measured the slowest backend; prefer "
                                "--backend aio",
                                attempt.names,
                                attempt.kernel);
            }
            continue;
        }
        if (ret < 0) {
            out.error = refusal(-ret, cq_size);
            return out;
        }
        // 5.11: a wait with its own timeout (no IORING_OP_TIMEOUT SQE to submit and remove);
        // 5.5: completions beyond the CQ's size are kept, never dropped.
        constexpr unsigned needed = IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP;
        if ((params.features & needed) != needed) {
            io_uring_queue_exit(&ring);
            out.error = backend_error{
                errno_code(ENOTSUP),
                "io_uring_setup: no IORING_FEAT_EXT_ARG (kernel before 5.11); use --backend aio "
                "or epoll"};
            return out;
        }
        out.ring = ring;
        out.flags = params.flags;
        return out;
    }
    out.error = refusal(EINVAL, cq_size); // unreachable: the last attempt has no flags
    return out;
}

struct setup_job {
    unsigned max_operations;
    setup_outcome outcome;
};

void* run_setup(void* arg) {
    auto* job = static_cast<setup_job*>(arg);
    job->outcome = set_up(job->max_operations);
    return nullptr;
}

} // namespace

tl::expected<std::unique_ptr<backend>, backend_error>
make_uring_backend(const backend_config& config) {
    setup_job job{config.max_operations, {}};
    pthread_t helper{};
    if (::pthread_create(&helper, nullptr, &run_setup, &job) == 0) {
        ::pthread_join(helper, nullptr);
    } else {
        // Out of threads: a ring that may interrupt this thread once at teardown beats none.
        run_setup(&job);
    }
    setup_outcome& out = job.outcome;
    if (out.error) {
        return tl::unexpected(std::move(*out.error));
    }
    if (!out.note.empty() && config.on_warning) {
        config.on_warning(out.note);
    }
    return std::make_unique<uring_backend>(out.ring, out.flags, std::move(out.note));
}

} // namespace aioloop::backend
