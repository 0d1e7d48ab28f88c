#include <bit>

#include <fmt/format.h>

#include <aioloop/sys/aio.hpp>

namespace aioloop::sys {

std::size_t aio_counters::bucket_of(std::size_t n) noexcept {
    std::size_t bucket = static_cast<std::size_t>(std::bit_width(n)) - 1;
    return bucket < batch_histogram_buckets ? bucket : batch_histogram_buckets - 1;
}

aio_counters& aio_counters::operator+=(const aio_counters& other) noexcept {
    submit_calls += other.submit_calls;
    iocbs_submitted += other.iocbs_submitted;
    iocbs_failed += other.iocbs_failed;
    getevents_calls += other.getevents_calls;
    events_from_ring += other.events_from_ring;
    events_from_syscall += other.events_from_syscall;
    eagain_results += other.eagain_results;
    cancel_calls += other.cancel_calls;
    for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
        batch_sizes[i] += other.batch_sizes[i];
    }
    return *this;
}

std::string format_counters(const aio_counters& c) {
    std::string out;
    auto line = [&out](const char* name, std::uint64_t value) {
        out += fmt::format("{:<22} {}\n", name, value);
    };
    line("io_submit", c.submit_calls);
    line("iocbs_submitted", c.iocbs_submitted);
    line("iocbs_failed", c.iocbs_failed);
    line("io_getevents", c.getevents_calls);
    line("events_from_ring", c.events_from_ring);
    line("events_from_syscall", c.events_from_syscall);
    line("eagain_results", c.eagain_results);
    line("io_cancel", c.cancel_calls);
    if (c.submit_calls > 0) {
        out += fmt::format("{:<22} {:.2f}\n",
                           "iocbs_per_submit",
                           static_cast<double>(c.iocbs_submitted) /
                               static_cast<double>(c.submit_calls));
    }
    for (std::size_t i = 0; i < c.batch_sizes.size(); ++i) {
        if (c.batch_sizes[i] == 0) {
            continue;
        }
        std::size_t low = std::size_t{1} << i;
        std::string range = i + 1 == c.batch_sizes.size()
                                ? fmt::format("{}+", low)
                                : fmt::format("{}-{}", low, (low << 1) - 1);
        out += fmt::format("{:<22} {}\n", "batch[" + range + "]", c.batch_sizes[i]);
    }
    return out;
}

} // namespace aioloop::sys
