// `aioloop bench proxy` and `aioloop bench http` through the built tool: valid JSON, a row per
// aioloop backend and per peer (haproxy, nginx), and the client's count equal to what the
// server behind answered (the upstream echo for proxy, the http server itself for http).

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/bench.hpp>

#include "apps/json_parser.hpp"
#include "apps/tool_process.hpp"
#include "support/sockets.hpp"

namespace {

using aioloop::testing::json;
using aioloop::testing::json_parser;

bool installed(const std::string& program) {
    for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
        if (::access((dir + program).c_str(), X_OK) == 0) {
            return true;
        }
    }
    return false;
}

struct bench_json {
    aioloop::testing::tool_result result;
    std::optional<json> doc;
    std::string text;
};

// A short bench: 300 ms, one round, four connections, aio and epoll.
bench_json run_bench(const std::string& scenario) {
    auto path = aioloop::testing::temp_path("bench-" + scenario + ".json");
    aioloop::testing::tool_run run({"bench",
                                    scenario,
                                    "--backends",
                                    "aio,epoll",
                                    "--duration",
                                    "0.3",
                                    "--rounds",
                                    "1",
                                    "--connections",
                                    "4",
                                    "--json",
                                    path});
    run.deadline = std::chrono::seconds(20);
    bench_json out;
    out.result = aioloop::testing::run_tool(run);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::remove(path.c_str());
    out.text = text.str();
    out.doc = json_parser(out.text).parse();
    return out;
}

const json* run_of(const json& doc, const std::string& server) {
    for (const json& r : doc["runs"].arr()) {
        if (r["server"].str() == server) {
            return &r;
        }
    }
    return nullptr;
}

TEST(BenchScenario, ProxyRowsCountWhatTheUpstreamAnswered) {
    if (!aioloop::apps::sys_enter_tracepoint_id()) {
        GTEST_SKIP() << "no raw_syscalls:sys_enter tracepoint on this machine";
    }
    auto b = run_bench("proxy");
    ASSERT_EQ(b.result.exit_code, 0) << b.result.out << b.result.err;
    ASSERT_TRUE(b.doc) << "not valid JSON: " << b.text;
    EXPECT_EQ((*b.doc)["scenario"].str(), "proxy");
    EXPECT_NE((*b.doc)["note"].str().find("upstream"), std::string::npos);
    EXPECT_NE(b.result.out.find("upstream"), std::string::npos) << "the header says where";
    std::vector<std::string> servers{"aio", "epoll"};
    if (installed("haproxy")) {
        servers.push_back("haproxy");
    }
    for (const auto& name : servers) {
        SCOPED_TRACE(name);
        const json* r = run_of(*b.doc, name);
        ASSERT_NE(r, nullptr);
        ASSERT_TRUE(std::get<bool>((*r)["ok"].v)) << (*r)["error"].str();
        EXPECT_EQ((*r)["client_errors"].num(), 0);
        double client = (*r)["client_requests"].num();
        ASSERT_GT(client, 0);
        ASSERT_TRUE(r->has("upstream_metrics"));
        // The echo counts each chunk it echoes; a 64-byte message is one, unless TCP split it.
        double upstream = (*r)["upstream_metrics"]["requests"].num();
        EXPECT_GE(upstream, client);
        EXPECT_LE(upstream, client * 1.05 + 4);
        EXPECT_EQ((*r)["upstream_metrics"]["bytes_out"].num(), (*r)["client_bytes"].num())
            << "every byte the upstream sent came back through the proxy to the client";
        EXPECT_GT((*r)["syscalls_per_request"].num(), 0);
        EXPECT_GT((*r)["cpu_us_per_request"].num(), 0);
    }
}

