#pragma once

// The project's own load generator: N connections on aioloop's own loops (aio by default, the
// cheapest client) send messages to an echo-like server, wait for the whole echo, check every
// byte, and record the latency of every request. Closed loop (the next message leaves when the
// answer is back) or open loop at a fixed offered rate, where latency counts from the scheduled
// send time so that a stalled server cannot hide its stall (no coordinated omission).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <aioloop/loop.hpp>
#include <aioloop/net/address.hpp>
#include <aioloop/result.hpp>
#include <aioloop/stats.hpp>

namespace aioloop::apps {

/// Latencies in nanoseconds in log-linear buckets (HdrHistogram's layout): values below 128 are
/// exact, above that each power of two is cut into 64 sub-buckets, so any value is known to
/// within 1/64 (1.6 %) and a percentile is reported as its bucket's midpoint (within 0.8 %).
class latency_histogram {
public:
    static constexpr unsigned max_exponent = 40; ///< values up to 2^47 ns (39 hours) are kept
    static constexpr std::size_t bucket_count = 128 + max_exponent * 64;

    void record(std::uint64_t ns) noexcept;
    void merge(const latency_histogram& other) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept;
    /// The value below which `percent` of the recorded values lie (0 when empty); 100 is max().
    std::uint64_t percentile(double percent) const noexcept;

    /// Which bucket holds `ns`, and the smallest and largest value that bucket holds.
    static std::size_t bucket_of(std::uint64_t ns) noexcept;
    static std::uint64_t bucket_low(std::size_t bucket) noexcept;
    static std::uint64_t bucket_high(std::size_t bucket) noexcept;

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
    long double sum_ = 0;
};

/// What a connection speaks: echo (send a message, read the same bytes back) or HTTP/1.1 (GET
/// one path on a persistent connection, check the status, the length and the body).
enum class load_protocol { echo, http };

struct load_config {
    net::address target;
    load_protocol protocol = load_protocol::echo;
    std::string http_path = "/"; ///< http: the path every request asks for
    std::string http_host = "bench";
    /// http: when set, every body must be exactly these bytes (else only the length is checked).
    std::shared_ptr<const std::string> http_body;
    unsigned connections = 1;
    std::size_t min_size = 64; ///< message size, drawn uniformly from [min_size, max_size]
    std::size_t max_size = 64;
    /// Stop sending after this long (measured once every connection is up)...
    std::optional<std::chrono::nanoseconds> duration;
    /// ...or after this many requests in all (spread over the connections); 0: no count.
    std::uint64_t requests = 0;
    /// Open loop: requests per second offered in all, spread evenly over connections and in
    /// time. 0: closed loop. A connection still has one request outstanding at most, so the
    /// rate reached is bounded by connections / round-trip time.
    double rate = 0;
    unsigned threads = 1;   ///< one loop per thread, connections dealt out round-robin
    loop_options loop = {}; ///< backend (automatic: aio first), max_connections per loop
    std::uint64_t seed = 1; ///< sizes and content are reproducible from it
    std::chrono::milliseconds connect_timeout{5000};
    /// Requests still unanswered this long after the end are abandoned and counted as timeouts.
    std::chrono::milliseconds grace{5000};
    /// Width of the intervals of `load_result::intervals`.
    std::chrono::milliseconds interval{1000};
    /// Stopping it ends the run early (the results so far are kept).
    std::stop_token stop;
    /// Called once, on one client thread, when every connection is up and the clock starts: a
    /// caller measuring the server can leave connection setup out of its window. Must not throw.
    std::function<void()> on_start;
};

struct load_errors {
    std::uint64_t connect_failures = 0;
    std::uint64_t mismatches = 0; ///< a byte came back different from the one sent
    std::uint64_t resets = 0;     ///< ECONNRESET / EPIPE
    std::uint64_t closed = 0;     ///< the server closed a connection mid-run
    std::uint64_t timeouts = 0;   ///< unanswered at the end of the grace period
    std::uint64_t other = 0;
    std::uint64_t bad_responses = 0; ///< http: a status other than 200, or a malformed response
    std::uint64_t total() const noexcept {
        return connect_failures + mismatches + resets + closed + timeouts + other + bad_responses;
    }
    load_errors& operator+=(const load_errors& o) noexcept;
};

/// The requests that completed in one interval of the run.
struct load_interval {
    std::uint64_t requests = 0;
    std::uint64_t bytes = 0;
    std::uint64_t errors = 0;
    latency_histogram latency;
};

struct load_result {
    std::string backend;                          ///< the client loops' backend
    load_protocol protocol = load_protocol::echo; ///< what the connections spoke
    unsigned connections = 0;
    std::uint64_t requests = 0;      ///< answered and checked
    std::uint64_t bytes = 0;         ///< echoed (http: body bytes) and checked, counted once
    std::uint64_t late_requests = 0; ///< open loop: sent after their scheduled time
    load_errors errors;
    std::chrono::nanoseconds duration{0}; ///< first send to last answer
    std::chrono::nanoseconds cpu_user{0}; ///< client threads, during the measured phase
    std::chrono::nanoseconds cpu_system{0};
    latency_histogram latency; ///< every request, ns
    std::vector<load_interval> intervals;
    loop_stats client_loops; ///< the client loops' own counters, connection setup included
    std::string first_error; ///< what went wrong first, for the user ("connect to ...: ...")

    double requests_per_second() const noexcept;
    double cpu_us_per_request() const noexcept;
};

/// Runs the load to the end (duration, request count, or stop) and returns what it measured.
/// Fails only when a client loop can't be made (the loop_error's message); failures of the
/// server are counted in load_result::errors.
tl::expected<load_result, loop_error> run_load(const load_config& config);

/// "64" or "16-4K" (sizes as parse_size() reads them) into [min, max]; EINVAL otherwise.
result<std::pair<std::size_t, std::size_t>> parse_size_range(std::string_view text) noexcept;

/// One line: requests, req/s, MB/s (echo: each way; http: of response body), latency
/// percentiles in µs, errors, client CPU per request.
std::string format_summary(const load_result& r);
/// The result as a JSON object (no trailing newline).
std::string format_json(const load_result& r);

} // namespace aioloop::apps
