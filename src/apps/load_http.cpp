// The load generator's HTTP/1.1 mode: each connection sends `GET PATH HTTP/1.1` on a persistent
// connection, reads the status line and headers, then exactly Content-Length bytes of body, and
// checks the status (200), the length and, when the caller knows the file, every byte of it. No
// pipelining: a connection has one request outstanding, as in echo mode, so that the latency of
// each request is its own.

#include <algorithm>
#include <cstring>
#include <string_view>

#include "apps/load_internal.hpp"

namespace aioloop::apps::detail {

namespace {

// A response head bigger than this is malformed for our purpose (nginx's are ~250 bytes).
constexpr std::size_t head_limit = 16 * 1024;
constexpr std::size_t buffer_size = 64 * 1024;

enum class outcome { ok, bad_response, mismatch, reset, closed, timeout, other };

struct response {
    outcome kind = outcome::ok;
    std::size_t body = 0;
    bool close = false; ///< the server said it closes the connection after this response
    std::string why;    ///< for first_error
};

outcome classify(std::error_code error) noexcept {
    if (error == std::errc::connection_reset || error == std::errc::broken_pipe) {
        return outcome::reset;
    }
    if (error == std::errc::operation_canceled || error == std::errc::timed_out) {
        return outcome::timeout;
    }
    return outcome::other;
}

void count(load_errors& errors, outcome kind) noexcept {
    switch (kind) {
    case outcome::ok:
        break;
    case outcome::bad_response:
        ++errors.bad_responses;
        break;
    case outcome::mismatch:
        ++errors.mismatches;
        break;
    case outcome::reset:
        ++errors.resets;
        break;
    case outcome::closed:
        ++errors.closed;
        break;
    case outcome::timeout:
        ++errors.timeouts;
        break;
    case outcome::other:
        ++errors.other;
        break;
    }
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);
           });
}

bool icontains(std::string_view text, std::string_view word) noexcept {
    for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
        if (iequals(text.substr(i, word.size()), word)) {
            return true;
        }
    }
    return false;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
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

// One request: writes it, reads the head into `buf`, then the body, checking all of it. `buf`
// holds no bytes between requests: without pipelining the server has nothing more to send.
task<response> exchange(net::tcp_stream* stream,
                        const load_config* config,
                        std::span<const std::byte> request,
                        std::span<std::byte> buf) {
    response r;
    auto written = co_await stream->write(request);
    if (!written) {
        r.kind = classify(written.error());
        co_return r;
    }
    std::size_t have = 0;
    std::size_t head_end = std::string_view::npos;
    while (head_end == std::string_view::npos) {
        if (have == std::min(buf.size(), head_limit)) {
            r.kind = outcome::bad_response;
            r.why = "a response head over 16 KiB";
            co_return r;
        }
        auto read =
            co_await stream->read(buf.subspan(have, std::min(buf.size(), head_limit) - have));
        if (!read) {
            r.kind = classify(read.error());
            co_return r;
        }
        if (*read == 0) {
            r.kind = outcome::closed;
            co_return r;
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
        r.kind = outcome::bad_response;
        r.why = head.ok ? "answered " + head.status_line : head.why;
        co_return r;
    }
    std::size_t length = *head.content_length;
    if (config->http_body && length != config->http_body->size()) {
        r.kind = outcome::bad_response;
        r.why = "Content-Length " + std::to_string(length) + ", want " +
                std::to_string(config->http_body->size());
        co_return r;
    }
    std::size_t got = have - (head_end + 4);
    if (got > length) {
        r.kind = outcome::bad_response;
        r.why = "bytes after the body (the client does not pipeline)";
        co_return r;
    }
    if (!body_matches(*config, 0, buf.subspan(head_end + 4, got))) {
        r.kind = outcome::mismatch;
        co_return r;
    }
    while (got < length) {
        auto read = co_await stream->read(buf.first(std::min(buf.size(), length - got)));
        if (!read) {
            r.kind = classify(read.error());
            co_return r;
        }
        if (*read == 0) {
            r.kind = outcome::closed;
            r.why = "a short body: " + std::to_string(got) + " of " + std::to_string(length) +
                    " bytes, then the connection closed";
            co_return r;
        }
        if (!body_matches(*config, got, buf.first(*read))) {
            r.kind = outcome::mismatch;
            co_return r;
        }
        got += *read;
    }
    r.body = length;
    r.close = head.close;
    co_return r;
}

std::string describe(const response& r, const net::address& peer) {
    const char* what = "failed";
    switch (r.kind) {
    case outcome::bad_response:
        what = "sent a bad response";
        break;
    case outcome::mismatch:
        what = "sent a body different from the file";
        break;
    case outcome::reset:
        what = "reset the connection";
        break;
    case outcome::closed:
        what = "closed the connection mid-response";
        break;
    case outcome::timeout:
        what = "left a request unanswered";
        break;
    default:
        break;
    }
    return peer.to_string() + " " + what + (r.why.empty() ? "" : ": " + r.why);
}

load_interval& interval_at(thread_state& t, clock::time_point when) {
    auto width = std::chrono::duration_cast<clock::duration>(t.config->interval);
    auto index = static_cast<std::size_t>(std::max<clock::rep>(0, (when - t.start) / width));
    if (index >= t.result.intervals.size()) {
        t.result.intervals.resize(index + 1);
    }
    return t.result.intervals[index];
}

} // namespace

