// Uses the installed library: one AIO context, a PWRITE and a PREAD on a socket pair in one
// io_submit, both reaped. Exits non-zero when anything differs.

#include <cstdio>
#include <cstring>

#include <sys/socket.h>
#include <unistd.h>

#include <aioloop/sys/aio.hpp>

int main() {
    auto ctx = aioloop::sys::aio_context::create(8);
    if (!ctx) {
        std::puts(aioloop::sys::setup_error_message(8, ctx.error()).c_str());
        return 1;
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) {
        return 1;
    }
    const char message[] = "hello";
    char received[sizeof(message)] = {};
    iocb write_cb{};
    iocb read_cb{};
    aioloop::sys::prep_pwrite(write_cb, fds[0], message, sizeof(message), 0, 1);
    aioloop::sys::prep_pread(read_cb, fds[1], received, sizeof(received), 0, 2);
    iocb* batch[] = {&write_cb, &read_cb};
    if (ctx->submit(batch) != 2) {
        return 1;
    }
    io_event events[2];
    auto reaped = ctx->reap(events, 2, nullptr);
    ::close(fds[0]);
    ::close(fds[1]);
    if (!reaped || *reaped != 2 || std::memcmp(message, received, sizeof(message)) != 0) {
        return 1;
    }
    std::printf("consumer: %s\n", received);
    return 0;
}
