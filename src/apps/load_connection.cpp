#include <algorithm>
#include <cstring>

#include "apps/load_internal.hpp"

namespace aioloop::apps::detail {

namespace {

using namespace std::chrono_literals;

// Bytes written at once, and at most in flight before the echo is read back: a message bigger
// than the socket buffers would otherwise deadlock, both ends blocked writing.
constexpr std::size_t chunk_limit = 16 * 1024;
constexpr std::size_t window = 64 * 1024;
constexpr std::size_t connect_window = 64;
constexpr auto tick = 20ms;

enum class failure { none, mismatch, reset, closed, timeout, other };

failure classify(std::error_code error) noexcept {
    if (error == std::errc::connection_reset || error == std::errc::broken_pipe) {
        return failure::reset;
    }
    if (error == std::errc::operation_canceled || error == std::errc::timed_out) {
        return failure::timeout;
    }
    return failure::other;
}

void count(load_errors& errors, failure f) noexcept {
    switch (f) {
    case failure::none:
        break;
    case failure::mismatch:
        ++errors.mismatches;
        break;
    case failure::reset:
        ++errors.resets;
        break;
    case failure::closed:
        ++errors.closed;
        break;
    case failure::timeout:
        ++errors.timeouts;
        break;
    case failure::other:
        ++errors.other;
        break;
    }
}

std::string describe(failure f, const net::address& peer) {
    const char* what = "failed";
    switch (f) {
    case failure::mismatch:
        what = "echoed a byte different from the one sent";
        break;
    case failure::reset:
        what = "reset the connection";
        break;
    case failure::closed:
        what = "closed the connection mid-request";
        break;
    case failure::timeout:
        what = "left a request unanswered";
        break;
    default:
        break;
    }
    return peer.to_string() + " " + what;
}

load_interval& interval_at(thread_state& t, clock::time_point when) {
    auto width = std::chrono::duration_cast<clock::duration>(t.config->interval);
    auto index = static_cast<std::size_t>(std::max<clock::rep>(0, (when - t.start) / width));
    if (index >= t.result.intervals.size()) {
        t.result.intervals.resize(index + 1);
    }
    return t.result.intervals[index];
}

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

task<void> connect_one(thread_state* t, std::size_t slot) {
    auto connecting =
        net::tcp_stream::connect(*t->ev, t->config->target, t->config->connect_timeout);
    auto made = co_await std::move(connecting);
    if (made) {
        t->streams[slot] = std::move(*made);
    } else {
        ++t->result.errors.connect_failures;
        if (t->first_error.empty()) {
            t->first_error =
                "connect to " + t->config->target.to_string() + ": " + made.error().message();
        }
    }
    t->running.done();
}

// One request: writes the message in chunks and reads the echo back as it comes, checking it.
task<failure> exchange(net::tcp_stream* stream,
                       std::uint64_t key,
                       std::size_t size,
                       std::span<std::byte> out,
                       std::span<std::byte> in) {
    std::size_t sent = 0;
    std::size_t got = 0;
    while (got < size) {
        std::size_t n = std::min(out.size(), size - sent);
        if (sent < size && sent - got + n <= window) {
            fill_pattern(key, sent, out.first(n));
            auto written = co_await stream->write(out.first(n));
            if (!written) {
                co_return classify(written.error());
            }
            sent += n;
            continue;
        }
        auto read = co_await stream->read(in.first(std::min(in.size(), sent - got)));
        if (!read) {
            co_return classify(read.error());
        }
        if (*read == 0) {
            co_return failure::closed;
        }
        if (!matches_pattern(key, got, in.first(*read))) {
            co_return failure::mismatch;
        }
        got += *read;
    }
    co_return failure::none;
}

task<void> run_connection(thread_state* t, std::size_t slot) {
    const load_config& config = *t->config;
    const connection_plan plan = t->plans[slot];
    net::tcp_stream* stream = &t->streams[slot];
    std::size_t chunk = std::min(config.max_size, chunk_limit);
    std::vector<std::byte> out(chunk);
    std::vector<std::byte> in(chunk);
    size_source sizes{splitmix64(config.seed ^ (std::uint64_t{plan.index} << 20)) | 1};
    std::uint64_t key_base = splitmix64(config.seed + 0x51ed270b27a5a1d7ULL * (plan.index + 1));
    bool open_loop = plan.period.count() > 0;
    clock::time_point scheduled = t->start + plan.phase;
    for (std::uint64_t seq = 0; plan.requests == 0 || seq < plan.requests; ++seq) {
        clock::time_point now = clock::now();
        // Open loop ends by the schedule alone, so that a late answer never drops a request
        // that was due before the deadline.
        if (t->stop_sending || (!open_loop && t->deadline && now >= *t->deadline)) {
            break;
        }
        clock::time_point begin = now;
        if (open_loop) {
            if (t->deadline && scheduled >= *t->deadline) {
                break;
            }
            if (scheduled > now) {
                auto slept = co_await t->ev->sleep_until(scheduled);
                if (!slept) {
                    break;
                }
            } else if (seq > 0) {
                ++t->result.late_requests; // the last answer came after this send was due
            }
            // Latency counts from when the request was due, not from when it could leave.
            begin = scheduled;
            scheduled += plan.period;
        }
        std::size_t size = sizes.next(config.min_size, config.max_size);
        auto exchanging = exchange(stream, key_base + seq * 0x9E3779B97F4A7C15ULL, size, out, in);
        failure f = co_await std::move(exchanging);
        clock::time_point end = clock::now();
        load_interval& slice = interval_at(*t, end);
        if (f != failure::none) {
            count(t->result.errors, f);
            if (t->first_error.empty()) {
                t->first_error = describe(f, config.target);
            }
            ++slice.errors;
            break;
        }
        auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
        ++t->result.requests;
        t->result.bytes += size;
        t->result.latency.record(ns);
        ++slice.requests;
        slice.bytes += size;
        slice.latency.record(ns);
        t->last_end = std::max(t->last_end, end);
    }
    stream->close();
    t->running.done();
}

// Notices an outside stop, and abandons requests still unanswered after the grace period.
task<void> watch(thread_state* t) {
    for (;;) {
        auto slept = co_await t->ev->sleep_for(tick);
        if (!slept || t->running.count() == 0) {
            co_return;
        }
        clock::time_point now = clock::now();
        if (!t->stop_sending && t->config->stop.stop_requested()) {
            t->stop_sending = true;
            if (!t->hard_stop || *t->hard_stop > now + t->config->grace) {
                t->hard_stop = now + t->config->grace;
            }
        }
        if (t->hard_stop && now >= *t->hard_stop) {
            t->abort.request_stop();
        }
    }
}

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

task<void> connect_all(thread_state* t) {
    for (std::size_t slot = 0; slot < t->plans.size(); ++slot) {
        co_await t->running.at_most(connect_window - 1);
        t->running.add();
        t->ev->spawn(connect_one(t, slot));
    }
    co_await t->running.at_most(0);
}

task<void> drive_all(thread_state* t) {
    for (std::size_t slot = 0; slot < t->plans.size(); ++slot) {
        if (t->streams[slot].is_open()) {
            t->running.add();
            if (t->config->protocol == load_protocol::http) {
                t->ev->spawn(run_http_connection(t, slot), t->abort.get_token());
                continue;
            }
            t->ev->spawn(run_connection(t, slot), t->abort.get_token());
        }
    }
    if (t->running.count() == 0) {
        co_return;
    }
    t->ev->spawn(watch(t));
    co_await t->running.at_most(0);
}

} // namespace aioloop::apps::detail
