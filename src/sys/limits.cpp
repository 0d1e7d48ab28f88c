#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include <aioloop/sys/aio.hpp>

namespace aioloop::sys {

namespace {

result<std::uint64_t> read_proc_number(const char* path) noexcept {
    std::ifstream in(path);
    std::uint64_t value = 0;
    if (!(in >> value)) {
        return fail(ENOENT);
    }
    return value;
}

} // namespace

result<aio_limits> read_aio_limits() noexcept {
    auto max_nr = read_proc_number("/proc/sys/fs/aio-max-nr");
    auto nr = read_proc_number("/proc/sys/fs/aio-nr");
    if (!max_nr || !nr) {
        return fail(ENOENT);
    }
    return aio_limits{*max_nr, *nr};
}

std::string setup_error_message(unsigned nr_events, std::error_code error) {
    std::string call = fmt::format("io_setup({})", nr_events);
    int err = error.value();
    if (err == EAGAIN) {
        auto limits = read_aio_limits();
        if (!limits) {
            return call + ": EAGAIN: over fs.aio-max-nr; raise it (sysctl -w fs.aio-max-nr=N) or "
                          "use --backend epoll";
        }
        return fmt::format("{}: EAGAIN: over fs.aio-max-nr={} (fs.aio-nr={}, room for {}); raise "
                           "it (sysctl -w fs.aio-max-nr={}) or use --backend epoll",
                           call,
                           limits->max_nr,
                           limits->nr,
                           limits->room(),
                           limits->nr + nr_events);
    }
    if (err == ENOSYS) {
        return call + ": ENOSYS: this kernel has no Linux AIO (CONFIG_AIO=n); use --backend epoll";
    }
    if (err == EPERM) {
        return call + ": EPERM: AIO system calls are blocked (seccomp?); use --backend epoll";
    }
    return fmt::format("{}: {} ({})",
                       call,
                       strerrorname_np(err) ? strerrorname_np(err) : "error",
                       error.message());
}

bool running_under_valgrind() noexcept {
    const char* preload = std::getenv("LD_PRELOAD");
    return preload != nullptr && (std::strstr(preload, "vgpreload") != nullptr ||
                                  std::strstr(preload, "valgrind") != nullptr);
}

} // namespace aioloop::sys