TEST(BenchScenario, HttpRowsCountWhatTheServerAnswered) {
    if (!aioloop::apps::sys_enter_tracepoint_id()) {
        GTEST_SKIP() << "no raw_syscalls:sys_enter tracepoint on this machine";
    }
    auto b = run_bench("http");
    ASSERT_EQ(b.result.exit_code, 0) << b.result.out << b.result.err;
    ASSERT_TRUE(b.doc) << "not valid JSON: " << b.text;
    EXPECT_EQ((*b.doc)["size"].num(), 1024) << "http's default file size";
    for (const char* name : {"aio", "epoll"}) {
        SCOPED_TRACE(name);
        const json* r = run_of(*b.doc, name);
        ASSERT_NE(r, nullptr);
        ASSERT_TRUE(std::get<bool>((*r)["ok"].v)) << (*r)["error"].str();
        double client = (*r)["client_requests"].num();
        ASSERT_GT(client, 0);
        // One request, one answer: the counts are equal, and so are the body bytes.
        EXPECT_EQ((*r)["server_metrics"]["requests"].num(), client);
        EXPECT_EQ((*r)["server_metrics"]["bytes_out"].num(), (*r)["client_bytes"].num());
        EXPECT_EQ((*r)["client_bytes"].num(), client * 1024);
    }
    if (installed("nginx")) {
        const json* r = run_of(*b.doc, "nginx");
        ASSERT_NE(r, nullptr);
        ASSERT_TRUE(std::get<bool>((*r)["ok"].v)) << (*r)["error"].str();
        EXPECT_GT((*r)["client_requests"].num(), 0);
        EXPECT_EQ((*r)["client_bytes"].num(), (*r)["client_requests"].num() * 1024);
    }
}

TEST(BenchScenario, APeerThatFailsToStartIsSkippedAndTheOthersMeasured) {
    if (!aioloop::apps::sys_enter_tracepoint_id()) {
        GTEST_SKIP() << "no raw_syscalls:sys_enter tracepoint on this machine";
    }
    // A `haproxy` first on PATH that refuses to start, as a broken install would.
    auto dir = std::filesystem::temp_directory_path() / aioloop::testing::temp_path("fake-peer");
    std::filesystem::create_directories(dir);
    {
        std::ofstream script(dir / "haproxy");
        script << "#!/bin/sh\necho 'fake haproxy: cannot bind socket' >&2\nexit 1\n";
    }
    std::filesystem::permissions(dir / "haproxy", std::filesystem::perms::owner_all);
    std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", (dir.string() + ":" + old_path).c_str(), 1);
    auto b = run_bench("proxy");
    ::setenv("PATH", old_path.c_str(), 1);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(b.result.exit_code, 0)
        << "the others were measured: " << b.result.out << b.result.err;
    ASSERT_TRUE(b.doc) << b.text;
    const json* haproxy = run_of(*b.doc, "haproxy");
    ASSERT_NE(haproxy, nullptr);
    EXPECT_FALSE(std::get<bool>((*haproxy)["ok"].v));
    EXPECT_NE((*haproxy)["error"].str().find("cannot bind socket"), std::string::npos)
        << (*haproxy)["error"].str();
    EXPECT_NE(b.result.out.find("haproxy"), std::string::npos) << "reported in the table";
    const json* aio = run_of(*b.doc, "aio");
    ASSERT_NE(aio, nullptr);
    EXPECT_TRUE(std::get<bool>((*aio)["ok"].v)) << (*aio)["error"].str();
}

TEST(BenchScenario, APortInUseIsAClearError) {
    // Someone else's listener on the port a peer is given: refused before the peer starts, so
    // that the bench never measures the wrong process.
    aioloop::testing::scoped_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    ASSERT_EQ(::listen(listener.get(), 4), 0);
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    std::uint16_t port = ntohs(sa.sin_port);
    aioloop::apps::server_spec spec;
    spec.name = "peer";
    spec.aioloop = false;
    spec.port = port;
    spec.argv = {"/bin/sleep", "5"};
    auto server = aioloop::apps::server_process::start(spec);
    ASSERT_FALSE(server);
    EXPECT_NE(server.error().find("already in use"), std::string::npos) << server.error();
    EXPECT_NE(server.error().find(std::to_string(port)), std::string::npos) << server.error();
}

} // namespace
