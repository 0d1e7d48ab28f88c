// The io_uring half of the kernel probe: can a ring be set up and entered, and does the kernel
// take IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, without which the uring backend
// was the slowest one measured (DESIGN.md).

#include <fstream>

#include <fmt/format.h>
#include <liburing.h>

#include <aioloop/sys/probe.hpp>

#include "sys/probe_detail.hpp"

namespace aioloop::sys {

namespace {

using detail::errno_name;

constexpr unsigned defer_taskrun_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

// kernel.io_uring_disabled (6.6+): 0 allows io_uring, 1 only for CAP_SYS_ADMIN and
// kernel.io_uring_group, 2 for nobody. Absent before 6.6.
probe_number read_uring_disabled() {
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    std::uint64_t value = 0;
    if (!(in >> value)) {
        return probe_number{std::nullopt, "no /proc/sys/kernel/io_uring_disabled (kernel < 6.6)"};
    }
    return probe_number{value, {}};
}

std::string setup_call(unsigned flags) {
    return flags == 0 ? "io_uring_setup"
                      : "io_uring_setup(IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN)";
}

std::string uring_reason(const std::string& call, int err, const probe_number& disabled) {
    std::uint64_t knob = disabled.value.value_or(0);
    if (err == EPERM && knob == 2) {
        return call + ": EPERM: kernel.io_uring_disabled=2 turns io_uring off for everyone "
                      "(sysctl -w kernel.io_uring_disabled=0); use --backend aio or epoll";
    }
    if (err == EPERM && knob == 1) {
        return call + ": EPERM: kernel.io_uring_disabled=1 allows only CAP_SYS_ADMIN and "
                      "kernel.io_uring_group; use --backend aio or epoll";
    }
    if (err == EPERM) {
        return call + ": EPERM: refused by a seccomp profile (Docker's default profile refuses "
                      "io_uring); use --backend aio or epoll";
    }
    if (err == ENOSYS) {
        return call + ": ENOSYS: no io_uring in this kernel (before 5.1, or CONFIG_IO_URING=n), "
                      "or a seccomp profile answering ENOSYS; use --backend aio or epoll";
    }
    if (err == ENOMEM) {
        return call + ": ENOMEM: RLIMIT_MEMLOCK too low (rings count against it before 5.12); "
                      "raise ulimit -l or use --backend aio";
    }
    return fmt::format("{}: {}", call, errno_name(err));
}

// Sets up a small ring with `flags` and runs one NOP through it, so that a sandbox allowing
// io_uring_setup but refusing io_uring_enter is caught too. Returns 0 or an errno, and which call
// gave it in `call`.
int try_uring(unsigned flags, std::string& call) {
    io_uring ring{};
    call = setup_call(flags);
    int ret = io_uring_queue_init(4, &ring, flags);
    if (ret < 0) {
        return -ret;
    }
    call = "io_uring_enter";
    int err = 0;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    ret = io_uring_submit_and_wait(&ring, 1);
    if (ret < 0) {
        err = -ret;
    } else {
        io_uring_cqe* cqe = nullptr;
        ret = io_uring_peek_cqe(&ring, &cqe);
        if (ret < 0) {
            err = -ret;
        } else {
            err = cqe->res < 0 ? -cqe->res : 0;
            io_uring_cqe_seen(&ring, cqe);
        }
    }
    io_uring_queue_exit(&ring);
    return err;
}

check_result check_uring(unsigned flags, const probe_number& disabled) {
    std::string call;
    int err = try_uring(flags, call);
    if (err == 0) {
        return {};
    }
    std::string reason = uring_reason(call, err, disabled);
    if (err == EINVAL && flags != 0) {
        reason = call + ": EINVAL: needs kernel 6.1+";
    }
    return tl::unexpected(unusable{errno_code(err), std::move(reason)});
}

} // namespace

check_result check_uring_usable(bool defer_taskrun) {
    probe_number disabled = read_uring_disabled();
    auto plain = check_uring(0, disabled);
    if (!plain || !defer_taskrun) {
        return plain;
    }
    return check_uring(defer_taskrun_flags, disabled);
}

namespace detail {

void probe_uring(probe_report& report) {
    report.io_uring_disabled = read_uring_disabled();
    auto plain = check_uring(0, report.io_uring_disabled);
    if (!plain) {
        report.io_uring = no(plain.error().error.value(), plain.error().reason);
        report.uring_defer_taskrun = no(0, "not tried: " + plain.error().reason);
        return;
    }
    report.io_uring = yes({});
    auto deferred = check_uring(defer_taskrun_flags, report.io_uring_disabled);
    report.uring_defer_taskrun =
        deferred ? yes({}) : no(deferred.error().error.value(), deferred.error().reason);
}

} // namespace detail

} // namespace aioloop::sys
