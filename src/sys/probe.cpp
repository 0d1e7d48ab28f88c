// The AIO half of the kernel probe: io_setup, IOCB_CMD_POLL reaped by a real io_pgetevents, the
// ring, fs.aio-max-nr, RWF_NOWAIT on a socket. The file tests are in probe_file.cpp.

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/sys/aio.hpp>
#include <aioloop/sys/probe.hpp>

#include "sys/probe_detail.hpp"
#include "sys/syscalls.hpp"

namespace aioloop::sys {

namespace detail {

std::string errno_name(int err) {
    const char* name = ::strerrorname_np(err);
    return name != nullptr ? name : fmt::format("errno {}", err);
}

probe_flag yes(std::string note) {
    return probe_flag{true, std::move(note), {}};
}

probe_flag no(int err, std::string reason) {
    return probe_flag{false, std::move(reason), err != 0 ? errno_code(err) : std::error_code{}};
}

fd_guard::~fd_guard() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

} // namespace detail

namespace {

using detail::errno_name;
using detail::fd_guard;
using detail::no;
using detail::yes;

// A bound on every wait: the probe must never hang, yet a POLL on an eventfd that was just
// written completes in microseconds.
constexpr timespec probe_wait{1, 0};
constexpr std::uint64_t probe_cookie = 0xa10a10a1'5eed;
constexpr unsigned probe_nr_events = 8;

struct aio_answers {
    probe_flag poll;
    probe_flag pgetevents;
};

// Submits an IOCB_CMD_POLL on an eventfd, makes it fire, and waits for it with a real
// io_pgetevents system call (never the ring): Docker's profile once allowed io_submit but refused
// io_pgetevents with EPERM, which a ring read would hide. When io_pgetevents is refused, tries
// io_getevents, which the loop calls first anyway.
aio_answers try_aio_poll(aio_context& ctx) {
    aio_answers out;
    fd_guard efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (efd.get() < 0) {
        int err = errno;
        out.poll = no(err, fmt::format("eventfd: {}", errno_name(err)));
        out.pgetevents = no(0, "not tried: " + out.poll.reason);
        return out;
    }
    iocb cb{};
    prep_poll(cb, efd.get(), POLLIN, probe_cookie);
    std::array<iocb*, 1> batch{&cb};
    auto taken = ctx.submit_once(batch);
    if (!taken || *taken != 1) {
        int err = taken ? EAGAIN : taken.error().value();
        std::string why;
        if (err == EINVAL) {
            why = "io_submit(IOCB_CMD_POLL): EINVAL: this kernel has no AIO poll (4.18+)";
        } else if (err == EPERM || err == ENOSYS) {
            why = fmt::format("io_submit(IOCB_CMD_POLL): {}: refused (a seccomp profile?)",
                              errno_name(err));
        } else {
            why = fmt::format("io_submit(IOCB_CMD_POLL): {}", errno_name(err));
        }
        out.poll = no(err, why);
        out.pgetevents = no(0, "not tried: " + why);
        return out;
    }
    std::uint64_t one = 1;
    if (::write(efd.get(), &one, sizeof(one)) != static_cast<ssize_t>(sizeof(one))) {
        int err = errno;
        out.poll = no(err, fmt::format("write(eventfd): {}", errno_name(err)));
        out.pgetevents = no(0, "not tried: " + out.poll.reason);
        return out; // io_destroy cancels the pending POLL
    }

    io_event event{};
    timespec wait = probe_wait;
    long n = detail::io_pgetevents(ctx.id(), 1, 1, &event, &wait, nullptr);
    int pget_err = n < 0 ? errno : 0;
    std::string via = "io_pgetevents";
    if (n < 0) {
        out.pgetevents =
            no(pget_err,
               fmt::format("io_pgetevents: {}: refused{}",
                           errno_name(pget_err),
                           pget_err == EPERM || pget_err == ENOSYS ? " (a seccomp profile?)" : ""));
        wait = probe_wait;
        n = detail::io_getevents(ctx.id(), 1, 1, &event, &wait);
        via = "io_getevents";
        if (n < 0) {
            int err = errno;
            out.poll = no(err,
                          fmt::format("io_pgetevents: {} and io_getevents: {}: AIO completions "
                                      "can't be waited for (a seccomp profile?); use --backend "
                                      "epoll or uring",
                                      errno_name(pget_err),
                                      errno_name(err)));
            return out;
        }
    } else {
        out.pgetevents = yes({});
    }
    if (n == 0) {
        out.poll = no(ETIMEDOUT,
                      fmt::format("IOCB_CMD_POLL on a written eventfd didn't complete within "
                                  "{} s ({})",
                                  probe_wait.tv_sec,
                                  via));
        if (out.pgetevents.value) {
            out.pgetevents = no(ETIMEDOUT, "nothing to reap: " + out.poll.reason);
        }
        return out;
    }
    if (event.data != probe_cookie) {
        out.poll = no(0, fmt::format("{} returned an event with a foreign cookie", via));
    } else if (event.res < 0) {
        int err = static_cast<int>(-event.res);
        out.poll = no(err, fmt::format("IOCB_CMD_POLL completed with res=-{}", errno_name(err)));
    } else if ((event.res & POLLIN) == 0) {
        out.poll =
            no(0, fmt::format("IOCB_CMD_POLL completed with revents {:#x}, no POLLIN", event.res));
    } else if (!out.pgetevents.value) {
        // Usable: the loop reaps with io_getevents first and only falls back to io_pgetevents.
        out.poll = yes("reaped with io_getevents; " + out.pgetevents.reason);
    } else {
        out.poll = yes({});
    }
    return out;
}

// Reaps one completion (the ring, else a system call) and checks its cookie.
result<io_event> reap_one(aio_context& ctx, std::uint64_t cookie) {
    // A POLL that try_aio_poll couldn't reap (every getevents call refused) may stand first in
    // the ring: skip what isn't ours.
    for (int tries = 0; tries < 4; ++tries) {
        io_event event{};
        timespec wait = probe_wait;
        auto n = ctx.reap({&event, 1}, 1, &wait);
        if (!n) {
            return tl::unexpected(n.error());
        }
        if (*n == 0) {
            break;
        }
        if (event.data == cookie) {
            return event;
        }
    }
    return fail(ETIMEDOUT);
}

} // namespace

namespace detail {

// One PREAD with RWF_NOWAIT, submitted and reaped: the completion's res, or the submit error.
// `submit_error` tells which of the two failed.
result<std::int64_t>
nowait_pread(aio_context& ctx, int fd, void* buf, std::size_t len, bool& submit_error) {
    iocb cb{};
    prep_pread(cb, fd, buf, len, 0, probe_cookie + 1);
    set_rw_flags(cb, RWF_NOWAIT);
    std::array<iocb*, 1> batch{&cb};
    auto taken = ctx.submit_once(batch);
    submit_error = !taken;
    if (!taken) {
        return tl::unexpected(taken.error());
    }
    return reap_one(ctx, probe_cookie + 1).transform([](const io_event& e) { return e.res; });
}

std::string res_text(std::int64_t res) {
    return res < 0 ? fmt::format("res=-{}", errno_name(static_cast<int>(-res)))
                   : fmt::format("res={}", res);
}

} // namespace detail

namespace {

using detail::nowait_pread;
using detail::res_text;

// On sockets PREAD runs inside io_submit; RWF_NOWAIT (4.14 for files; sockets need FMODE_NOWAIT)
// turns an empty read into -EAGAIN instead of a block. The socket is blocking, with a receive
// timeout as a guard: a kernel that ignored the flag would block for that long, and we would see
// the time, not hang.
void probe_socket_nowait(aio_context& ctx, probe_report& report) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
        int err = errno;
        report.rwf_nowait = no(err, fmt::format("socketpair: {}", errno_name(err)));
        return;
    }
    fd_guard reader(fds[0]);
    fd_guard writer(fds[1]);
    timeval guard{0, 300'000};
    ::setsockopt(reader.get(), SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
    char buf[64];
    bool submit_error = false;
    auto start = std::chrono::steady_clock::now();
    auto empty = nowait_pread(ctx, reader.get(), buf, sizeof(buf), submit_error);
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (!empty) {
        int err = empty.error().value();
        report.rwf_nowait_answer =
            fmt::format("{}: {}", submit_error ? "io_submit" : "reap", errno_name(err));
        report.rwf_nowait =
            no(err,
               fmt::format("{}(PREAD, RWF_NOWAIT) on a socket: {}{}",
                           submit_error ? "io_submit" : "reaping",
                           errno_name(err),
                           err == EOPNOTSUPP ? ": sockets refuse RWF_NOWAIT here" : ""));
        return;
    }
    report.rwf_nowait_answer = "empty: " + res_text(*empty);
    if (*empty != -EAGAIN || elapsed > std::chrono::milliseconds(150)) {
        report.rwf_nowait =
            no(0,
               fmt::format("PREAD with RWF_NOWAIT on an empty blocking socket "
                           "answered {} after {} ms: the flag was ignored",
                           res_text(*empty),
                           std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
        return;
    }
    if (::write(writer.get(), "x", 1) != 1) {
        int err = errno;
        report.rwf_nowait = no(err, fmt::format("write(socket): {}", errno_name(err)));
        return;
    }
    auto full = nowait_pread(ctx, reader.get(), buf, sizeof(buf), submit_error);
    report.rwf_nowait_answer +=
        fmt::format("; with data: {}", full ? res_text(*full) : errno_name(full.error().value()));
    if (!full || *full != 1) {
        report.rwf_nowait = no(full ? 0 : full.error().value(),
                               "PREAD with RWF_NOWAIT on a socket holding 1 byte didn't read it");
        return;
    }
    report.rwf_nowait = yes({});
}

} // namespace

std::optional<std::pair<int, int>> parse_kernel_version(const std::string& release) noexcept {
    int major = 0;
    int minor = 0;
    if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) != 2) {
        return std::nullopt;
    }
    return std::pair{major, minor};
}

tl::expected<aio_context, unusable> create_checked_aio_context(unsigned nr_events,
                                                               aio_options options) {
    auto ctx = aio_context::create(nr_events, options);
    if (!ctx) {
        return tl::unexpected(unusable{ctx.error(), setup_error_message(nr_events, ctx.error())});
    }
    auto answers = try_aio_poll(*ctx);
    if (!answers.poll.value) {
        return tl::unexpected(unusable{answers.poll.error, answers.poll.reason});
    }
    // The probe's POLL was reaped by the system call: the context is empty and ready for use.
    ctx->reset_counters();
    return std::move(*ctx);
}

check_result check_aio_usable(unsigned nr_events) {
    return create_checked_aio_context(nr_events, {}).transform([](aio_context&&) {});
}

probe_report probe_kernel(const probe_options& options) {
    probe_report report;
    utsname names{};
    if (::uname(&names) == 0) {
        report.kernel = names.release;
    }
    if (auto version = parse_kernel_version(report.kernel); !version) {
        report.kernel_warning = "can't parse the kernel release";
    } else if (*version < std::pair{5, 16}) {
        report.kernel_warning = fmt::format("kernel {}.{} < 5.16: AIO poll had races (missed "
                                            "wake-ups, a use-after-free) fixed in 5.16; prefer "
                                            "--backend epoll",
                                            version->first,
                                            version->second);
    }

    if (auto limits = read_aio_limits()) {
        report.aio_max_nr.value = limits->max_nr;
        report.aio_nr.value = limits->nr;
    } else {
        report.aio_max_nr.reason = "can't read /proc/sys/fs/aio-max-nr";
        report.aio_nr.reason = "can't read /proc/sys/fs/aio-nr";
    }

    auto ctx = aio_context::create(probe_nr_events);
    if (!ctx) {
        std::string why = setup_error_message(probe_nr_events, ctx.error());
        report.aio = no(ctx.error().value(), why);
        for (probe_flag* flag :
             {&report.aio_poll, &report.aio_pgetevents, &report.aio_ring, &report.rwf_nowait}) {
            *flag = no(0, "not tried: " + why);
        }
    } else {
        report.aio = yes({});
        report.aio_ring = ctx->ring_in_use() ? yes({}) : no(0, ctx->ring_unusable_reason());
        // The POLL is reaped by a system call, never from the ring, even though this context has
        // one; a second context would cost another io_destroy, which waits out an RCU grace
        // period (25-45 ms measured on 6.18).
        auto answers = try_aio_poll(*ctx);
        report.aio_poll = std::move(answers.poll);
        report.aio_pgetevents = std::move(answers.pgetevents);
        probe_socket_nowait(*ctx, report);
    }
    detail::probe_file(ctx ? &*ctx : nullptr, options, report);
    detail::probe_uring(report);
    return report;
}

} // namespace aioloop::sys
