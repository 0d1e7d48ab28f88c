// aioloop::loop: the public face of loop_core.

#include <poll.h>

#include <aioloop/loop.hpp>

#include "loop/loop_core.hpp"

namespace aioloop {

std::string_view to_string(backend_kind kind) noexcept {
    switch (kind) {
    case backend_kind::automatic:
        return "auto";
    case backend_kind::aio:
        return "aio";
    case backend_kind::epoll:
        return "epoll";
    case backend_kind::uring:
        return "uring";
    }
    return "?";
}

std::optional<backend_kind> parse_backend_kind(std::string_view name) noexcept {
    for (backend_kind kind :
         {backend_kind::automatic, backend_kind::aio, backend_kind::epoll, backend_kind::uring}) {
        if (name == to_string(kind)) {
            return kind;
        }
    }
    return std::nullopt;
}

loop::loop() noexcept = default;

loop::~loop() = default;

void loop::run() {
    core_->run();
}

void loop::stop() noexcept {
    core_->stop();
}

bool loop::stopping() const noexcept {
    return core_->stopping();
}

void loop::post(std::function<void()> fn) {
    core_->post(std::move(fn));
}

io_awaitable loop::poll(int fd, std::uint32_t events) noexcept {
    return io_awaitable(*this, op_kind::poll, fd).with_events(events);
}

io_awaitable loop::fd_readable(int fd) noexcept {
    return poll(fd, POLLIN);
}

io_awaitable loop::fd_writable(int fd) noexcept {
    return poll(fd, POLLOUT);
}

io_awaitable loop::recv(int fd, std::span<std::byte> buf) noexcept {
    return io_awaitable(*this, op_kind::recv, fd).with_buffer(buf.data(), buf.size());
}

io_awaitable loop::send(int fd, std::span<const std::byte> buf) noexcept {
    // The backend never writes through this pointer; operation keeps one pointer type for both.
    return io_awaitable(*this, op_kind::send, fd)
        .with_buffer(const_cast<std::byte*>(buf.data()), buf.size());
}

io_awaitable loop::read_at(int fd, std::span<std::byte> buf, std::int64_t offset) noexcept {
    return io_awaitable(*this, op_kind::read_at, fd)
        .with_buffer(buf.data(), buf.size())
        .with_offset(offset);
}

io_awaitable loop::write_at(int fd, std::span<const std::byte> buf, std::int64_t offset) noexcept {
    return io_awaitable(*this, op_kind::write_at, fd)
        .with_buffer(const_cast<std::byte*>(buf.data()), buf.size())
        .with_offset(offset);
}

void loop::cancel(detail::operation*& slot) noexcept {
    detail::operation* op = std::exchange(slot, nullptr);
    if (op != nullptr) {
        op->tracker = nullptr;
        core_->cancel(*op);
    }
}

void loop::move_tracked(detail::operation*& to, detail::operation*& from) noexcept {
    to = std::exchange(from, nullptr);
    if (to != nullptr) {
        to->tracker = &to;
    }
}

void loop::forget_fd(int fd) noexcept {
    core_->forget_fd(fd);
}

void loop::count_syscall(syscall_name name) noexcept {
    core_->count_syscall(name);
}

std::string_view loop::backend_name() const noexcept {
    return core_->backend_name();
}

const std::string& loop::backend_reason() const noexcept {
    return core_->backend_reason();
}

loop_stats loop::stats() const noexcept {
    return core_->stats();
}

loop* loop::current() noexcept {
    return detail::current();
}

timer_awaitable sleep_for(clock::duration d) noexcept {
    return loop::current()->sleep_for(d);
}

timer_awaitable sleep_until(clock::time_point t) noexcept {
    return loop::current()->sleep_until(t);
}

io_awaitable fd_readable(int fd) noexcept {
    return loop::current()->fd_readable(fd);
}

io_awaitable fd_writable(int fd) noexcept {
    return loop::current()->fd_writable(fd);
}

} // namespace aioloop
