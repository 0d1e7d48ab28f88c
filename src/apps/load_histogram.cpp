#include <algorithm>
#include <bit>
#include <cmath>

#include <aioloop/apps/load.hpp>

namespace aioloop::apps {

namespace {

constexpr std::uint64_t exact_limit = 128;
constexpr std::uint64_t largest = (std::uint64_t{1} << (latency_histogram::max_exponent + 7)) - 1;

} // namespace

// Above 128, a value v with bit width w sits in exponent e = w - 7, where v >> e is in [64, 128):
// 64 sub-buckets of width 2^e each.
std::size_t latency_histogram::bucket_of(std::uint64_t ns) noexcept {
    ns = std::min(ns, largest);
    if (ns < exact_limit) {
        return static_cast<std::size_t>(ns);
    }
    auto e = static_cast<unsigned>(std::bit_width(ns)) - 7;
    return exact_limit + (e - 1) * 64 + static_cast<std::size_t>((ns >> e) - 64);
}

std::uint64_t latency_histogram::bucket_low(std::size_t bucket) noexcept {
    if (bucket < exact_limit) {
        return bucket;
    }
    std::size_t e = (bucket - exact_limit) / 64 + 1;
    std::uint64_t sub = (bucket - exact_limit) % 64 + 64;
    return sub << e;
}

std::uint64_t latency_histogram::bucket_high(std::size_t bucket) noexcept {
    if (bucket < exact_limit) {
        return bucket;
    }
    std::size_t e = (bucket - exact_limit) / 64 + 1;
    return bucket_low(bucket) + (std::uint64_t{1} << e) - 1;
}

void latency_histogram::record(std::uint64_t ns) noexcept {
    ++counts_[bucket_of(ns)];
    ++count_;
    min_ = std::min(min_, ns);
    max_ = std::max(max_, ns);
    sum_ += static_cast<long double>(ns);
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) {
        counts_[i] += other.counts_[i];
    }
    count_ += other.count_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
}

double latency_histogram::mean() const noexcept {
    return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
}

std::uint64_t latency_histogram::percentile(double percent) const noexcept {
    if (count_ == 0) {
        return 0;
    }
    if (percent >= 100.0) {
        return max_;
    }
    auto wanted = static_cast<std::uint64_t>(
        std::ceil(std::max(percent, 0.0) / 100.0 * static_cast<double>(count_)));
    wanted = std::clamp<std::uint64_t>(wanted, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen >= wanted) {
            // The midpoint halves the bucket's error; the exact extremes bound it.
            std::uint64_t mid = bucket_low(i) + (bucket_high(i) - bucket_low(i)) / 2;
            return std::clamp(mid, min_, max_);
        }
    }
    return max_;
}

} // namespace aioloop::apps
