#pragma once

// The pure parts of answering a request: content types, HTTP dates, entity tags, conditional
// requests and byte ranges. No I/O, so each is unit-tested on its own.

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace aioloop::apps::http {

/// Content-Type from the file name's extension; application/octet-stream when unknown.
std::string_view content_type_for(std::string_view name) noexcept;

/// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7 IMF-fixdate).
std::string http_date(std::time_t t);
/// Parses an IMF-fixdate; nullopt for anything else.
std::optional<std::time_t> parse_http_date(std::string_view text);

/// A strong validator from size and modification time: "\"<size hex>-<mtime ns hex>\"".
std::string make_etag(std::uint64_t size, std::int64_t mtime_ns);

/// True when the request's conditions make the answer 304: If-None-Match (weak comparison,
/// RFC 9110 13.1.2) when present, else If-Modified-Since against `mtime`.
bool not_modified(std::string_view if_none_match,
                  std::string_view if_modified_since,
                  std::string_view etag,
                  std::time_t mtime);

/// Whether an If-Range value lets Range apply (RFC 9110 13.1.5): an entity tag must equal `etag`
/// (strong comparison: a weak tag never matches), a date must equal the Last-Modified second.
/// An empty value always does.
bool if_range_matches(std::string_view if_range, std::string_view etag, std::time_t mtime);

struct byte_range {
    std::uint64_t first = 0;
    std::uint64_t length = 0;
};

enum class range_kind : std::uint8_t {
    none,          ///< no Range, or one we ignore (not bytes, several ranges): serve it all
    satisfiable,   ///< 206 with `range`
    unsatisfiable, ///< 416
};

struct range_result {
    range_kind kind = range_kind::none;
    byte_range range;
};

/// A single "bytes=a-b", "bytes=a-" or "bytes=-n" against a file of `size` bytes.
range_result parse_range(std::string_view header, std::uint64_t size);

} // namespace aioloop::apps::http
