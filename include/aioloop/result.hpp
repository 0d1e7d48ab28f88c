#pragma once

#include <cerrno>
#include <system_error>

#include <tl/expected.hpp>

namespace aioloop {

/// A value or the error that prevented it. tl::expected until we build as C++23; call only what
/// std::expected also has (and_then, transform, or_else, value_or, error()).
template <typename T>
using result = tl::expected<T, std::error_code>;

/// The error_code of an errno value.
inline std::error_code errno_code(int err) noexcept {
    return {err, std::system_category()};
}

/// An unexpected result carrying errno value `err`.
inline tl::unexpected<std::error_code> fail(int err) noexcept {
    return tl::unexpected(errno_code(err));
}

/// An unexpected result carrying the current errno.
inline tl::unexpected<std::error_code> fail_errno() noexcept {
    return fail(errno);
}

} // namespace aioloop
