// Readiness flags: what an epoll event (or a poll(2) answer) says about an fd, and what the flags
// say a poll operation may report. poll(2) and epoll use the same bits (POLLIN == EPOLLIN...).

#include <poll.h>
#include <sys/epoll.h>

#include "backend/epoll_backend.hpp"

namespace aioloop::backend::epoll_detail {

namespace {

constexpr std::uint32_t in_bits = POLLIN | POLLRDNORM;
constexpr std::uint32_t out_bits = POLLOUT | POLLWRNORM;

static_assert(EPOLLIN == POLLIN && EPOLLOUT == POLLOUT && EPOLLPRI == POLLPRI &&
              EPOLLERR == POLLERR && EPOLLHUP == POLLHUP && EPOLLRDHUP == POLLRDHUP &&
              EPOLLRDNORM == POLLRDNORM && EPOLLWRNORM == POLLWRNORM);

} // namespace

std::uint32_t known_revents(const fd_state& state, std::uint32_t events) noexcept {
    std::uint32_t revents = 0;
    if (state.in == readiness::ready || state.rdhup) {
        revents |= in_bits; // at end of stream a read returns 0 at once: readable, as poll(2) says
    }
    if (state.out == readiness::ready) {
        revents |= out_bits;
    }
    if (state.pri == readiness::ready) {
        revents |= POLLPRI;
    }
    if (state.rdhup) {
        revents |= POLLRDHUP;
    }
    if (state.hup) {
        revents |= POLLHUP;
    }
    if (state.err) {
        revents |= POLLERR;
    }
    return revents & (events | POLLERR | POLLHUP);
}

bool needs_check(const fd_state& state, std::uint32_t events) noexcept {
    return ((events & in_bits) != 0 && state.in == readiness::unknown) ||
           ((events & out_bits) != 0 && state.out == readiness::unknown) ||
           ((events & POLLPRI) != 0 && state.pri == readiness::unknown);
}

void consumed(fd_state& state, std::uint32_t revents) noexcept {
    // The poll's owner will read, write or accept where we can't see it, and may or may not
    // drain the fd: the next poll asks the kernel rather than trusting a stale flag (a spin) or
    // waiting for an edge that may never come (a hang).
    if ((revents & in_bits) != 0 && state.in == readiness::ready) {
        state.in = readiness::unknown;
    }
    if ((revents & out_bits) != 0 && state.out == readiness::ready) {
        state.out = readiness::unknown;
    }
    if ((revents & POLLPRI) != 0 && state.pri == readiness::ready) {
        state.pri = readiness::unknown;
    }
}

void record(fd_state& state, std::uint32_t events) noexcept {
    if ((events & in_bits) != 0) {
        state.in = readiness::ready;
    }
    if ((events & out_bits) != 0) {
        state.out = readiness::ready;
    }
    if ((events & POLLPRI) != 0) {
        state.pri = readiness::ready;
    }
    if ((events & POLLRDHUP) != 0) {
        state.rdhup = true;
        state.in = readiness::ready;
    }
    if ((events & POLLHUP) != 0) {
        state.hup = true;
    }
    if ((events & POLLERR) != 0) {
        state.err = true;
    }
    if ((events & (POLLERR | POLLHUP)) != 0) {
        // Wake every waiter: its own system call returns the real error (ECONNRESET, EPIPE) or
        // the end of stream, which beats guessing one here.
        state.in = readiness::ready;
        state.out = readiness::ready;
    }
}

} // namespace aioloop::backend::epoll_detail
