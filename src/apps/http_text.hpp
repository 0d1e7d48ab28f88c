#pragma once

// The few text rules HTTP/1.x fields share (RFC 9110 5.1, 5.5), for the server's parser and
// responses and for the load generator's HTTP mode: names compare without regard to ASCII case,
// and optional whitespace (spaces and tabs) around a value is not part of it.

#include <string_view>

namespace aioloop::apps::http {

constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

/// Equal when ASCII letters are compared without regard to case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

/// `s` without the spaces and tabs at either end.
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

} // namespace aioloop::apps::http
