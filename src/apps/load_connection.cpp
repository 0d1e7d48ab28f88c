// The load generator's connection loop, whatever the protocol: connects every planned connection,
// then runs each one's requests, closed loop (the next leaves when the answer is back) or open
// loop (on a schedule, latency counted from when a request was due), through the protocol's
// exchanger, and records latency, counts and errors.

#include <algorithm>

#include "apps/load_internal.hpp"

namespace aioloop::apps::detail {

namespace {

using namespace std::chrono_literals;

constexpr std::size_t connect_window = 64;
constexpr auto tick = 20ms;

void count(load_errors& errors, outcome kind) noexcept {
    switch (kind) {
    case outcome::ok:
        break;
    case outcome::bad_response:
        ++errors.bad_responses;
        break;
    case outcome::mismatch:
        ++errors.mismatches;
        break;
    case outcome::reset:
        ++errors.resets;
        break;
    case outcome::closed:
        ++errors.closed;
        break;
    case outcome::timeout:
        ++errors.timeouts;
        break;
    case outcome::connect_failed:
        ++errors.connect_failures;
        break;
    case outcome::other:
        ++errors.other;
        break;
    }
}

std::string describe(const exchange_result& r, const net::address& peer) {
    const char* what = "failed";
    switch (r.kind) {
    case outcome::bad_response:
        what = "sent a bad response";
        break;
    case outcome::mismatch:
        what = "answered with bytes different from those expected";
        break;
    case outcome::reset:
        what = "reset the connection";
        break;
    case outcome::closed:
        what = "closed the connection mid-request";
        break;
    case outcome::timeout:
        what = "left a request unanswered";
        break;
    case outcome::connect_failed:
        what = "did not accept a new connection";
        break;
    default:
        break;
    }
    return peer.to_string() + " " + what + (r.why.empty() ? "" : ": " + r.why);
}

load_interval& interval_at(thread_state& t, clock::time_point when) {
    auto width = std::chrono::duration_cast<clock::duration>(t.config->interval);
    auto index = static_cast<std::size_t>(std::max<clock::rep>(0, (when - t.start) / width));
    if (index >= t.result.intervals.size()) {
        t.result.intervals.resize(index + 1);
    }
    return t.result.intervals[index];
}

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

// One connection's requests, to its plan's end, the deadline, a stop or its first error.
task<void> run_requests(thread_state* t, std::size_t slot, std::unique_ptr<exchanger> protocol) {
    const load_config& config = *t->config;
    const connection_plan plan = t->plans[slot];
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
        auto exchanging = protocol->exchange(seq);
        exchange_result r = co_await std::move(exchanging);
        clock::time_point end = clock::now();
        load_interval& slice = interval_at(*t, end);
        if (r.kind != outcome::ok) {
            count(t->result.errors, r.kind);
            if (t->first_error.empty()) {
                t->first_error = describe(r, config.target);
            }
            ++slice.errors;
            break;
        }
        auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
        ++t->result.requests;
        t->result.bytes += r.bytes;
        t->result.latency.record(ns);
        ++slice.requests;
        slice.bytes += r.bytes;
        slice.latency.record(ns);
        t->last_end = std::max(t->last_end, end);
    }
    t->streams[slot].close();
    // Before done(), which may resume the waiter inline and let the loop wind down.
    protocol.reset();
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

outcome classify(std::error_code error) noexcept {
    if (error == std::errc::connection_reset || error == std::errc::broken_pipe) {
        return outcome::reset;
    }
    if (error == std::errc::operation_canceled || error == std::errc::timed_out) {
        return outcome::timeout;
    }
    return outcome::other;
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
        if (!t->streams[slot].is_open()) {
            continue;
        }
        t->running.add();
        auto protocol = t->config->protocol == load_protocol::http ? make_http_exchanger(t, slot)
                                                                   : make_echo_exchanger(t, slot);
        t->ev->spawn(run_requests(t, slot, std::move(protocol)), t->abort.get_token());
    }
    if (t->running.count() == 0) {
        co_return;
    }
    t->ev->spawn(watch(t));
    co_await t->running.at_most(0);
}

} // namespace aioloop::apps::detail
