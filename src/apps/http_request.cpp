// HTTP/1.x request parsing (RFC 9112): request line, header fields, limits. Lines may end in CRLF
// or a bare LF (RFC 9112 2.2 allows a recipient to accept LF alone).

#include <algorithm>
#include <charconv>

#include <aioloop/apps/http_request.hpp>

#include "apps/http_text.hpp"

namespace aioloop::apps::http {

namespace {

bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Field values may hold visible characters, spaces, tabs and obs-text, never other controls.
bool valid_value(std::string_view s) noexcept {
    return std::none_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && u != '\t') || u == 0x7f;
    });
}

// The request target: visible ASCII only (no spaces, controls, or raw bytes >= 0x80).
bool valid_target(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
    });
}

parse_result fail(int status) {
    parse_result r;
    r.status = parse_status::error;
    r.error_status = status;
    return r;
}

// Splits the next line off `rest`; nullopt-like false when there is no line end yet.
bool next_line(std::string_view& rest, std::string_view& line) noexcept {
    std::size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) {
        return false;
    }
    line = rest.substr(0, lf);
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    rest.remove_prefix(lf + 1);
    return true;
}

// "HTTP/1.1" -> 1; sets status to 400 (malformed) or 505 (not 1.x) otherwise.
int parse_version(std::string_view v, int& status) noexcept {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9') {
        status = 400;
        return -1;
    }
    if (v[5] != '1') {
        status = 505;
        return -1;
    }
    return v[7] - '0';
}

// Connection: a comma-separated list of tokens; close wins over keep-alive.
void apply_connection(std::string_view value, bool& keep_alive, bool& saw_close) noexcept {
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view item = trim(value.substr(0, comma));
        if (iequals(item, "close")) {
            saw_close = true;
        } else if (iequals(item, "keep-alive")) {
            keep_alive = true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
}

} // namespace

parse_result parse_request(std::string_view bytes, const request_limits& limits) {
    std::size_t skipped = 0;
    // RFC 9112 2.2: ignore at least one empty line before the request line.
    while (skipped < bytes.size() && (bytes[skipped] == '\r' || bytes[skipped] == '\n')) {
        ++skipped;
    }
    std::string_view rest = bytes.substr(skipped);
    std::string_view line;
    if (!next_line(rest, line)) {
        // No whole request line yet: a target that is already too long is 414, else wait.
        std::size_t first_space = rest.find(' ');
        if (first_space != std::string_view::npos &&
            rest.size() - first_space - 1 > limits.max_target) {
            return fail(414);
        }
        if (rest.size() > limits.max_header_bytes) {
            return fail(431);
        }
        return {};
    }

    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        return fail(400);
    }
    std::string_view method_text = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method_text) || target.empty()) {
        return fail(400);
    }
    if (target.size() > limits.max_target) {
        return fail(414);
    }
    if (!valid_target(target)) {
        return fail(400);
    }
    int version_status = 0;
    int minor = parse_version(version, version_status);
    if (minor < 0) {
        return fail(version_status);
    }

    parse_result r;
    request& req = r.req;
    req.minor_version = minor;
    if (method_text == "GET") {
        req.method = method::get;
    } else if (method_text == "HEAD") {
        req.method = method::head;
    } else {
        return fail(405);
    }
    // Absolute form (RFC 9112 3.2.2): keep the path; the authority replaces Host.
    std::string_view authority;
    if (target.size() > 7 && iequals(target.substr(0, 7), "http://")) {
        std::string_view after = target.substr(7);
        std::size_t slash = after.find('/');
        authority = after.substr(0, slash);
        target = slash == std::string_view::npos ? std::string_view("/") : after.substr(slash);
    }
    if (target.front() != '/') {
        return fail(400);
    }
    req.target.assign(target);

    bool saw_close = false;
    bool keep_alive_token = false;
    bool saw_host = false;
    bool saw_length = false;
    std::uint64_t content_length = 0;
    std::size_t count = 0;
    for (;;) {
        if (!next_line(rest, line)) {
            if (bytes.size() > limits.max_header_bytes) {
                return fail(431);
            }
            return {};
        }
        if (line.empty()) {
            break;
        }
        if (++count > limits.max_headers) {
            return fail(431);
        }
        // obs-fold (a line starting with whitespace) is refused, RFC 9112 5.2.
        if (line.front() == ' ' || line.front() == '\t') {
            return fail(400);
        }
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
            return fail(400); // also "Name : value": no whitespace before the colon (5.1)
        }
        std::string_view name = line.substr(0, colon);
        std::string_view value = trim(line.substr(colon + 1));
        if (!valid_value(value)) {
            return fail(400);
        }
        if (iequals(name, "host")) {
            if (saw_host) {
                return fail(400);
            }
            saw_host = true;
            req.host.assign(value);
        } else if (iequals(name, "connection")) {
            apply_connection(value, keep_alive_token, saw_close);
        } else if (iequals(name, "transfer-encoding")) {
            return fail(501);
        } else if (iequals(name, "content-length")) {
            std::uint64_t n = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
                (saw_length && n != content_length)) {
                return fail(400);
            }
            saw_length = true;
            content_length = n;
        } else if (iequals(name, "if-none-match")) {
            req.if_none_match.assign(value);
        } else if (iequals(name, "if-modified-since")) {
            req.if_modified_since.assign(value);
        } else if (iequals(name, "range")) {
            req.range.assign(value);
        } else if (iequals(name, "if-range")) {
            req.if_range.assign(value);
        }
    }
    std::size_t consumed = bytes.size() - rest.size();
    if (consumed > limits.max_header_bytes) {
        return fail(431);
    }
    if (content_length > 0) {
        return fail(413); // no request bodies are taken
    }
    if (!authority.empty()) {
        req.host.assign(authority);
    } else if (minor >= 1 && !saw_host) {
        return fail(400); // RFC 9112 3.2: a 1.1 request without Host
    }
    req.keep_alive = !saw_close && (minor >= 1 || keep_alive_token);
    r.status = parse_status::complete;
    r.consumed = consumed;
    return r;
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

} // namespace aioloop::apps::http
