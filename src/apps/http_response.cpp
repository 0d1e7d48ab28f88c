// Content types, dates, validators and ranges for `aioloop http` (RFC 9110 8.8, 13, 14).

#include "apps/http_response.hpp"

#include <array>
#include <charconv>
#include <utility>

#include <time.h>

#include <fmt/format.h>

#include "apps/http_text.hpp"

namespace aioloop::apps::http {

namespace {

bool iends_with(std::string_view s, std::string_view suffix) noexcept {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

} // namespace

std::string_view content_type_for(std::string_view name) noexcept {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> types{{
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/markdown; charset=utf-8"},
        {".xml", "application/xml"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},
        {".pdf", "application/pdf"},
        {".woff2", "font/woff2"},
        {".mp4", "video/mp4"},
        {".gz", "application/gzip"},
        {".tar", "application/x-tar"},
    }};
    for (const auto& [ext, type] : types) {
        if (iends_with(name, ext)) {
            return type;
        }
    }
    return "application/octet-stream";
}

std::string http_date(std::time_t t) {
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::size_t n = ::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
    std::string s(trim(text));
    struct tm tm {};
    const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') {
        return std::nullopt;
    }
    return ::timegm(&tm);
}

std::string make_etag(std::uint64_t size, std::int64_t mtime_ns) {
    return fmt::format("\"{:x}-{:x}\"", size, static_cast<std::uint64_t>(mtime_ns));
}

bool not_modified(std::string_view if_none_match,
                  std::string_view if_modified_since,
                  std::string_view etag,
                  std::time_t mtime) {
    if (!trim(if_none_match).empty()) {
        std::string_view list = if_none_match;
        while (!list.empty()) {
            std::size_t comma = list.find(',');
            std::string_view tag = trim(list.substr(0, comma));
            if (tag == "*") {
                return true;
            }
            if (tag.substr(0, 2) == "W/") {
                tag.remove_prefix(2);
            }
            if (tag == etag) {
                return true;
            }
            if (comma == std::string_view::npos) {
                break;
            }
            list.remove_prefix(comma + 1);
        }
        return false; // RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is sent
    }
    if (!if_modified_since.empty()) {
        auto since = parse_http_date(if_modified_since);
        return since && mtime <= *since;
    }
    return false;
}

bool if_range_matches(std::string_view if_range, std::string_view etag, std::time_t mtime) {
    std::string_view value = trim(if_range);
    if (value.empty()) {
        return true;
    }
    if (value.front() == '"' || value.substr(0, 2) == "W/") {
        return value == etag;
    }
    auto date = parse_http_date(value);
    return date && *date == mtime;
}

range_result parse_range(std::string_view header, std::uint64_t size) {
    range_result r;
    header = trim(header);
    if (header.substr(0, 6) != "bytes=") {
        return r;
    }
    std::string_view spec = trim(header.substr(6));
    if (spec.find(',') != std::string_view::npos) {
        return r; // several ranges: a server may answer with the whole representation
    }
    std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) {
        return r;
    }
    std::string_view a = trim(spec.substr(0, dash));
    std::string_view b = trim(spec.substr(dash + 1));
    if (a.empty()) {
        auto suffix = parse_u64(b);
        if (!suffix) {
            return r;
        }
        if (*suffix == 0 || size == 0) {
            r.kind = range_kind::unsatisfiable;
            return r;
        }
        std::uint64_t n = std::min(*suffix, size);
        r.kind = range_kind::satisfiable;
        r.range = {size - n, n};
        return r;
    }
    auto first = parse_u64(a);
    if (!first) {
        return r;
    }
    std::uint64_t last = size == 0 ? 0 : size - 1;
    if (!b.empty()) {
        auto l = parse_u64(b);
        if (!l || *l < *first) {
            return r; // invalid syntax: ignore the header (RFC 9110 14.2)
        }
        last = std::min(*l, last);
    }
    if (*first >= size) {
        r.kind = range_kind::unsatisfiable;
        return r;
    }
    r.kind = range_kind::satisfiable;
    r.range = {*first, last - *first + 1};
    return r;
}

} // namespace aioloop::apps::http
