// The block buffers of `aioloop cat`: one page-aligned allocation, so that any block may be the
// target of an O_DIRECT read (stx_dio_mem_align is at most a page on every filesystem we met).

#include <cstdlib>
#include <utility>

#include "apps/cat_internal.hpp"

namespace aioloop::apps::detail {

namespace {
constexpr std::size_t page = 4096;
}

result<cat_buffers> cat_buffers::create(unsigned queue_depth, std::size_t block_size) noexcept {
    std::size_t bytes = std::size_t{queue_depth} * block_size;
    // aligned_alloc wants a size that is a multiple of the alignment.
    bytes = (bytes + page - 1) / page * page;
    void* base = std::aligned_alloc(page, bytes);
    if (base == nullptr) {
        return fail(ENOMEM);
    }
    return cat_buffers(static_cast<std::byte*>(base), queue_depth, block_size);
}

cat_buffers::cat_buffers(std::byte* base, unsigned queue_depth, std::size_t block_size) noexcept
    : base_(base)
    , queue_depth_(queue_depth)
    , block_size_(block_size) {
}

cat_buffers::cat_buffers(cat_buffers&& other) noexcept
    : base_(std::exchange(other.base_, nullptr))
    , queue_depth_(other.queue_depth_)
    , block_size_(other.block_size_) {
}

cat_buffers::~cat_buffers() {
    std::free(base_);
}

} // namespace aioloop::apps::detail
