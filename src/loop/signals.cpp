#include <array>
#include <atomic>
#include <bit>
#include <utility>

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <aioloop/signals.hpp>

namespace aioloop {

namespace {

constexpr int max_signal = 64;

// What the handler needs, in lock-free atomics: it may run on any thread at any moment.
// The eventfd to write for each signal, plus one, so that the zero of static storage means none.
std::array<std::atomic<int>, max_signal> wake_fd_plus_one;
std::atomic<std::uint64_t> pending{0};
std::array<struct sigaction, max_signal> previous;

void on_signal(int signo) {
    int saved_errno = errno; // write(2) may change it under the interrupted code
    pending.fetch_or(std::uint64_t{1} << signo);
    int fd = wake_fd_plus_one[static_cast<std::size_t>(signo)].load() - 1;
    if (fd >= 0) {
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
    }
    errno = saved_errno;
}

} // namespace

result<signal_set> signal_set::create(loop& owner, std::initializer_list<int> signals) noexcept {
    std::uint64_t mask = 0;
    for (int signo : signals) {
        if (signo <= 0 || signo >= max_signal) {
            return fail(EINVAL);
        }
        if (wake_fd_plus_one[static_cast<std::size_t>(signo)].load() != 0) {
            return fail(EBUSY);
        }
        mask |= std::uint64_t{1} << signo;
    }
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        return fail_errno();
    }
    signal_set set(owner, fd, mask);
    for (int signo : signals) {
        auto index = static_cast<std::size_t>(signo);
        wake_fd_plus_one[index].store(fd + 1);
        struct sigaction action {};
        action.sa_handler = &on_signal;
        action.sa_flags = SA_RESTART;
        sigemptyset(&action.sa_mask);
        if (::sigaction(signo, &action, &previous[index]) != 0) {
            return fail_errno(); // the destructor restores what was installed so far
        }
    }
    return set;
}

signal_set::signal_set(signal_set&& other) noexcept
    : loop_(other.loop_)
    , fd_(std::exchange(other.fd_, -1))
    , mask_(std::exchange(other.mask_, 0)) {
}

signal_set& signal_set::operator=(signal_set&& other) noexcept {
    if (this != &other) {
        release();
        loop_ = other.loop_;
        fd_ = std::exchange(other.fd_, -1);
        mask_ = std::exchange(other.mask_, 0);
    }
    return *this;
}

signal_set::~signal_set() {
    release();
}

void signal_set::release() noexcept {
    if (fd_ < 0) {
        return;
    }
    for (int signo = 1; signo < max_signal; ++signo) {
        auto index = static_cast<std::size_t>(signo);
        if ((mask_ & (std::uint64_t{1} << signo)) != 0 &&
            wake_fd_plus_one[index].load() == fd_ + 1) {
            ::sigaction(signo, &previous[index], nullptr);
            wake_fd_plus_one[index].store(0);
        }
    }
    loop_->forget_fd(fd_);
    ::close(fd_);
    fd_ = -1;
}

task<result<int>> signal_set::wait() {
    for (;;) {
        // Take one of our pending signals, leaving the others for the next wait().
        std::uint64_t seen = pending.load();
        while ((seen & mask_) != 0) {
            int signo = std::countr_zero(seen & mask_);
            std::uint64_t bit = std::uint64_t{1} << signo;
            if (pending.compare_exchange_weak(seen, seen & ~bit)) {
                co_return signo;
            }
        }
        auto ready = co_await loop_->fd_readable(fd_);
        if (!ready) {
            co_return tl::unexpected(ready.error());
        }
        std::uint64_t count = 0;
        loop_->count_syscall(syscall_name::read);
        [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof(count));
    }
}

} // namespace aioloop
