// `aioloop http`: one task per connection reads requests, parses each pipelined one in turn and
// answers them in order, within a request-head timeout and an idle keep-alive timeout.

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/apps/http.hpp>
#include <aioloop/fs/direct_io.hpp>

#include "apps/http_connection.hpp"
#include "apps/http_response.hpp"

namespace aioloop::apps {

namespace http {

server_shared::~server_shared() {
    if (root_fd >= 0) {
        ::close(root_fd);
    }
    if (close_log && log != nullptr) {
        std::fclose(log);
    }
}

chunk_buffer::chunk_buffer(std::vector<std::byte*>& free_list, std::size_t size)
    : free_list_(&free_list)
    , size_(size + fs::dio_buffer_align) {
    if (!free_list.empty()) {
        data_ = free_list.back();
        free_list.pop_back();
    } else {
        // Page aligned for O_DIRECT; the extra page is room for aligning the read's start down.
        data_ = static_cast<std::byte*>(std::aligned_alloc(fs::dio_buffer_align, size_));
        if (data_ == nullptr) {
            std::abort();
        }
    }
}

chunk_buffer::~chunk_buffer() {
    // Keep a few for the next responses; more than that were a burst.
    if (free_list_->size() < 16) {
        free_list_->push_back(data_);
    } else {
        std::free(data_);
    }
}

loop_state::loop_state(loop& ev, std::shared_ptr<server_shared> s)
    : owner(ev)
    , shared(std::move(s))
    , pool(shared->options.pool_threads)
    , cache(ev,
            pool,
            shared->root_fd,
            {.capacity = shared->options.cache_entries,
             .ttl = shared->options.cache_ttl,
             .direct_io = shared->options.direct_io}) {
}

loop_state::~loop_state() {
    for (std::byte* b : free_buffers) {
        std::free(b);
    }
}

const std::string& loop_state::date_header() {
    std::time_t now = std::time(nullptr);
    if (now != date_second) {
        date_second = now;
        date_line = fmt::format("Date: {}\r\n", http_date(now));
    }
    return date_line;
}

namespace {

void log_access(loop_state& state,
                const std::string& peer,
                const request& req,
                const response_outcome& outcome) {
    if (state.shared->log == nullptr) {
        return;
    }
    // One fwrite per line: stdio locks the stream per call, so lines from loops don't interleave.
    std::string line = fmt::format("{} [{}] \"{} {} HTTP/1.{}\" {} {}\n",
                                   peer,
                                   http_date(std::time(nullptr)),
                                   req.method == method::head ? "HEAD" : "GET",
                                   req.target,
                                   req.minor_version,
                                   outcome.status,
                                   outcome.body_bytes);
    std::fwrite(line.data(), 1, line.size(), state.shared->log);
}

std::span<const std::byte> bytes_of(const std::string& s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// FIN after the last answer, then read and drop what the client still sends for a while: closing
// with unread bytes (pipelined requests we won't answer) would send a RST, and a RST makes the
// client's kernel drop answers it has received but not yet read (nginx's lingering_close).
task<void> linger_close(net::tcp_stream* stream, std::vector<std::byte>& scratch) {
    if (!stream->shutdown_write()) {
        co_return;
    }
    clock::time_point deadline = clock::now() + std::chrono::seconds(2);
    for (;;) {
        auto reading = stream->read(scratch).with_deadline(deadline);
        auto n = co_await std::move(reading);
        if (!n || *n == 0) {
            co_return;
        }
    }
}

task<void>
serve_connection(net::tcp_stream stream, connection_context ctx, std::shared_ptr<loop_state> st) {
    const http_options& options = st->shared->options;
    st->cache.report_to(&ctx.counters); // the same server-wide counters for every connection
    std::string peer = st->shared->log != nullptr ? stream.peer().to_string() : std::string();
    std::string in;
    std::string out;
    std::vector<std::byte> rbuf(16 * 1024);
    clock::time_point request_start{};
    for (;;) {
        // Answer every complete request already here, in order (pipelining).
        bool close_after = false;
        while (!in.empty()) {
            parse_result parsed = parse_request(in, options.limits);
            if (parsed.status == parse_status::incomplete) {
                break;
            }
            if (parsed.status == parse_status::error) {
                append_error(*st, out, parsed.error_status, true, false);
                close_after = true;
                break;
            }
            in.erase(0, parsed.consumed);
            ++ctx.counters.requests;
            auto answering = respond(&stream, st, parsed.req, &out);
            response_outcome outcome = co_await std::move(answering);
            log_access(*st, peer, parsed.req, outcome);
            if (outcome.failed) {
                co_return;
            }
            ctx.counters.bytes_out += outcome.body_bytes;
            if (!outcome.keep_alive) {
                close_after = true;
                break;
            }
            if (out.size() >= 64 * 1024) {
                auto sending = send_all(&stream, options.send_timeout, bytes_of(out));
                bool sent = co_await std::move(sending);
                out.clear();
                if (!sent) {
                    co_return;
                }
            }
            request_start = clock::now(); // the next pipelined request's head starts now
        }
        if (!out.empty()) {
            auto sending = send_all(&stream, options.send_timeout, bytes_of(out));
            bool sent = co_await std::move(sending);
            out.clear();
            if (!sent) {
                co_return;
            }
        }
        if (close_after) {
            auto closing = linger_close(&stream, rbuf);
            co_await std::move(closing);
            co_return;
        }
        clock::time_point deadline = in.empty() ? clock::now() + options.keepalive_timeout
                                                : request_start + options.header_timeout;
        auto reading = stream.read(rbuf).with_deadline(deadline);
        auto n = co_await std::move(reading);
        if (!n) {
            if (n.error() == std::errc::timed_out && !in.empty()) {
                // A slow client that started a request and did not finish its head in time.
                append_error(*st, out, 408, true, false);
                auto sending = send_all(&stream, options.send_timeout, bytes_of(out));
                co_await std::move(sending);
                auto closing = linger_close(&stream, rbuf);
                co_await std::move(closing);
            }
            co_return;
        }
        if (*n == 0) {
            co_return;
        }
        if (in.empty()) {
            request_start = clock::now();
        }
        ctx.counters.bytes_in += *n;
        in.append(reinterpret_cast<const char*>(rbuf.data()), *n);
    }
}

} // namespace

} // namespace http

result<handler_factory> make_http_handler(http_options options) {
    auto shared = std::make_shared<http::server_shared>();
    shared->root_fd = ::open(options.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shared->root_fd < 0) {
        return tl::unexpected(std::error_code(errno, std::system_category()));
    }
    if (options.access_log == "-") {
        shared->log = stdout;
    } else if (!options.access_log.empty()) {
        shared->log = std::fopen(options.access_log.c_str(), "ae");
        if (shared->log == nullptr) {
            return tl::unexpected(std::error_code(errno, std::system_category()));
        }
        shared->close_log = true;
    }
    if (shared->log != nullptr) {
        std::setvbuf(shared->log, nullptr, _IOLBF, 0);
    }
    // sendfile() has no MSG_NOSIGNAL: a client gone mid-body must not kill the server. Only when
    // nobody chose a handler (the aio backend does the same).
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGPIPE, &ignore, nullptr);
    }
    options.chunk_size = std::max<std::size_t>(
        options.chunk_size / fs::dio_buffer_align * fs::dio_buffer_align, fs::dio_buffer_align);
    shared->options = std::move(options);
    handler_factory factory = [shared](loop& owner) -> connection_handler {
        auto state = std::make_shared<http::loop_state>(owner, shared);
        return [state](net::tcp_stream stream, connection_context ctx) {
            return http::serve_connection(std::move(stream), ctx, state);
        };
    };
    return factory;
}

} // namespace aioloop::apps
