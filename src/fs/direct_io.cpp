// statx STATX_DIOALIGN: what O_DIRECT needs on this file (moved here from apps/cat_input.cpp).

#include <fcntl.h>
#include <linux/stat.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <aioloop/fs/direct_io.hpp>

// STATX_DIOALIGN (6.1) is newer than some C libraries' headers; the value is ABI.
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

namespace aioloop::fs {

namespace {
constexpr std::size_t default_dio_align = 4096;
}

std::size_t dio_alignment(int fd, std::string& why_not, std::size_t max_align) {
    struct statx stx {};
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0 ||
        (stx.stx_mask & STATX_DIOALIGN) == 0) {
        return default_dio_align;
    }
    if (stx.stx_dio_offset_align == 0) {
        why_not = "the filesystem has no direct I/O";
        return 0;
    }
    if (stx.stx_dio_mem_align > max_align || stx.stx_dio_offset_align > max_align) {
        why_not = fmt::format("it wants {}-byte alignment", stx.stx_dio_offset_align);
        return 0;
    }
    return stx.stx_dio_offset_align;
}

} // namespace aioloop::fs
