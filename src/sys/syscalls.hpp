#pragma once

// Thin syscall(2) wrappers for the AIO calls: glibc has none. Private to src/sys/.

#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace aioloop::sys::detail {

inline int io_setup(unsigned nr_events, aio_context_t* ctx) noexcept {
    return static_cast<int>(::syscall(SYS_io_setup, nr_events, ctx));
}

inline int io_destroy(aio_context_t ctx) noexcept {
    return static_cast<int>(::syscall(SYS_io_destroy, ctx));
}

inline long io_submit(aio_context_t ctx, long nr, iocb** iocbpp) noexcept {
    return ::syscall(SYS_io_submit, ctx, nr, iocbpp);
}

inline long io_getevents(
    aio_context_t ctx, long min_nr, long max_nr, io_event* events, timespec* timeout) noexcept {
    return ::syscall(SYS_io_getevents, ctx, min_nr, max_nr, events, timeout);
}

// The sigmask argument of io_pgetevents (4.18+): a pointer and the kernel's sigset size.
struct aio_sigset {
    const sigset_t* sigmask;
    size_t sigsetsize;
};

inline long io_pgetevents(aio_context_t ctx,
                          long min_nr,
                          long max_nr,
                          io_event* events,
                          timespec* timeout,
                          const sigset_t* sigmask) noexcept {
    // _NSIG / 8: the kernel's sigset_t, not glibc's larger one.
    aio_sigset set{sigmask, _NSIG / 8};
    return ::syscall(
        SYS_io_pgetevents, ctx, min_nr, max_nr, events, timeout, sigmask ? &set : nullptr);
}

inline int io_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
    return static_cast<int>(::syscall(SYS_io_cancel, ctx, cb, result));
}

} // namespace aioloop::sys::detail
