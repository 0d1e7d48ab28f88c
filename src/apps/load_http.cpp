// The load generator's HTTP/1.1 mode: each connection sends `GET PATH HTTP/1.1` on a persistent
// connection, reads the status line and headers, then exactly Content-Length bytes of body, and
// checks the status (200), the length and, when the caller knows the file, every byte of it. No
// pipelining: a connection has one request outstanding, as in echo mode, so that the latency of
// each request is its own.

#include <algorithm>
#include <cstring>
#include <string_view>

#include "apps/http_text.hpp"
#include "apps/load_internal.hpp"

namespace aioloop::apps::detail {

namespace {

using http::iequals;
using http::trim;

// A response head bigger than this is malformed for our purpose (nginx's are ~250 bytes).
constexpr std::size_t head_limit = 16 * 1024;
constexpr std::size_t buffer_size = 64 * 1024;

bool icontains(std::string_view text, std::string_view word) noexcept {
    for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
        if (iequals(text.substr(i, word.size()), word)) {
            return true;
        }
    }
    return false;
}

struct head_info {
    bool ok = false;
    std::string why;
    unsigned status = 0;
    std::string status_line;
    std::optional<std::size_t> content_length;
    bool close = false;
};

// The status line and the headers we need, from a complete head (without the blank line).
head_info parse_head(std::string_view head) {
    head_info info;
    auto eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    info.status_line = std::string(line.substr(0, 80));
    if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ' ||
        !std::all_of(
            line.begin() + 9, line.begin() + 12, [](char c) { return c >= '0' && c <= '9'; })) {
        info.why = "malformed status line: " + info.status_line;
        return info;
    }
    info.status =
        static_cast<unsigned>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
    // HTTP/1.0 closes unless told otherwise; 1.1 keeps the connection unless told otherwise.
    bool keep_alive = line[7] == '1';
    info.close = !keep_alive;
    while (eol != std::string_view::npos) {
        head.remove_prefix(eol + 2);
        eol = head.find("\r\n");
        line = head.substr(0, eol);
        auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            info.why = "malformed header line: " + std::string(line.substr(0, 80));
            return info;
        }
        std::string_view name = line.substr(0, colon);
        std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "content-length")) {
            std::size_t n = 0;
            if (value.empty() || value.size() > 18 ||
                !std::all_of(
                    value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                info.why = "malformed Content-Length: " + std::string(value.substr(0, 40));
                return info;
            }
            for (char c : value) {
                n = n * 10 + static_cast<std::size_t>(c - '0');
            }
            info.content_length = n;
        } else if (iequals(name, "transfer-encoding")) {
            info.why = "Transfer-Encoding " + std::string(value.substr(0, 40)) +
                       " is not supported (want Content-Length)";
            return info;
        } else if (iequals(name, "connection")) {
            info.close =
                icontains(value, "close") || (info.close && !icontains(value, "keep-alive"));
        }
    }
    if (!info.content_length) {
        info.why = "no Content-Length in: " + info.status_line;
        return info;
    }
    info.ok = true;
    return info;
}

// Checks body bytes [offset, offset + got.size()) against the expected file, when known.
bool body_matches(const load_config& config, std::size_t offset, std::span<const std::byte> got) {
    if (!config.http_body) {
        return true;
    }
    const std::string& want = *config.http_body;
    return offset + got.size() <= want.size() &&
           std::memcmp(want.data() + offset, got.data(), got.size()) == 0;
}

class http_exchanger final : public exchanger {
public:
    http_exchanger(thread_state* t, std::size_t slot)
        : t_(t)
        , config_(*t->config)
        , stream_(&t->streams[slot])
        , request_("GET " + config_.http_path + " HTTP/1.1\r\nHost: " + config_.http_host +
                   "\r\n\r\n")
        , buf_(buffer_size) {}

    task<exchange_result> exchange(std::uint64_t) override {
        if (!stream_->is_open()) {
            // The last response said Connection: close; a new connection is not an error.
            auto connecting =
                net::tcp_stream::connect(*t_->ev, config_.target, config_.connect_timeout);
            auto made = co_await std::move(connecting);
            if (!made) {
                co_return failed(outcome::connect_failed, made.error().message());
            }
            *stream_ = std::move(*made);
        }
        auto answering = request_once();
        exchange_result r = co_await std::move(answering);
        if (r.kind == outcome::ok && close_) {
            stream_->close();
        }
        co_return r;
    }

private:
    // Writes the request, reads the head into buf_, then the body, checking all of it. buf_ holds
    // no bytes between requests: without pipelining the server has nothing more to send.
    task<exchange_result> request_once() {
        std::span<std::byte> buf(buf_);
        auto written = co_await stream_->write(std::as_bytes(std::span(request_)));
        if (!written) {
            co_return failed(classify(written.error()));
        }
        std::size_t have = 0;
        std::size_t head_end = std::string_view::npos;
        const std::size_t head_room = std::min(buf.size(), head_limit);
        while (head_end == std::string_view::npos) {
            if (have == head_room) {
                co_return failed(outcome::bad_response, "a response head over 16 KiB");
            }
            auto read = co_await stream_->read(buf.subspan(have, head_room - have));
            if (!read) {
                co_return failed(classify(read.error()));
            }
            if (*read == 0) {
                co_return failed(outcome::closed);
            }
            // The blank line may straddle two reads: search from 3 bytes before the new ones.
            std::size_t from = have >= 3 ? have - 3 : 0;
            have += *read;
            std::string_view text(reinterpret_cast<const char*>(buf.data()), have);
            head_end = text.find("\r\n\r\n", from);
        }
        head_info head =
            parse_head(std::string_view(reinterpret_cast<const char*>(buf.data()), head_end));
        if (!head.ok || head.status != 200) {
            co_return failed(outcome::bad_response,
                             head.ok ? "answered " + head.status_line : head.why);
        }
        std::size_t length = *head.content_length;
        if (config_.http_body && length != config_.http_body->size()) {
            co_return failed(outcome::bad_response,
                             "Content-Length " + std::to_string(length) + ", want " +
                                 std::to_string(config_.http_body->size()));
        }
        std::size_t got = have - (head_end + 4);
        if (got > length) {
            co_return failed(outcome::bad_response,
                             "bytes after the body (the client does not pipeline)");
        }
        if (!body_matches(config_, 0, buf.subspan(head_end + 4, got))) {
            co_return failed(outcome::mismatch, "the body differs from the file");
        }
        while (got < length) {
            auto read = co_await stream_->read(buf.first(std::min(buf.size(), length - got)));
            if (!read) {
                co_return failed(classify(read.error()));
            }
            if (*read == 0) {
                co_return failed(outcome::closed,
                                 "a short body: " + std::to_string(got) + " of " +
                                     std::to_string(length) + " bytes, then the connection closed");
            }
            if (!body_matches(config_, got, buf.first(*read))) {
                co_return failed(outcome::mismatch, "the body differs from the file");
            }
            got += *read;
        }
        close_ = head.close;
        co_return answered(length);
    }

    thread_state* t_;
    const load_config& config_;
    net::tcp_stream* stream_;
    std::string request_;
    std::vector<std::byte> buf_;
    bool close_ = false; ///< the last response said the server closes the connection after it
};

} // namespace

std::unique_ptr<exchanger> make_http_exchanger(thread_state* t, std::size_t slot) {
    return std::make_unique<http_exchanger>(t, slot);
}

} // namespace aioloop::apps::detail
