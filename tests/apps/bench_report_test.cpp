// The bench's verdicts from figures, without running anything: when core 1 counts as shared with
// other processes (the proxy's upstream echo runs there by design and is the bench's own), and
// which rows get the KPTI projection (the aioloop backends, not the peers).

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <aioloop/apps/bench.hpp>

namespace {

using aioloop::apps::bench_report;
using aioloop::apps::bench_sample;
using aioloop::apps::load_core_shared;

// A pinned run whose core 1 was 100 % busy, the load generator's thread using `client` % of it.
bench_sample pinned_run(double client) {
    bench_sample s;
    s.ok = true;
    s.client_cpu_percent = client;
    s.client_core_percent = 100;
    s.server_core_percent = 100;
    return s;
}

TEST(BenchLoadCore, AnEchoRunIsSharedWhenTheLoadUsedUnderHalfOfABusyCore) {
    EXPECT_TRUE(load_core_shared(pinned_run(20)));
    EXPECT_FALSE(load_core_shared(pinned_run(60)));
    bench_sample idle = pinned_run(20);
    idle.client_core_percent = 50; // not busy: the load left the core idle, nobody took it
    EXPECT_FALSE(load_core_shared(idle));
}

TEST(BenchLoadCore, TheProxysUpstreamCountsAsTheBenchsOwnWork) {
    // The load and the upstream echo together filled core 1: nothing else ran there.
    bench_sample proxy = pinned_run(20);
    proxy.upstream_cpu_percent = 45;
    EXPECT_FALSE(load_core_shared(proxy));
    // The same load with the upstream at 20 %: 60 % of the busy core was someone else's.
    proxy.upstream_cpu_percent = 20;
    EXPECT_TRUE(load_core_shared(proxy));
}

TEST(BenchLoadCore, UnknownOrFailedRunsAreNeverShared) {
    bench_sample unpinned = pinned_run(10);
    unpinned.client_core_percent = std::nan("");
    EXPECT_FALSE(load_core_shared(unpinned));
    bench_sample failed = pinned_run(10);
    failed.ok = false;
    EXPECT_FALSE(load_core_shared(failed));
}

bench_sample row(const std::string& server, double syscalls, double cpu_us, double client) {
    bench_sample s = pinned_run(client);
    s.server = server;
    s.round = 1;
    s.connections = 200;
    s.requests_per_second = 10000;
    s.syscalls_per_request = syscalls;
    s.cpu_us_per_request = cpu_us;
    return s;
}

bench_report proxy_report(const std::vector<bench_sample>& samples) {
    bench_report report;
    report.config.scenario = "proxy";
    report.config.backends = {"aio", "epoll"};
    report.config.connections = 200;
    report.config.rounds = 1;
    report.config.pin = true;
    report.syscall_ns = 150;
    report.samples = samples;
    report.summaries = aioloop::apps::summarize(samples);
    return report;
}

TEST(BenchTable, TheProjectionIsForTheBackendsNotThePeers) {
    auto report = proxy_report(
        {row("aio", 0.1, 18, 20), row("epoll", 4.0, 18, 20), row("haproxy", 4.1, 19, 20)});
    std::string table = aioloop::apps::format_bench_table(report);
    EXPECT_NE(table.find("aio      saves 3.90 calls/req vs epoll"), std::string::npos) << table;
    EXPECT_EQ(table.find("haproxy  saves"), std::string::npos) << table;
    // The peer still has its row, with its calls and CPU against epoll.
    EXPECT_NE(table.find("haproxy "), std::string::npos) << table;
}

TEST(BenchTable, TheSharedCoreWarningCountsTheUpstreamAsOurs) {
    std::vector<bench_sample> runs{row("aio", 0.1, 18, 20), row("epoll", 4.0, 18, 20)};
    for (auto& s : runs) {
        s.upstream_cpu_percent = 50;
    }
    std::string table = aioloop::apps::format_bench_table(proxy_report(runs));
    EXPECT_EQ(table.find("other processes shared the cores"), std::string::npos) << table;
    runs[1].upstream_cpu_percent = 10; // one round where something else took core 1
    table = aioloop::apps::format_bench_table(proxy_report(runs));
    EXPECT_NE(table.find("in 1 of 2 runs core 1"), std::string::npos) << table;
}

} // namespace
