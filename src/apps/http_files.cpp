// The open-file cache and non-blocking chunk reads of `aioloop http`.

#include "apps/http_files.hpp"

#include <algorithm>
#include <cerrno>

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/apps/http_path.hpp>
#include <aioloop/fs/direct_io.hpp>

#include "apps/http_response.hpp"

namespace aioloop::apps::http {

namespace {

std::error_code last_error() {
    return {errno, std::system_category()};
}

// cachestat(2) (6.5+), not yet in every C library's headers; the numbers and layout are ABI.
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range {
    std::uint64_t off;
    std::uint64_t len;
};
struct cachestat_counts {
    std::uint64_t nr_cache;
    std::uint64_t nr_dirty;
    std::uint64_t nr_writeback;
    std::uint64_t nr_evicted;
    std::uint64_t nr_recently_evicted;
};

} // namespace

bool range_resident(int fd, std::uint64_t offset, std::uint64_t length, bool unknown) noexcept {
    if (length == 0) {
        return true;
    }
    cachestat_range range{offset, length};
    cachestat_counts counts{};
    if (::syscall(__NR_cachestat, fd, &range, &counts, 0) != 0) {
        return unknown;
    }
    std::uint64_t pages = (offset + length + 4095) / 4096 - offset / 4096;
    return counts.nr_cache >= pages;
}

namespace {

// Runs on the pool: the open, fstat and O_DIRECT reopen of a cold path.
result<std::shared_ptr<file_entry>> open_entry(int root_fd, std::string relative, bool direct) {
    auto opened = open_beneath(root_fd, relative);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    auto entry = std::make_shared<file_entry>();
    entry->fd = opened->fd;
    entry->st = opened->st;
    entry->name = std::move(opened->relative);
    std::int64_t mtime_ns = entry->st.st_mtim.tv_sec * 1'000'000'000LL + entry->st.st_mtim.tv_nsec;
    entry->etag = make_etag(static_cast<std::uint64_t>(entry->st.st_size), mtime_ns);
    entry->last_modified = http_date(entry->st.st_mtim.tv_sec);
    entry->checked = clock::now();
    // Unknown (before 6.5): assumed resident, and the loop probes with RWF_NOWAIT as before.
    entry->resident =
        range_resident(entry->fd, 0, static_cast<std::uint64_t>(entry->st.st_size), true);
    if (direct && entry->st.st_size > 0) {
        // Reopening our own descriptor through /proc gives the same file with its own flags.
        std::string self = fmt::format("/proc/self/fd/{}", entry->fd);
        int dfd = ::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (dfd >= 0) {
            std::string why_not;
            std::size_t align = fs::dio_alignment(dfd, why_not);
            if (align == 0) {
                ::close(dfd);
            } else {
                entry->direct_fd = dfd;
                entry->dio_align = align;
            }
        }
    }
    return entry;
}

result<std::size_t> pread_some(int fd, std::span<std::byte> buf, std::uint64_t offset) {
    for (;;) {
        ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
        if (n >= 0) {
            return static_cast<std::size_t>(n);
        }
        if (errno != EINTR) {
            return tl::unexpected(last_error());
        }
    }
}

} // namespace

file_entry::~file_entry() {
    if (fd >= 0) {
        ::close(fd);
    }
    if (direct_fd >= 0) {
        ::close(direct_fd);
    }
}

file_cache::file_cache(loop& owner,
                       fs::blocking_pool& pool,
                       int root_fd,
                       file_cache_options options)
    : owner_(owner)
    , pool_(pool)
    , root_fd_(root_fd)
    , options_(options)
    , use_direct_(options.direct_io && owner.backend_name() == "aio")
    , loop_reads_are_async_(owner.backend_name() == "uring") {
}

void file_cache::insert(const std::string& relative, std::shared_ptr<file_entry> entry) {
    auto found = map_.find(relative);
    if (found != map_.end()) {
        lru_.erase(found->second);
        map_.erase(found);
    }
    lru_.emplace_front(relative, std::move(entry));
    map_[relative] = lru_.begin();
    while (map_.size() > options_.capacity) {
        // Responses still sending keep their entry (shared_ptr); the fd closes after them.
        map_.erase(lru_.back().first);
        lru_.pop_back();
        ++counters_.cache_evictions;
        if (server_counters_ != nullptr) {
            ++server_counters_->file_cache_evictions;
        }
    }
}

task<result<std::shared_ptr<file_entry>>> file_cache::open(std::string relative) {
    auto found = map_.find(relative);
    if (found != map_.end()) {
        std::shared_ptr<file_entry> entry = found->second->second;
        // Past its TTL but already being reopened for another request: serve it meanwhile
        // rather than open it once per waiting request (50 connections made 80 opens a second).
        if (clock::now() - entry->checked < options_.ttl || entry->refreshing) {
            lru_.splice(lru_.begin(), lru_, found->second);
            ++counters_.cache_hits;
            if (server_counters_ != nullptr) {
                ++server_counters_->file_cache_hits;
            }
            co_return entry;
        }
        // Past its TTL: open again (the file may have been replaced or changed), off the loop.
        entry->refreshing = true;
    }
    ++counters_.opens;
    ++counters_.cache_misses;
    if (server_counters_ != nullptr) {
        ++server_counters_->file_cache_misses;
    }
    int root = root_fd_;
    bool direct = use_direct_;
    auto job =
        pool_.run(owner_, [root, relative, direct] { return open_entry(root, relative, direct); });
    result<std::shared_ptr<file_entry>> opened = co_await std::move(job);
    if (!opened) {
        auto stale = map_.find(relative);
        if (stale != map_.end()) {
            lru_.erase(stale->second);
            map_.erase(stale);
        }
        co_return opened;
    }
    insert(relative, *opened);
    co_return opened;
}

task<result<std::span<const std::byte>>>
file_cache::read(std::shared_ptr<file_entry> file, std::span<std::byte> buf, std::uint64_t offset) {
    auto size = static_cast<std::uint64_t>(file->st.st_size);
    if (offset >= size) {
        co_return std::span<const std::byte>{};
    }
    std::size_t room = buf.size() - fs::dio_buffer_align;
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(room, size - offset));

