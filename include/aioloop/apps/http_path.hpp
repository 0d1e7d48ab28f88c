#pragma once

// Turning a request target into a file under the server's root, safely: the target is decoded
// and normalised here, and the kernel resolves it with openat2(RESOLVE_BENEATH) so that neither
// `..` nor a symbolic link can leave the root.

#include <string>
#include <string_view>

#include <sys/stat.h>

#include <aioloop/result.hpp>

namespace aioloop::apps::http {

struct decoded_path {
    int status = 0;         ///< 0: usable; else the status to answer (400 bad encoding, 404 hidden)
    std::string relative;   ///< "a/b.html", no leading slash; "" is the root itself
    bool directory = false; ///< the target ended in '/' (or was "/")
};

/// Decodes the path of an origin-form target: drops the query, percent-decodes each segment,
/// removes "." and resolves ".." without going above the root (400). A decoded '/' or NUL is 400;
/// a segment starting with '.' (hidden file) is 404.
decoded_path decode_target_path(std::string_view target);

struct opened_file {
    int fd = -1; ///< owned by the caller
    struct stat st {};
    std::string relative; ///< what was opened: with "/index.html" for a directory
};

/// Opens `relative` read-only beneath `root_fd` (openat2 RESOLVE_BENEATH, 5.6+; before that no
/// symbolic links at all, O_NOFOLLOW per component). A directory yields its index.html. Errors:
/// ENOENT, EACCES, EXDEV / ELOOP (would leave the root), EISDIR (directory, no index.html),
/// EPERM (not a regular file). Blocking: call it off the loop.
result<opened_file> open_beneath(int root_fd, const std::string& relative);

/// The status for an open_beneath() error: 404, 403 or 500.
int status_for_open_error(std::error_code ec) noexcept;

} // namespace aioloop::apps::http
