// The load generator's echo mode: each request is a message of a size drawn from the configured
// range, with content from the pattern below, written in chunks while its echo is read back and
// checked byte by byte.

#include <algorithm>
#include <cstring>

#include "apps/load_internal.hpp"

namespace aioloop::apps::detail {

namespace {

// Bytes written at once, and at most in flight before the echo is read back: a message bigger
// than the socket buffers would otherwise deadlock, both ends blocked writing.
constexpr std::size_t chunk_limit = 16 * 1024;
constexpr std::size_t window = 64 * 1024;

// xorshift64*: message sizes, one generator per connection.
struct size_source {
    std::uint64_t state;
    std::size_t next(std::size_t lo, std::size_t hi) noexcept {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        std::uint64_t x = state * 0x2545F4914F6CDD1DULL;
        return lo + static_cast<std::size_t>(x % (hi - lo + 1));
    }
};

class echo_exchanger final : public exchanger {
public:
    echo_exchanger(thread_state* t, std::size_t slot)
        : config_(*t->config)
        , stream_(&t->streams[slot])
        , out_(std::min(config_.max_size, chunk_limit))
        , in_(out_.size())
        , sizes_{splitmix64(config_.seed ^ (std::uint64_t{t->plans[slot].index} << 20)) | 1}
        , key_base_(splitmix64(config_.seed + 0x51ed270b27a5a1d7ULL * (t->plans[slot].index + 1))) {
    }

    // Writes the message in chunks and reads the echo back as it comes, checking it.
    task<exchange_result> exchange(std::uint64_t seq) override {
        const std::uint64_t key = key_base_ + seq * 0x9E3779B97F4A7C15ULL;
        const std::size_t size = sizes_.next(config_.min_size, config_.max_size);
        std::span<std::byte> out(out_);
        std::span<std::byte> in(in_);
        std::size_t sent = 0;
        std::size_t got = 0;
        while (got < size) {
            std::size_t n = std::min(out.size(), size - sent);
            if (sent < size && sent - got + n <= window) {
                fill_pattern(key, sent, out.first(n));
                auto written = co_await stream_->write(out.first(n));
                if (!written) {
                    co_return failed(classify(written.error()));
                }
                sent += n;
                continue;
            }
            auto read = co_await stream_->read(in.first(std::min(in.size(), sent - got)));
            if (!read) {
                co_return failed(classify(read.error()));
            }
            if (*read == 0) {
                co_return failed(outcome::closed);
            }
            if (!matches_pattern(key, got, in.first(*read))) {
                co_return failed(outcome::mismatch, "a byte of the echo differs");
            }
            got += *read;
        }
        co_return answered(size);
    }

private:
    const load_config& config_;
    net::tcp_stream* stream_;
    std::vector<std::byte> out_;
    std::vector<std::byte> in_;
    size_source sizes_;
    std::uint64_t key_base_;
};

} // namespace

std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

void fill_pattern(std::uint64_t key, std::uint64_t offset, std::span<std::byte> out) noexcept {
    std::size_t done = 0;
    while (done < out.size()) {
        std::uint64_t at = offset + done;
        std::uint64_t word = splitmix64(key + at / 8);
        std::size_t skip = at % 8;
        std::size_t n = std::min<std::size_t>(8 - skip, out.size() - done);
        std::memcpy(out.data() + done, reinterpret_cast<const std::byte*>(&word) + skip, n);
        done += n;
    }
}

bool matches_pattern(std::uint64_t key,
                     std::uint64_t offset,
                     std::span<const std::byte> in) noexcept {
    std::byte expected[512];
    for (std::size_t done = 0; done < in.size(); done += sizeof(expected)) {
        std::size_t n = std::min(sizeof(expected), in.size() - done);
        fill_pattern(key, offset + done, std::span(expected, n));
        if (std::memcmp(expected, in.data() + done, n) != 0) {
            return false;
        }
    }
    return true;
}

std::unique_ptr<exchanger> make_echo_exchanger(thread_state* t, std::size_t slot) {
    return std::make_unique<echo_exchanger>(t, slot);
}

} // namespace aioloop::apps::detail
