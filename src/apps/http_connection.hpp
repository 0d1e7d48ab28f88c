#pragma once

// What the connections of one loop share in `aioloop http`, and the coroutine that answers one
// parsed request.

#include <cstddef>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <aioloop/apps/http.hpp>
#include <aioloop/fs/blocking_pool.hpp>
#include <aioloop/net/tcp_stream.hpp>

#include "apps/http_files.hpp"

namespace aioloop::apps::http {

/// Shared by every loop of a server: the root directory and the access log.
struct server_shared {
    server_shared() = default;
    server_shared(const server_shared&) = delete;
    server_shared& operator=(const server_shared&) = delete;
    ~server_shared();

    http_options options;
    int root_fd = -1;
    std::FILE* log = nullptr;
    bool close_log = false;
};

/// A page-aligned buffer of chunk_size + 4096 bytes, lent by a loop's free list.
class chunk_buffer {
public:
    chunk_buffer(std::vector<std::byte*>& free_list, std::size_t size);
    chunk_buffer(const chunk_buffer&) = delete;
    chunk_buffer& operator=(const chunk_buffer&) = delete;
    ~chunk_buffer();
    std::span<std::byte> span() noexcept { return {data_, size_}; }

private:
    std::vector<std::byte*>* free_list_;
    std::byte* data_;
    std::size_t size_;
};

/// One loop's state. Members are destroyed in reverse: the cache closes its files before the
/// pool joins its threads.
struct loop_state {
    loop_state(loop& owner, std::shared_ptr<server_shared> shared);
    ~loop_state();

    /// "Date: ...\r\n" for this second.
    const std::string& date_header();

    loop& owner;
    std::shared_ptr<server_shared> shared;
    fs::blocking_pool pool;
    file_cache cache;
    std::vector<std::byte*> free_buffers;
    std::time_t date_second = 0;
    std::string date_line;
};

struct response_outcome {
    int status = 0;
    std::uint64_t body_bytes = 0;
    bool keep_alive = false; ///< false: close the connection after it
    bool failed = false;     ///< the connection broke while sending
};

/// Appends the answer to `req` to *out, or sends *out and the body itself for large files.
task<response_outcome>
respond(net::tcp_stream* stream, std::shared_ptr<loop_state> state, request req, std::string* out);

struct sendfile_outcome {
    std::uint64_t offset = 0; ///< how far the body went out
    bool failed = false;      ///< the connection broke, or the file shrank
};

/// Sends the head in *out without waiting (MSG_MORE), erasing what went; false when it broke.
bool send_head_more(net::tcp_stream* stream, std::string& out);

/// Sends [offset, end) of `file` with sendfile() for as long as its pages are resident; returns
/// where it stopped (end, or the first range that needs reading).
task<sendfile_outcome> send_resident(net::tcp_stream* stream,
                                     std::shared_ptr<loop_state> state,
                                     std::shared_ptr<file_entry> file,
                                     std::uint64_t offset,
                                     std::uint64_t end);

/// Appends a complete error answer (text body) to *out; `close` adds Connection: close.
void append_error(loop_state& state, std::string& out, int status, bool close, bool head);

/// Sends all of `bytes` within the send timeout; false when the connection broke.
task<bool> send_all(net::tcp_stream* stream,
                    std::chrono::milliseconds timeout,
                    std::span<const std::byte> bytes);

} // namespace aioloop::apps::http
