#pragma once

// Fixed-size buffers lent while bytes are in flight and returned right after, so that an idle
// connection holds no buffer: memory follows the traffic, not the connection count.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace aioloop {

class buffer_pool {
public:
    class buffer {
    public:
        buffer() = default;
        buffer(buffer&& other) noexcept
            : pool_(std::exchange(other.pool_, nullptr))
            , data_(std::move(other.data_)) {}
        buffer& operator=(buffer&& other) noexcept {
            if (this != &other) {
                release();
                pool_ = std::exchange(other.pool_, nullptr);
                data_ = std::move(other.data_);
            }
            return *this;
        }
        ~buffer() { release(); }

        std::span<std::byte> span() const noexcept {
            return {data_.get(), pool_ ? pool_->size_ : 0};
        }
        std::byte* data() const noexcept { return data_.get(); }
        std::size_t size() const noexcept { return pool_ ? pool_->size_ : 0; }
        /// Gives the buffer back to its pool now.
        void release() noexcept {
            if (pool_ != nullptr) {
                pool_->give_back(std::move(data_));
                pool_ = nullptr;
            }
        }

    private:
        friend class buffer_pool;
        buffer(buffer_pool* pool, std::unique_ptr<std::byte[]> data) noexcept
            : pool_(pool)
            , data_(std::move(data)) {}

        buffer_pool* pool_ = nullptr;
        std::unique_ptr<std::byte[]> data_;
    };

    /// Buffers of `buffer_size` bytes. Idle ones are kept for reuse up to the most that were lent
    /// at once lately, and at least `keep`: a steady load of N transfers at a time reuses N
    /// buffers instead of allocating and freeing one per transfer, while a burst that has passed
    /// stops counting once `window` more buffers were lent at a lower level (its extra idle
    /// buffers are freed then), so that it isn't charged to every idle connection after it.
    explicit buffer_pool(std::size_t buffer_size, std::size_t keep = 16, std::size_t window = 4096)
        : size_(buffer_size)
        , keep_(keep)
        , window_(window == 0 ? 1 : window)
        , limit_(keep) {
        idle_.reserve(keep); // give_back never allocates
    }
    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;

    buffer acquire() {
        if (++acquired_ % window_ == 0) {
            end_window();
        }
        ++lent_;
        if (lent_ > peak_) {
            peak_ = lent_;
            if (idle_.capacity() < peak_) {
                idle_.reserve(peak_); // here, where allocating may throw; give_back can't
            }
        }
        if (!idle_.empty()) {
            auto data = std::move(idle_.back());
            idle_.pop_back();
            return buffer(this, std::move(data));
        }
        return buffer(this, std::make_unique_for_overwrite<std::byte[]>(size_));
    }

    std::size_t buffer_size() const noexcept { return size_; }
    /// Buffers out on loan now.
    std::size_t lent() const noexcept { return lent_; }
    /// Buffers kept idle for reuse now.
    std::size_t idle() const noexcept { return idle_.size(); }

private:
    void give_back(std::unique_ptr<std::byte[]> data) noexcept {
        --lent_;
        if (idle_.size() < std::max(limit_, peak_)) {
            idle_.push_back(std::move(data));
        }
    }

    // The last window's peak becomes the next window's limit; idle buffers above it are freed.
    void end_window() noexcept {
        limit_ = std::max(keep_, peak_);
        peak_ = lent_;
        while (idle_.size() > limit_) {
            idle_.pop_back();
        }
    }

    std::size_t size_;
    std::size_t keep_;
    std::size_t window_;
    std::size_t limit_;        // idle buffers kept: the last window's peak, at least keep_
    std::size_t peak_ = 0;     // the most lent at once in this window
    std::size_t acquired_ = 0; // acquisitions so far, for the windows
    std::size_t lent_ = 0;
    std::vector<std::unique_ptr<std::byte[]>> idle_;
};

} // namespace aioloop
