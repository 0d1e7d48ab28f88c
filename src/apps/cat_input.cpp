// Opening the inputs of `aioloop cat`: O_DIRECT where the filesystem takes it, with the alignment
// statx reports, and a one-line note where it doesn't.

#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/fs/direct_io.hpp>

#include "apps/cat_internal.hpp"

namespace aioloop::apps::detail {

namespace {

std::int64_t align_up(std::int64_t value, std::size_t align) {
    auto a = static_cast<std::int64_t>(align);
    return (value + a - 1) / a * a;
}

} // namespace

cat_input::cat_input(cat_input&& other) noexcept
    : fd(std::exchange(other.fd, -1))
    , owned(std::exchange(other.owned, false))
    , name(std::move(other.name))
    , seekable(other.seekable)
    , positioned(other.positioned)
    , start(other.start)
    , limit(other.limit)
    , direct(other.direct)
    , align(other.align)
    , aio_reads(other.aio_reads) {
}

cat_input& cat_input::operator=(cat_input&& other) noexcept {
    if (this != &other) {
        this->~cat_input();
        new (this) cat_input(std::move(other));
    }
    return *this;
}

cat_input::~cat_input() {
    if (owned && fd >= 0) {
        // Never retry close: on Linux the descriptor is gone even when it reports EINTR.
        ::close(fd);
    }
}

result<cat_input> open_input(
    const std::string& name, int in_fd, bool direct, std::size_t block_size, const diag_fn& diag) {
    cat_input input;
    input.name = name;
    if (name == "-") {
        input.fd = in_fd;
        // Standard input was opened by someone else: leave its flags alone, read buffered.
        direct = false;
    } else {
        int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
        if (fd < 0 && direct && errno == EINVAL) {
            diag(fmt::format(
                "{}: O_DIRECT refused ({}); reading buffered", name, std::strerror(EINVAL)));
            direct = false;
            fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0) {
            return fail_errno();
        }
        input.fd = fd;
        input.owned = true;
    }
    struct stat st {};
    if (::fstat(input.fd, &st) != 0) {
        return fail_errno();
    }
    if (S_ISDIR(st.st_mode)) {
        return fail(EISDIR);
    }
    // Only regular files have a size worth reading ahead in parallel; /proc files report 0 and
    // pipes, ttys and character devices are streams: those are read one block at a time.
    std::int64_t pos = ::lseek(input.fd, 0, SEEK_CUR);
    if (pos >= 0) {
        input.positioned = true;
        input.start = pos;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0 && pos >= 0 && pos < st.st_size) {
        input.seekable = true;
        input.limit = st.st_size;
    }
    if (direct) {
        std::string why_not;
        std::size_t align = fs::dio_alignment(input.fd, why_not);
        if (align == 0 || block_size % align != 0) {
            if (why_not.empty()) {
                why_not = fmt::format("--block-size {} is not a multiple of {}", block_size, align);
            }
            diag(fmt::format("{}: O_DIRECT not used ({}); reading buffered", name, why_not));
            input.direct = true; // so that clear_direct() drops the flag
            if (!clear_direct(input)) {
                return fail_errno();
            }
        } else {
            input.direct = true;
            input.align = align;
            input.limit = align_up(input.limit, align);
        }
    }
    return input;
}

result<void> clear_direct(cat_input& input) noexcept {
    if (!input.direct) {
        return {};
    }
    int flags = ::fcntl(input.fd, F_GETFL);
    if (flags < 0 || ::fcntl(input.fd, F_SETFL, flags & ~O_DIRECT) != 0) {
        return fail_errno();
    }
    input.direct = false;
    input.align = 1;
    return {};
}

} // namespace aioloop::apps::detail