    // 1. The page cache, without blocking: RWF_NOWAIT (4.14) fails with EAGAIN instead of
    //    waiting for the disk. Only for files that were resident when opened: on a miss the
    //    probe still queues the readahead, which is the loop's time (see file_entry::resident).
    if (file->resident) {
        struct iovec iov {
            buf.data(), want
        };
        ssize_t n = ::preadv2(file->fd, &iov, 1, static_cast<off_t>(offset), RWF_NOWAIT);
        if (n > 0) {
            ++counters_.nowait_hits;
            co_return std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n));
        }
        if (n == 0) {
            co_return std::span<const std::byte>{}; // the file shrank under us
        }
        if (errno != EAGAIN && errno != EOPNOTSUPP) {
            co_return tl::unexpected(last_error());
        }
    }

    // 2a. aio: O_DIRECT reads are truly asynchronous in io_submit; offset and length aligned.
    if (use_direct_ && file->direct_fd >= 0) {
        std::size_t align = file->dio_align;
        std::uint64_t start = offset / align * align;
        std::size_t length = buf.size() / align * align;
        auto read =
            owner_.read_at(file->direct_fd, buf.first(length), static_cast<std::int64_t>(start));
        auto got = co_await std::move(read);
        if (got) {
            ++counters_.direct_reads;
            std::size_t skip = static_cast<std::size_t>(offset - start);
            if (*got <= skip) {
                co_return std::span<const std::byte>{};
            }
            std::size_t useful = std::min<std::size_t>(*got - skip, want);
            co_return std::span<const std::byte>(buf.data() + skip, useful);
        }
        if (got.error() == std::errc::operation_canceled) {
            co_return tl::unexpected(got.error());
        }
        // EINVAL and the like: this file won't do O_DIRECT after all; read it on the pool.
    }

    // 2b. uring: the kernel hands a buffered read that would block to its own workers.
    if (loop_reads_are_async_) {
        auto read = owner_.read_at(file->fd, buf.first(want), static_cast<std::int64_t>(offset));
        auto got = co_await std::move(read);
        if (!got) {
            co_return tl::unexpected(got.error());
        }
        ++counters_.loop_reads;
        co_return std::span<const std::byte>(buf.data(), *got);
    }

    // 2c. epoll (whose read_at is a plain pread) and files without O_DIRECT: the pool.
    int fd = file->fd;
    std::byte* data = buf.data();
    auto job = pool_.run(owner_, [fd, data, want, offset] {
        return pread_some(fd, std::span<std::byte>(data, want), offset);
    });
    result<std::size_t> got = co_await std::move(job);
    if (!got) {
        co_return tl::unexpected(got.error());
    }
    ++counters_.pool_reads;
    co_return std::span<const std::byte>(buf.data(), *got);
}

} // namespace aioloop::apps::http
