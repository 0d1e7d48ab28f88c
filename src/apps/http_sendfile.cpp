// The zero-copy path of `aioloop http`: a body range whose pages are all in the page cache goes
// out with sendfile() on the loop. sendfile() would wait for the disk on a page-cache miss, so
// each call covers only a range that cachestat() has just found resident; a range that isn't is
// left to the chunked reads (RWF_NOWAIT, O_DIRECT, io_uring or the pool), which never block.

#include <algorithm>
#include <cerrno>

#include <sys/sendfile.h>
#include <sys/socket.h>

#include "apps/http_connection.hpp"

namespace aioloop::apps::http {

namespace {

// One cachestat + sendfile covers this much: large enough that a 1 MiB body is one call when the
// socket takes it, small enough that an eviction meanwhile is unlikely.
constexpr std::uint64_t sendfile_window = 4 << 20;

} // namespace

bool send_head_more(net::tcp_stream* stream, std::string& out) {
    // MSG_MORE: the head leaves with the body's first segment instead of in its own packet.
    ssize_t n =
        ::send(stream->fd(), out.data(), out.size(), MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    out.erase(0, static_cast<std::size_t>(n));
    return true;
}

task<sendfile_outcome> send_resident(net::tcp_stream* stream,
                                     std::shared_ptr<loop_state> state,
                                     std::shared_ptr<file_entry> file,
                                     std::uint64_t offset,
                                     std::uint64_t end) {
    sendfile_outcome outcome{offset, false};
    int sock = stream->fd();
    std::chrono::milliseconds timeout = state->shared->options.send_timeout;
    while (outcome.offset < end) {
        std::uint64_t window = std::min(end - outcome.offset, sendfile_window);
        if (!range_resident(file->fd, outcome.offset, window, false)) {
            co_return outcome; // the caller reads the rest without blocking
        }
        std::uint64_t window_end = outcome.offset + window;
        while (outcome.offset < window_end) {
            auto at = static_cast<off_t>(outcome.offset);
            ssize_t n = ::sendfile(
                sock, file->fd, &at, static_cast<std::size_t>(window_end - outcome.offset));
            ++state->cache.counters().sendfiles;
            if (n > 0) {
                outcome.offset += static_cast<std::uint64_t>(n);
                continue;
            }
            if (n == 0) {
                outcome.failed = true; // the file shrank: Content-Length can't be kept
                co_return outcome;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                outcome.failed = true;
                co_return outcome;
            }
            auto writable = state->owner.fd_writable(sock).with_timeout(timeout);
            auto ready = co_await std::move(writable);
            if (!ready) {
                outcome.failed = true;
                co_return outcome;
            }
        }
    }
    co_return outcome;
}

} // namespace aioloop::apps::http
