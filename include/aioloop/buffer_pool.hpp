#pragma once

// Fixed-size buffers lent while bytes are in flight and returned right after, so that an idle
// connection holds no buffer: memory follows the traffic, not the connection count.

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

    /// Buffers of `buffer_size` bytes; at most `keep` idle ones are kept for reuse: a burst lends
    /// many at once, and keeping them all would charge the burst to every idle connection after.
    explicit buffer_pool(std::size_t buffer_size, std::size_t keep = 16)
        : size_(buffer_size)
        , keep_(keep) {
        idle_.reserve(keep); // give_back never allocates
    }
    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;

    buffer acquire() {
        ++lent_;
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

private:
    void give_back(std::unique_ptr<std::byte[]> data) noexcept {
        --lent_;
        if (idle_.size() < keep_) {
            idle_.push_back(std::move(data));
        }
    }

    std::size_t size_;
    std::size_t keep_;
    std::size_t lent_ = 0;
    std::vector<std::unique_ptr<std::byte[]>> idle_;
};

} // namespace aioloop
