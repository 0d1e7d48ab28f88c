// Answering one GET or HEAD: path, open-file cache, validators, range, then the body in chunks
// read without blocking the loop.

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

#include <aioloop/apps/http_path.hpp>

#include "apps/http_connection.hpp"
#include "apps/http_response.hpp"

namespace aioloop::apps::http {

namespace {

// Bodies up to this size are copied behind the headers, so that a small file costs one send.
constexpr std::uint64_t inline_body_limit = 16 * 1024;

void append_head(
    loop_state& state, std::string& out, int status, const request& req, const file_entry* file) {
    fmt::format_to(std::back_inserter(out),
                   "HTTP/1.1 {} {}\r\nServer: aioloop\r\n",
                   status,
                   reason_phrase(status));
    out += state.date_header();
    if (file != nullptr) {
        fmt::format_to(std::back_inserter(out),
                       "Last-Modified: {}\r\nETag: {}\r\n",
                       file->last_modified,
                       file->etag);
    }
    if (!req.keep_alive) {
        out += "Connection: close\r\n";
    } else if (req.minor_version == 0) {
        out += "Connection: keep-alive\r\n";
    }
}

// 301 to the target with a '/' after its path (the query kept).
void append_redirect(loop_state& state, std::string& out, const request& req, bool head) {
    std::size_t query = req.target.find('?');
    std::string location = req.target.substr(0, query) + "/";
    if (query != std::string::npos) {
        location += req.target.substr(query);
    }
    std::string body = fmt::format("301 Moved Permanently: {}\n", location);
    append_head(state, out, 301, req, nullptr);
    fmt::format_to(std::back_inserter(out),
                   "Location: {}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: {}\r\n\r\n",
                   location,
                   body.size());
    if (!head) {
        out += body;
    }
}

} // namespace

void append_error(loop_state& state, std::string& out, int status, bool close, bool head) {
    std::string body = fmt::format("{} {}\n", status, reason_phrase(status));
    fmt::format_to(std::back_inserter(out),
                   "HTTP/1.1 {} {}\r\nServer: aioloop\r\n",
                   status,
                   reason_phrase(status));
    out += state.date_header();
    fmt::format_to(std::back_inserter(out),
                   "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n",
                   body.size(),
                   close ? "Connection: close\r\n" : "");
    if (!head) {
        out += body;
    }
}

task<bool> send_all(net::tcp_stream* stream,
                    std::chrono::milliseconds timeout,
                    std::span<const std::byte> bytes) {
    auto write = stream->write(bytes).with_timeout(timeout);
    auto sent = co_await std::move(write);
    co_return sent.has_value();
}

task<response_outcome>
respond(net::tcp_stream* stream, std::shared_ptr<loop_state> state, request req, std::string* out) {
    response_outcome outcome;
    outcome.keep_alive = req.keep_alive;
    bool head = req.method == method::head;
    decoded_path path = decode_target_path(req.target);
    if (path.status != 0) {
        outcome.status = path.status;
        outcome.keep_alive = req.keep_alive && path.status == 404;
        append_error(*state, *out, path.status, !outcome.keep_alive, head);
        co_return outcome;
    }
    auto opening = state->cache.open(path.relative);
    result<std::shared_ptr<file_entry>> opened = co_await std::move(opening);
    bool directory =
        opened ? (*opened)->name != path.relative : opened.error() == std::errc::is_a_directory;
    if (directory && !path.directory && !path.relative.empty()) {
        // "/dir" names a directory: send the client to "/dir/", so that the index's relative
        // links resolve inside it (as nginx and Apache do).
        outcome.status = 301;
        append_redirect(*state, *out, req, head);
        co_return outcome;
    }
    if (!opened) {
        outcome.status = status_for_open_error(opened.error());
        append_error(*state, *out, outcome.status, !outcome.keep_alive, head);
        co_return outcome;
    }
    std::shared_ptr<file_entry> file = *opened;
    auto size = static_cast<std::uint64_t>(file->st.st_size);

    if (not_modified(req.if_none_match, req.if_modified_since, file->etag, file->st.st_mtime)) {
        outcome.status = 304;
        append_head(*state, *out, 304, req, file.get());
        *out += "\r\n";
        co_return outcome;
    }
    range_result range;
    if (!req.range.empty() && if_range_matches(req.if_range, file->etag, file->st.st_mtime)) {
        range = parse_range(req.range, size);
    }
    if (range.kind == range_kind::unsatisfiable) {
        outcome.status = 416;
        append_head(*state, *out, 416, req, file.get());
        fmt::format_to(std::back_inserter(*out),
                       "Content-Range: bytes */{}\r\nContent-Length: 0\r\n\r\n",
                       size);
        co_return outcome;
    }
    std::uint64_t first = 0;
    std::uint64_t length = size;
    outcome.status = 200;
    if (range.kind == range_kind::satisfiable) {
        outcome.status = 206;
        first = range.range.first;
        length = range.range.length;
    }
    append_head(*state, *out, outcome.status, req, file.get());
    fmt::format_to(std::back_inserter(*out),
                   "Content-Type: {}\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n",
                   content_type_for(file->name),
                   length);
    if (outcome.status == 206) {
        fmt::format_to(std::back_inserter(*out),
                       "Content-Range: bytes {}-{}/{}\r\n",
                       first,
                       first + length - 1,
                       size);
    }
    *out += "\r\n";
    if (head || length == 0) {
        co_return outcome;
    }

    std::uint64_t offset = first;
    std::uint64_t end = first + length;
    bool inline_body = length <= inline_body_limit;
    if (!inline_body) {
        // Headers first, so that the body goes out as it is read (or by sendfile), unbuffered.
        // Before a sendfile the head goes with MSG_MORE, to share a segment with the body.
        if (file->resident && !send_head_more(stream, *out)) {
            outcome.failed = true;
            co_return outcome;
        }
        if (!out->empty()) {
            auto sending = send_all(stream,
                                    state->shared->options.send_timeout,
                                    std::as_bytes(std::span<const char>(out->data(), out->size())));
            bool sent = co_await std::move(sending);
            out->clear();
            if (!sent) {
                outcome.failed = true;
                co_return outcome;
            }
        }
    }
    if (!inline_body && file->resident) {
        // Zero copy while the pages are in the page cache.
        auto sending = send_resident(stream, state, file, offset, end);
        sendfile_outcome sent = co_await std::move(sending);
        if (sent.failed) {
            outcome.failed = true;
            co_return outcome;
        }
        outcome.body_bytes += sent.offset - offset;
        offset = sent.offset;
        if (offset == end) {
            co_return outcome;
        }
    }
    chunk_buffer buffer(state->free_buffers, state->shared->options.chunk_size);
    while (offset < end) {
        auto reading = state->cache.read(file, buffer.span(), offset);
        result<std::span<const std::byte>> got = co_await std::move(reading);
        if (!got || got->empty()) {
            // Content-Length is promised and can't be kept (file shrank or I/O error): the only
            // honest end is closing the connection, so the client sees a short body.
            outcome.failed = true;
            co_return outcome;
        }
        std::span<const std::byte> data = got->first(
            static_cast<std::size_t>(std::min<std::uint64_t>(got->size(), end - offset)));
        offset += data.size();
        outcome.body_bytes += data.size();
        if (inline_body) {
            out->append(reinterpret_cast<const char*>(data.data()), data.size());
            continue;
        }
        auto sending = send_all(stream, state->shared->options.send_timeout, data);
        bool sent = co_await std::move(sending);
        if (!sent) {
            outcome.failed = true;
            co_return outcome;
        }
    }
    co_return outcome;
}

} // namespace aioloop::apps::http
