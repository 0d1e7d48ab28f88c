#pragma once

// Files for `aioloop http`, per loop: a bounded LRU cache of open files (fd, stat, validators),
// filled and revalidated on the blocking pool, and chunk reads that never block the loop:
// RWF_NOWAIT from the page cache first; on a miss, an O_DIRECT read through AIO (aio backend),
// an io_uring read (uring), or a pread on the pool (epoll, or no O_DIRECT).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>

#include <sys/stat.h>

#include <aioloop/apps/server.hpp>
#include <aioloop/fs/blocking_pool.hpp>
#include <aioloop/loop.hpp>
#include <aioloop/result.hpp>
#include <aioloop/task.hpp>

namespace aioloop::apps::http {

struct file_entry {
    file_entry() = default;
    file_entry(const file_entry&) = delete;
    file_entry& operator=(const file_entry&) = delete;
    ~file_entry();

    int fd = -1;               ///< buffered, O_RDONLY
    int direct_fd = -1;        ///< the same file with O_DIRECT, or -1
    std::size_t dio_align = 0; ///< offset/length alignment for direct_fd
    /// Every page was in the page cache when the pool opened it (cachestat, 6.5+; assumed when
    /// the kernel can't tell). Otherwise the loop skips its RWF_NOWAIT probe: on a miss that probe
    /// still starts the readahead, and allocating and queueing megabytes of it takes the loop
    /// milliseconds (read_ahead_kb is 8192 here). Refreshed with the entry after the cache's TTL.
    bool resident = true;
    struct stat st {};
    std::string name; ///< relative path opened (index.html for directories)
    std::string etag;
    std::string last_modified;
    clock::time_point checked; ///< when it was opened; revalidated after the cache's TTL
    bool refreshing = false;   ///< being reopened on the pool after its TTL
};

/// How the chunk reads of one loop were served (for tests, --stats and docs).
struct file_read_counters {
    std::uint64_t nowait_hits = 0;     ///< preadv2(RWF_NOWAIT) served from the page cache
    std::uint64_t direct_reads = 0;    ///< O_DIRECT reads through the loop (aio)
    std::uint64_t loop_reads = 0;      ///< buffered reads through the loop (uring)
    std::uint64_t pool_reads = 0;      ///< preads on the blocking pool
    std::uint64_t sendfiles = 0;       ///< sendfile() calls for resident ranges (zero copy)
    std::uint64_t opens = 0;           ///< open_beneath() calls on the pool
    std::uint64_t cache_hits = 0;      ///< open-file cache: served from an open entry
    std::uint64_t cache_misses = 0;    ///< opened (or reopened after the TTL) on the pool
    std::uint64_t cache_evictions = 0; ///< entries dropped to stay within the capacity
};

/// Whether every page of [offset, offset + length) of `fd` is in the page cache (cachestat, 6.5+);
/// `unknown` when the kernel can't tell.
bool range_resident(int fd, std::uint64_t offset, std::uint64_t length, bool unknown) noexcept;

struct file_cache_options {
    std::size_t capacity = 1024;
    std::chrono::milliseconds ttl{1000};
    bool direct_io = true; ///< on the aio backend, read cache misses with O_DIRECT
};

class file_cache {
public:
    file_cache(loop& owner, fs::blocking_pool& pool, int root_fd, file_cache_options options);

    /// The open file for a decoded relative path; errors as open_beneath().
    task<result<std::shared_ptr<file_entry>>> open(std::string relative);

    /// Reads up to buf.size() - dio_align bytes at `offset` (buf aligned to 4096, and at least
    /// 2 * dio_align long); returns the bytes, which start somewhere inside buf. Empty: end of
    /// file.
    task<result<std::span<const std::byte>>>
    read(std::shared_ptr<file_entry> file, std::span<std::byte> buf, std::uint64_t offset);

    /// Also counts hits, misses and evictions in the server's counters (--stats, /metrics).
    void report_to(app_counters* counters) noexcept { server_counters_ = counters; }

    const file_read_counters& counters() const noexcept { return counters_; }
    file_read_counters& counters() noexcept { return counters_; }
    std::size_t size() const noexcept { return map_.size(); }

private:
    using lru_list = std::list<std::pair<std::string, std::shared_ptr<file_entry>>>;

    void insert(const std::string& relative, std::shared_ptr<file_entry> entry);

    loop& owner_;
    fs::blocking_pool& pool_;
    int root_fd_;
    file_cache_options options_;
    bool use_direct_;
    bool loop_reads_are_async_;
    lru_list lru_; // most recently used first
    std::unordered_map<std::string, lru_list::iterator> map_;
    file_read_counters counters_;
    app_counters* server_counters_ = nullptr;
};

} // namespace aioloop::apps::http
