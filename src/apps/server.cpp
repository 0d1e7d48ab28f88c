#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include <signal.h>

#include <fmt/format.h>

#include <aioloop/apps/metrics.hpp>
#include <aioloop/apps/server.hpp>
#include <aioloop/net/tcp_listener.hpp>
#include <aioloop/signals.hpp>

namespace aioloop::apps {

namespace {

// One `name value` line per counter on stderr, aligned like the loop's stats above them.
void print_counters(std::initializer_list<std::pair<std::string_view, std::uint64_t>> counters) {
    for (const auto& [name, value] : counters) {
        fmt::print(stderr, "{:<24} {}\n", name, value);
    }
}

using namespace std::chrono_literals;

// How often each loop copies its statistics where other threads may read them.
constexpr auto stats_publish_period = 200ms;
// How long accepting pauses when the process is out of fds: the pending connection stays queued
// in the kernel and the listener stays readable, so waiting for readability would spin.
constexpr auto accept_backoff = 20ms;

// One loop, its thread and its listeners. Everything but `published` is touched only on the
// loop's own thread.
struct worker {
    std::unique_ptr<loop> ev;
    std::vector<net::tcp_listener> listeners;
    std::stop_source accepting;
    std::stop_source abort;
    std::size_t open = 0;
    bool shutting_down = false;
    std::thread thread;

    std::mutex published_mutex;
    loop_stats published;

    void publish() {
        loop_stats now = ev->stats();
        std::lock_guard lock(published_mutex);
        published = now;
    }
};

class server {
public:
    server(const server_config& config, const handler_factory& make_handler)
        : config_(config)
        , make_handler_(make_handler) {}

    int run();

private:
    bool start_workers();
    bool bind_listeners();
    void run_worker(worker& w, bool main_thread);
    task<void> accept_loop(worker& w, net::tcp_listener& listener, connection_handler& handler);
    task<void> serve(worker& w, connection_handler& handler, net::tcp_stream stream);
    task<void> publish_stats(worker& w);
    task<void> watch_signals(signal_set signals);
    task<void> serve_metrics(net::tcp_listener listener);
    task<void> drain(worker& w);
    void begin_shutdown(worker& w);
    void shutdown_all();
    loop_stats total_stats();
    void log(std::string_view line) const {
        fmt::print(stderr, "aioloop {}: {}\n", config_.name, line);
    }

