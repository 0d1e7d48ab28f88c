#pragma once

// The HTTP/1.x request parser of `aioloop http`: a pure function over the bytes received so far.
// It takes GET and HEAD without a body and answers everything else with the status to send.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aioloop::apps::http {

enum class method : std::uint8_t { get, head };

struct request_limits {
    std::size_t max_header_bytes = 16 * 1024; ///< request line + headers + blank line
    std::size_t max_headers = 100;
    std::size_t max_target = 8 * 1024; ///< longer request targets get 414
};

struct request {
    http::method method = method::get;
    std::string target; ///< origin-form path and query, as sent ("/a%20b?x=1")
    int minor_version = 1;
    bool keep_alive = true; ///< after HTTP/1.0 and 1.1 defaults and Connection
    std::string host;
    std::string if_none_match;
    std::string if_modified_since;
    std::string range;
    std::string if_range; ///< an ETag or a date: Range applies only if it still matches
};

enum class parse_status : std::uint8_t {
    complete,   ///< `req` holds a request of `consumed` bytes
    incomplete, ///< need more bytes
    error,      ///< answer `error_status`, then close
};

struct parse_result {
    parse_status status = parse_status::incomplete;
    std::size_t consumed = 0; ///< bytes of the request, when complete (pipelined ones follow)
    int error_status = 0;     ///< 400, 405, 413, 414, 431, 501, 505
    request req;
};

/// Parses the request at the start of `bytes`. Blank lines before it are skipped (RFC 9112 2.2).
parse_result parse_request(std::string_view bytes, const request_limits& limits = {});

/// The reason phrase for a status code ("Not Found"); "Unknown" for others.
std::string_view reason_phrase(int status) noexcept;

} // namespace aioloop::apps::http
