#pragma once

// O_DIRECT alignment of an open file, from statx STATX_DIOALIGN (6.1+). Shared by `aioloop cat`
// and `aioloop http`.

#include <cstddef>
#include <string>

namespace aioloop::fs {

/// The buffer alignment both users allocate with: a filesystem wanting more reads buffered.
inline constexpr std::size_t dio_buffer_align = 4096;

/// The O_DIRECT offset and length alignment for `fd`; 0 (and `why_not` set) when the filesystem
/// has no direct I/O or wants more than `max_align`; 4096 when the kernel or filesystem doesn't
/// report it (before 6.1, tmpfs).
std::size_t dio_alignment(int fd, std::string& why_not, std::size_t max_align = dio_buffer_align);

} // namespace aioloop::fs