    const server_config& config_;
    const handler_factory& make_handler_;
    std::vector<std::unique_ptr<worker>> workers_;
    app_counters counters_;
    std::optional<net::tcp_listener> metrics_listener_;
    std::optional<std::stop_callback<std::function<void()>>> external_stop_;
};

bool server::start_workers() {
    for (unsigned i = 0; i < std::max(1u, config_.threads); ++i) {
        auto made = loop::create(config_.loop);
        if (!made) {
            log(made.error().message);
            return false;
        }
        auto w = std::make_unique<worker>();
        w->ev = std::move(*made);
        workers_.push_back(std::move(w));
    }
    return true;
}

// Every thread gets its own SO_REUSEPORT listener per address, so the kernel spreads connections
// between loops and no accept queue is shared. Port 0 is resolved by the first bind and reused.
bool server::bind_listeners() {
    std::vector<net::address> bound;
    for (const net::address& wanted : config_.listen) {
        net::address at = wanted;
        for (auto& w : workers_) {
            auto listener =
                net::tcp_listener::bind(*w->ev, at, net::listen_options{.reuse_port = true});
            if (!listener) {
                log(fmt::format("listen on {}: {}", at.to_string(), listener.error().message()));
                return false;
            }
            at = listener->local_address();
            w->listeners.push_back(std::move(*listener));
        }
        bound.push_back(at);
    }
    if (config_.metrics) {
        auto listener = net::tcp_listener::bind(*workers_.front()->ev, *config_.metrics);
        if (!listener) {
            log(fmt::format(
                "metrics on {}: {}", config_.metrics->to_string(), listener.error().message()));
            return false;
        }
        metrics_listener_ = std::move(*listener);
        // The bound port, for --metrics HOST:0 (and for tests).
        log(fmt::format("metrics at http://{}/metrics",
                        metrics_listener_->local_address().to_string()));
    }
    std::string where;
    for (const auto& at : bound) {
        where += (where.empty() ? "" : ", ") + at.to_string();
    }
    const loop& first = *workers_.front()->ev;
    log(fmt::format("listening on {} with the {} backend ({}), {} thread{}, up to {} connections "
                    "per thread",
                    where,
                    first.backend_name(),
                    first.backend_reason(),
                    workers_.size(),
                    workers_.size() == 1 ? "" : "s",
                    config_.loop.max_connections));
    if (config_.on_listening) {
        config_.on_listening(bound);
    }
    return true;
}

task<void> server::serve(worker& w, connection_handler& handler, net::tcp_stream stream) {
    ++w.open;
    ++counters_.connections_open;
    // Named, not a temporary inside co_await: GCC 12 destroys such temporaries twice (GCC PR
    // 100611), which for a stop_token means its shared state is freed while still in use.
    connection_context context{*w.ev, counters_, config_.quiet, w.abort.get_token()};
    task<void> work = handler(std::move(stream), context);
    co_await std::move(work);
    --counters_.connections_open;
    if (--w.open == 0 && w.shutting_down) {
        w.ev->stop();
    }
}

task<void>
server::accept_loop(worker& w, net::tcp_listener& listener, connection_handler& handler) {
    std::size_t open_limit = config_.loop.max_connections;
    for (;;) {
        if (w.open >= open_limit) {
            // At the connection limit the AIO context has no room for more: let the kernel's
            // backlog hold them until a connection ends.
            auto paused = co_await w.ev->sleep_for(accept_backoff);
            if (!paused) {
                co_return;
            }
            continue;
        }
        auto accepted = co_await listener.accept();
        if (accepted) {
            ++counters_.connections_accepted;
            w.ev->spawn(serve(w, handler, std::move(*accepted)), w.abort.get_token());
            continue;
        }
        if (accepted.error() == std::errc::operation_canceled) {
            co_return;
        }
        ++counters_.accept_errors;
        if (!config_.quiet) {
            log(fmt::format("accept on {}: {}; {} connections open, retrying",
                            listener.local_address().to_string(),
                            accepted.error().message(),
                            w.open));
        }
        // EMFILE/ENFILE: existing connections go on; accepting resumes once fds are freed.
        auto slept = co_await w.ev->sleep_for(accept_backoff);
        if (!slept) {
            co_return;
        }
    }
}

task<void> server::publish_stats(worker& w) {
    for (;;) {
        // GCC 12 miscompiles co_await inside a loop condition: keep it a statement of its own.
        auto slept = co_await w.ev->sleep_for(stats_publish_period);
        if (!slept) {
            co_return;
        }
        w.publish();
    }
}

loop_stats server::total_stats() {
    loop_stats total;
    for (auto& w : workers_) {
        std::lock_guard lock(w->published_mutex);
        total += w->published;
    }
    return total;
}

task<void> server::watch_signals(signal_set signals) {
    for (;;) {
        auto signo = co_await signals.wait();
        if (!signo) {
            co_return;
        }
        if (*signo == SIGUSR1) {
            workers_.front()->publish();
            fmt::print(stderr, "{}", format_stats(total_stats()));
            continue;
        }
        log(fmt::format("{}: stopping; open connections have {} ms to finish",
                        sigabbrev_np(*signo),
                        config_.grace.count()));
        shutdown_all();
        co_return;
    }
}

task<void> server::serve_metrics(net::tcp_listener listener) {
    loop& ev = *workers_.front()->ev;
    for (;;) {
        auto accepted = co_await listener.accept();
        if (!accepted) {
            if (accepted.error() == std::errc::operation_canceled) {
                co_return;
            }
            co_await ev.sleep_for(accept_backoff);
            continue;
        }
        workers_.front()->publish();
        ev.spawn(serve_metrics_connection(std::move(*accepted), [this] {
            return format_prometheus(
                workers_.front()->ev->backend_name(), total_stats(), counters_);
        }));
    }
}

// After a stop: no more accepting; connections get the grace period, then their operations are
// cancelled, and the loop ends when the last one has unwound.
task<void> server::drain(worker& w) {
    if (w.open == 0) {
        w.ev->stop();
        co_return;
    }
    co_await w.ev->sleep_for(config_.grace);
    if (w.open > 0) {
        if (!config_.quiet) {
            log(fmt::format("grace period over: closing {} connections", w.open));
        }
        w.abort.request_stop();
        co_await w.ev->sleep_for(1s);
        w.ev->stop(); // a handler that ignores cancellation must not hold the process
    }
}

void server::begin_shutdown(worker& w) {
    if (w.shutting_down) {
        return;
    }
    w.shutting_down = true;
    w.accepting.request_stop();
    // Closed now, not at exit, so that new clients are refused instead of queued unserved.
    for (auto& listener : w.listeners) {
        listener.close();
    }
    w.ev->spawn(drain(w));
}

void server::shutdown_all() {
    for (auto& w : workers_) {
        worker* target = w.get();
        target->ev->post([this, target] { begin_shutdown(*target); });
    }
}

void server::run_worker(worker& w, bool main_thread) {
    connection_handler handler = make_handler_(*w.ev);
    for (auto& listener : w.listeners) {
        w.ev->spawn(accept_loop(w, listener, handler), w.accepting.get_token());
    }
    w.ev->spawn(publish_stats(w), w.accepting.get_token());
    if (main_thread && metrics_listener_) {
        w.ev->spawn(serve_metrics(std::move(*metrics_listener_)), w.accepting.get_token());
    }
    w.ev->run();
    w.publish();
}

int server::run() {
    if (!start_workers()) {
        return 1;
    }
    worker& main = *workers_.front();
    // The handlers go in before the "listening on" line and on_listening: whoever learns the port
    // from them may send SIGTERM at once, and that must stop the server gracefully, not kill it
    // with the default action (found by SeccompFallback.ToolWarnsAndSaysWhichBackendItUses).
    if (config_.handle_signals) {
        auto signals = signal_set::create(*main.ev, {SIGINT, SIGTERM, SIGUSR1});
        if (!signals) {
            log(fmt::format("signal handlers: {}", signals.error().message()));
            return 1;
        }
        main.ev->spawn(watch_signals(std::move(*signals)), main.accepting.get_token());
    }
    if (!bind_listeners()) {
        return 1;
    }
    if (config_.stop.stop_possible()) {
        external_stop_.emplace(config_.stop, std::function<void()>([this] { shutdown_all(); }));
    }
    for (std::size_t i = 1; i < workers_.size(); ++i) {
        worker& w = *workers_[i];
        w.thread = std::thread([this, &w] { run_worker(w, false); });
    }
    run_worker(main, true);
    for (std::size_t i = 1; i < workers_.size(); ++i) {
        workers_[i]->thread.join();
    }
    external_stop_.reset();
    if (config_.print_stats) {
        loop_stats total = total_stats();
        fmt::print(stderr, "{}", format_stats(total));
        print_counters({{"connections_accepted", counters_.connections_accepted.load()},
                        {"bytes_in", counters_.bytes_in.load()},
                        {"bytes_out", counters_.bytes_out.load()},
                        {"requests", counters_.requests.load()},
                        {"errors", counters_.errors.load()}});
        if (counters_.file_cache_hits.load() + counters_.file_cache_misses.load() > 0) {
            print_counters({{"file_cache_hits", counters_.file_cache_hits.load()},
                            {"file_cache_misses", counters_.file_cache_misses.load()},
                            {"file_cache_evictions", counters_.file_cache_evictions.load()}});
        }
        if (counters_.low_water_raises.load() > 0) {
            print_counters({{"low_water_raises", counters_.low_water_raises.load()},
                            {"low_water_short_waits", counters_.low_water_short_waits.load()},
                            {"low_water_give_ups", counters_.low_water_give_ups.load()}});
        }
    }
    return 0;
}

} // namespace

int run_server(const server_config& config, const handler_factory& make_handler) {
    server s(config, make_handler);
    return s.run();
}

} // namespace aioloop::apps
