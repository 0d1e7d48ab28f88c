// What one turn and one operation cost on each backend, in isolation: the floor under every
// server figure. Run: build/bench/loop_bench (add --benchmark_repetitions=5 on a noisy machine).

#include <memory>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <aioloop/loop.hpp>

namespace {

using namespace aioloop;

std::unique_ptr<loop> make_loop(benchmark::State& state) {
    loop_options options;
    options.backend = static_cast<backend_kind>(state.range(0));
    options.on_warning = [](std::string_view) {};
    auto made = loop::create(options);
    if (!made) {
        state.SkipWithError(made.error().message.c_str());
        return nullptr;
    }
    state.SetLabel(std::string(to_string(options.backend)));
    return std::move(*made);
}

// A turn with nothing for the kernel: aio makes no system call at all (the ring is read in user
// space), epoll and uring ask the kernel with a zero timeout.
task<void> yield_n(loop& ev, benchmark::State& state) {
    for (auto _ : state) {
        co_await ev.yield();
    }
}

void empty_turn(benchmark::State& state) {
    auto ev = make_loop(state);
    if (!ev) {
        return;
    }
    ev->block_on(yield_n(*ev, state));
    state.counters["syscalls/turn"] = benchmark::Counter(
        static_cast<double>(ev->stats().total_syscalls()), benchmark::Counter::kAvgIterations);
}

// One readiness wait that is already satisfied: a POLL completing inside io_submit (aio), a poll
// answered from the kept registration (epoll), a POLL_ADD SQE (uring).
task<void> poll_n(loop& ev, int fd, benchmark::State& state) {
    for (auto _ : state) {
        auto ready = co_await ev.fd_writable(fd);
        benchmark::DoNotOptimize(ready);
    }
}

void ready_poll(benchmark::State& state) {
    auto ev = make_loop(state);
    if (!ev) {
        return;
    }
    int fds[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds);
    ev->block_on(poll_n(*ev, fds[0], state));
    state.counters["syscalls/op"] = benchmark::Counter(
        static_cast<double>(ev->stats().total_syscalls()), benchmark::Counter::kAvgIterations);
    ::close(fds[0]);
    ::close(fds[1]);
}

// A 64-byte send on one end and the matching recv on the other: two operations per iteration.
task<void> ping_n(loop& ev, int a, int b, benchmark::State& state) {
    std::byte out[64] = {};
    std::byte in[64];
    for (auto _ : state) {
        auto sent = co_await ev.send(a, out);
        auto got = co_await ev.recv(b, in);
        benchmark::DoNotOptimize(sent);
        benchmark::DoNotOptimize(got);
    }
}

void send_recv(benchmark::State& state) {
    auto ev = make_loop(state);
    if (!ev) {
        return;
    }
    int fds[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds);
    ev->block_on(ping_n(*ev, fds[0], fds[1], state));
    state.counters["syscalls/iter"] = benchmark::Counter(
        static_cast<double>(ev->stats().total_syscalls()), benchmark::Counter::kAvgIterations);
    ::close(fds[0]);
    ::close(fds[1]);
}

void all_backends(benchmark::internal::Benchmark* b) {
    for (auto kind : {backend_kind::aio, backend_kind::epoll, backend_kind::uring}) {
        b->Arg(static_cast<int>(kind));
    }
}

BENCHMARK(empty_turn)->Apply(all_backends);
BENCHMARK(ready_poll)->Apply(all_backends);
BENCHMARK(send_recv)->Apply(all_backends);

} // namespace

BENCHMARK_MAIN();
