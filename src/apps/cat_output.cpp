// The output of `aioloop cat`: IOCB_CMD_PWRITEV batched with the next reads where the kernel
// takes it (pipes, sockets, regular files, /dev/null, ttys all do on 6.x), writev(2) otherwise.

#include <cstdlib>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/cat_internal.hpp"

namespace aioloop::apps::detail {

namespace {
constexpr int pipe_size_wanted = 1 << 20;
}

result<cat_output> cat_output::create(int fd) noexcept {
    cat_output out;
    out.fd_ = fd;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return fail_errno();
    }
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) {
        return fail_errno();
    }
    out.dev_ = st.st_dev;
    out.ino_ = st.st_ino;
    out.regular_ = S_ISREG(st.st_mode);
    out.append_ = (flags & O_APPEND) != 0;
    out.aio_ = true;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        // An AIO write goes to the offset it names, not to the file position that the shell
        // (`>` or `1<>`) set up: start there, and move the position at the end.
        std::int64_t pos = ::lseek(fd, 0, SEEK_CUR);
        if (pos < 0) {
            return fail_errno();
        }
        out.seekable_ = true;
        out.pos_ = pos;
        // O_DIRECT output would need aligned lengths: let write(2) report what it reports.
        if ((flags & O_DIRECT) != 0) {
            out.aio_ = false;
        }
    }
    if (S_ISFIFO(st.st_mode) && std::getenv("AIOLOOP_CAT_KEEP_PIPE_SIZE") == nullptr) {
        // A 64 KiB pipe makes every large write wait for the reader several times; a bigger
        // one lets the reader drain a whole write while we read the next blocks. Best effort:
        // fs.pipe-max-size or the user's pipe quota may refuse it, and we never shrink a pipe.
        int size = ::fcntl(fd, F_GETPIPE_SZ);
        if (size >= 0 && size < pipe_size_wanted &&
            ::fcntl(fd, F_SETPIPE_SZ, pipe_size_wanted) >= 0) {
            size = ::fcntl(fd, F_GETPIPE_SZ);
        }
        if (size > 0) {
            out.max_write_ = static_cast<std::size_t>(size);
        }
    }
    // AIOLOOP_CAT_SYNC_WRITES=1 forces write(2): how docs/cat.md measures the difference.
    if (const char* env = std::getenv("AIOLOOP_CAT_SYNC_WRITES"); env != nullptr && env[0] == '1') {
        out.aio_ = false;
    }
    return out;
}

void cat_output::advanced(std::size_t n) noexcept {
    pos_ += static_cast<std::int64_t>(n);
    aio_bytes_ += n;
    bytes_ += n;
}

bool cat_output::should_fall_back(int err) const noexcept {
    // EAGAIN: a non-blocking output; writev + poll handles it. The others mean this file type
    // has no AIO write; they can only come before anything was written through AIO.
    if (err == EAGAIN) {
        return true;
    }
    return aio_bytes_ == 0 && (err == EINVAL || err == ESPIPE || err == EOPNOTSUPP);
}

result<void> cat_output::to_sync() noexcept {
    if (aio_ && seekable_ && !append_ && ::lseek(fd_, pos_, SEEK_SET) < 0) {
        return fail_errno();
    }
    aio_ = false;
    return {};
}

result<std::size_t> cat_output::write_some(std::span<const iovec> iov) noexcept {
    for (;;) {
        ++write_calls_;
        ssize_t n = ::writev(fd_, iov.data(), static_cast<int>(iov.size()));
        if (n > 0) {
            pos_ += n;
            bytes_ += static_cast<std::uint64_t>(n);
            return static_cast<std::size_t>(n);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            // Someone handed us a non-blocking output: wait the way a blocking write would.
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
                return fail_errno();
            }
            continue;
        }
        return fail(n == 0 ? EIO : errno);
    }
}

result<void> cat_output::finish() noexcept {
    if (!seekable_ || aio_bytes_ == 0) {
        return {};
    }
    // Leave the position where write(2) would have left it, for whoever writes next
    // (`{ aioloop cat a; echo b; } > f`).
    std::int64_t at = append_ ? ::lseek(fd_, 0, SEEK_END) : ::lseek(fd_, pos_, SEEK_SET);
    if (at < 0) {
        return fail_errno();
    }
    return {};
}

bool cat_output::same_file(dev_t dev, ino_t ino) const noexcept {
    return regular_ && dev == dev_ && ino == ino_;
}

} // namespace aioloop::apps::detail