task<void> run_http_connection(thread_state* t, std::size_t slot) {
    const load_config& config = *t->config;
    const connection_plan plan = t->plans[slot];
    net::tcp_stream* stream = &t->streams[slot];
    std::string request_text =
        "GET " + config.http_path + " HTTP/1.1\r\nHost: " + config.http_host + "\r\n\r\n";
    auto request = std::as_bytes(std::span(request_text));
    std::vector<std::byte> buf(buffer_size);
    bool open_loop = plan.period.count() > 0;
    clock::time_point scheduled = t->start + plan.phase;
    for (std::uint64_t seq = 0; plan.requests == 0 || seq < plan.requests; ++seq) {
        clock::time_point now = clock::now();
        if (t->stop_sending || (!open_loop && t->deadline && now >= *t->deadline)) {
            break;
        }
        clock::time_point begin = now;
        if (open_loop) {
            if (t->deadline && scheduled >= *t->deadline) {
                break;
            }
            if (scheduled > now) {
                auto slept = co_await t->ev->sleep_until(scheduled);
                if (!slept) {
                    break;
                }
            } else if (seq > 0) {
                ++t->result.late_requests;
            }
            begin = scheduled; // latency counts from when the request was due
            scheduled += plan.period;
        }
        if (!stream->is_open()) {
            // The last response said Connection: close; a new connection is not an error.
            auto connecting =
                net::tcp_stream::connect(*t->ev, config.target, config.connect_timeout);
            auto made = co_await std::move(connecting);
            if (!made) {
                ++t->result.errors.connect_failures;
                if (t->first_error.empty()) {
                    t->first_error =
                        "reconnect to " + config.target.to_string() + ": " + made.error().message();
                }
                break;
            }
            *stream = std::move(*made);
        }
        auto exchanging = exchange(stream, &config, request, buf);
        response r = co_await std::move(exchanging);
        clock::time_point end = clock::now();
        load_interval& slice = interval_at(*t, end);
        if (r.kind != outcome::ok) {
            count(t->result.errors, r.kind);
            if (t->first_error.empty()) {
                t->first_error = describe(r, config.target);
            }
            ++slice.errors;
            break;
        }
        auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
        ++t->result.requests;
        t->result.bytes += r.body;
        t->result.latency.record(ns);
        ++slice.requests;
        slice.bytes += r.body;
        slice.latency.record(ns);
        t->last_end = std::max(t->last_end, end);
        if (r.close) {
            stream->close();
        }
    }
    stream->close();
    t->running.done();
}

} // namespace aioloop::apps::detail
