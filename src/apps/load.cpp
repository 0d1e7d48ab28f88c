#include <algorithm>
#include <barrier>
#include <thread>

#include <sys/resource.h>

#include "apps/load_internal.hpp"

namespace aioloop::apps {

namespace {

using detail::thread_state;

std::chrono::nanoseconds to_ns(const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

// This thread's CPU time so far: user, system.
std::pair<std::chrono::nanoseconds, std::chrono::nanoseconds> thread_cpu() {
    rusage usage{};
    ::getrusage(RUSAGE_THREAD, &usage);
    return {to_ns(usage.ru_utime), to_ns(usage.ru_stime)};
}

// Connection i goes to thread i % threads; its share of a request count and its place in an
// open-loop schedule depend only on i, so a run is the same whatever the thread count.
void plan_connections(const load_config& config, std::vector<std::unique_ptr<thread_state>>& ts) {
    auto n = static_cast<std::uint64_t>(config.connections);
    for (unsigned i = 0; i < config.connections; ++i) {
        detail::connection_plan plan;
        plan.index = i;
        if (config.requests > 0) {
            plan.requests = config.requests / n + (i < config.requests % n ? 1 : 0);
            if (plan.requests == 0) {
                continue;
            }
        }
        if (config.rate > 0) {
            std::chrono::duration<double> period(static_cast<double>(n) / config.rate);
            std::chrono::duration<double> phase(static_cast<double>(i) / config.rate);
            plan.period = std::chrono::duration_cast<clock::duration>(period);
            plan.phase = std::chrono::duration_cast<clock::duration>(phase);
        }
        auto& t = *ts[i % ts.size()];
        t.plans.push_back(plan);
    }
    for (auto& t : ts) {
        t->streams.resize(t->plans.size());
    }
}

void merge(load_result& total, const thread_state& t) {
    const load_result& r = t.result;
    total.requests += r.requests;
    total.bytes += r.bytes;
    total.late_requests += r.late_requests;
    total.errors += r.errors;
    total.cpu_user += r.cpu_user;
    total.cpu_system += r.cpu_system;
    total.latency.merge(r.latency);
    if (total.intervals.size() < r.intervals.size()) {
        total.intervals.resize(r.intervals.size());
    }
    for (std::size_t i = 0; i < r.intervals.size(); ++i) {
        total.intervals[i].requests += r.intervals[i].requests;
        total.intervals[i].bytes += r.intervals[i].bytes;
        total.intervals[i].errors += r.intervals[i].errors;
        total.intervals[i].latency.merge(r.intervals[i].latency);
    }
    total.client_loops += t.ev->stats();
    if (total.first_error.empty()) {
        total.first_error = t.first_error;
    }
}

} // namespace

load_errors& load_errors::operator+=(const load_errors& o) noexcept {
    connect_failures += o.connect_failures;
    mismatches += o.mismatches;
    resets += o.resets;
    closed += o.closed;
    timeouts += o.timeouts;
    other += o.other;
    bad_responses += o.bad_responses;
    return *this;
}

double load_result::requests_per_second() const noexcept {
    double seconds = std::chrono::duration<double>(duration).count();
    return seconds > 0 ? static_cast<double>(requests) / seconds : 0.0;
}

double load_result::cpu_us_per_request() const noexcept {
    double us = std::chrono::duration<double, std::micro>(cpu_user + cpu_system).count();
    return requests > 0 ? us / static_cast<double>(requests) : 0.0;
}

tl::expected<load_result, loop_error> run_load(const load_config& config) {
    unsigned threads = std::clamp(config.threads, 1u, std::max(1u, config.connections));
    std::vector<std::unique_ptr<thread_state>> ts;
    for (unsigned i = 0; i < threads; ++i) {
        ts.push_back(std::make_unique<thread_state>());
        ts.back()->config = &config;
    }
    plan_connections(config, ts);
    for (auto& t : ts) {
        loop_options options = config.loop;
        // Each connection keeps at most one POLL pending: size the AIO context to this loop's
        // share instead of the server-sized default, so that fs.aio-max-nr goes further.
        options.max_connections = static_cast<unsigned>(t->plans.size()) + 16;
        auto made = loop::create(options);
        if (!made) {
            return tl::unexpected(made.error());
        }
        t->ev = std::move(*made);
    }

    // Every thread connects first; the clock starts for all at once when the last is ready.
    clock::time_point start;
    std::barrier ready(static_cast<std::ptrdiff_t>(threads), [&start, &config]() noexcept {
        if (config.on_start) {
            config.on_start();
        }
        start = clock::now();
    });
    auto body = [&](thread_state& t) {
        t.ev->block_on(detail::connect_all(&t));
        ready.arrive_and_wait();
        t.start = start;
        t.last_end = start;
        if (config.duration) {
            t.deadline = start + std::chrono::duration_cast<clock::duration>(*config.duration);
            t.hard_stop = *t.deadline + config.grace;
        }
        auto [user0, system0] = thread_cpu();
        t.ev->block_on(detail::drive_all(&t));
        auto [user1, system1] = thread_cpu();
        t.result.cpu_user = user1 - user0;
        t.result.cpu_system = system1 - system0;
    };
    std::vector<std::thread> workers;
    for (unsigned i = 1; i < threads; ++i) {
        workers.emplace_back(body, std::ref(*ts[i]));
    }
    body(*ts[0]);
    for (auto& w : workers) {
        w.join();
    }

    load_result total;
    total.backend = std::string(ts[0]->ev->backend_name());
    total.protocol = config.protocol;
    total.connections = config.connections;
    clock::time_point end = start;
    for (auto& t : ts) {
        merge(total, *t);
        end = std::max(end, t->last_end);
    }
    total.duration = end - start;
    return total;
}

} // namespace aioloop::apps
