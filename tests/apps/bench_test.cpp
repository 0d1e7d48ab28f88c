// `aioloop bench`: the kernel's system call counter against a child whose calls are known, the
// built tool's JSON (valid, complete, and the client's count matching the server's, at every
// count of a sweep), its --plot (well-formed SVG, a line per server) and its descriptor limit.

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/bench.hpp>

#include "apps/json_parser.hpp"
#include "apps/tool_process.hpp"
#include "support/sockets.hpp"

namespace {

using namespace aioloop;

using aioloop::testing::json;
using aioloop::testing::json_parser;

TEST(BenchSyscallCounter, CountsTheCallsOfAChildThatMakesAKnownNumber) {
    if (!apps::sys_enter_tracepoint_id()) {
        GTEST_SKIP() << "no raw_syscalls:sys_enter tracepoint on this machine";
    }
    int go[2];
    int done[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(done), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // Only raw system calls between the handshakes: exactly 1000 getppid, then one write.
        ::close(go[1]); // so that the parent's close is our EOF
        ::close(done[0]);
        char c;
        if (::read(go[0], &c, 1) != 1) {
            ::_exit(1);
        }
        for (int i = 0; i < 1000; ++i) {
            ::syscall(SYS_getppid);
        }
        ::syscall(SYS_write, done[1], "x", 1);
        ::syscall(SYS_read, go[0], &c, 1); // parked here until the parent has read the count
        ::_exit(0);
    }
    ::close(go[0]);
    ::close(done[1]);
    auto counter = apps::syscall_counter::open(pid);
    if (!counter) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        FAIL() << "perf_event_open: " << counter.error().message();
    }
    counter->enable();
    ASSERT_EQ(::write(go[1], "g", 1), 1);
    char c;
    ASSERT_EQ(::read(done[0], &c, 1), 1);
    // The child is now in (or about to enter) its last read: at most one more entry to come.
    ::usleep(20000);
    counter->disable();
    std::uint64_t n = counter->count();
    ::close(go[1]); // releases the child
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(done[0]);
    EXPECT_GE(n, 1000u);
    EXPECT_LT(n, 1000u + 10u) << "1000 getppid + write + read, and little else";
}

TEST(BenchSyscallCounter, MeasuresTheCostOfACall) {
    double ns = apps::measure_syscall_ns(10000);
    EXPECT_GT(ns, 1.0);
    EXPECT_LT(ns, 1e6);
}

TEST(BenchTool, EchoJsonIsCompleteAndCountsAgree) {
    auto path = aioloop::testing::temp_path("bench-json");
    aioloop::testing::tool_run run({"bench",
                                    "--backends",
                                    "aio,epoll",
                                    "--duration",
                                    "1",
                                    "--rounds",
                                    "1",
                                    "--connections",
                                    "10",
                                    "--json",
                                    path});
    run.deadline = std::chrono::seconds(20);
    auto r = aioloop::testing::run_tool(run);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("syscalls/req"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("round 1 aio"), std::string::npos) << "a progress line per run: " << r.err;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::remove(path.c_str());
    auto doc = json_parser(text.str()).parse();
    ASSERT_TRUE(doc) << "not valid JSON: " << text.str();
    for (const char* key : {"scenario",
                            "connections",
                            "size",
                            "rounds",
                            "syscall_ns",
                            "sweep",
                            "cores",
                            "date",
                            "runs",
                            "summary"}) {
        EXPECT_TRUE(doc->has(key)) << key;
    }
    EXPECT_GT((*doc)["syscall_ns"].num(), 0);
    ASSERT_EQ((*doc)["runs"].arr().size(), 2u);
    for (const json& run_json : (*doc)["runs"].arr()) {
        SCOPED_TRACE(run_json["server"].str());
        ASSERT_TRUE(std::get<bool>(run_json["ok"].v)) << run_json["error"].str();
        for (const char* key : {"requests_per_second",
                                "client_requests",
                                "latency_us",
                                "syscalls",
                                "syscalls_per_request",
                                "cpu_us_per_request",
                                "connections",
                                "window_requests",
                                "client_cpu_percent",
                                "client_bound",
                                "core_busy_percent",
                                "cpu_wait_percent",
                                "server_metrics"}) {
            EXPECT_TRUE(run_json.has(key)) << key;
        }
        EXPECT_EQ(run_json["connections"].num(), 10);
        // The load generator's share of its core: a real share, not a ratio gone wrong.
        EXPECT_GT(run_json["client_cpu_percent"].num(), 0);
        EXPECT_LT(run_json["client_cpu_percent"].num(), 105);
        // The measured window leaves out the drain after the deadline: a subset of the requests.
        EXPECT_GT(run_json["window_requests"].num(), 0);
        EXPECT_LE(run_json["window_requests"].num(), run_json["client_requests"].num());
        double client = run_json["client_requests"].num();
        double server = run_json["server_metrics"]["requests"].num();
        EXPECT_GT(client, 0);
        // The server counts each echoed chunk; a message may be echoed in more than one, and at
        // most one request per connection is in flight when the client stops counting.
        EXPECT_GE(server + 10, client);
        EXPECT_LE(server, client * 1.05 + 10);
        EXPECT_EQ(run_json["server_metrics"]["bytes_out"].num(), run_json["client_bytes"].num())
            << "every byte the server sent came back to the client";
        EXPECT_GT(run_json["syscalls"].num(), 0);
        EXPECT_GT(run_json["cpu_us_per_request"].num(), 0);
        EXPECT_GT(run_json["latency_us"]["p99"].num(), 0);
    }
    ASSERT_EQ((*doc)["summary"].arr().size(), 2u);
    // The AIO server batches: fewer kernel-counted calls per request than epoll.
    const json& aio = (*doc)["summary"].arr()[0];
    const json& epoll = (*doc)["summary"].arr()[1];
    EXPECT_EQ(aio["server"].str(), "aio");
    EXPECT_EQ(epoll["server"].str(), "epoll");
}

TEST(BenchTool, AnUnknownBackendIsRefusedBeforeAnythingStarts) {
    // An unknown backend name is refused by the option check before anything starts.
    aioloop::testing::tool_run run({"bench", "--backends", "aio,bogus", "--duration", "1"});
    run.deadline = std::chrono::seconds(10);
    auto r = aioloop::testing::run_tool(run);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("bogus"), std::string::npos) << r.err;
}

// Whether the tags of an XML text balance (declaration, self-closing and closing tags); the
// first problem otherwise. Attribute values hold no '>' since the plot escapes them.
std::string xml_tag_problem(const std::string& text) {
    std::vector<std::string> open;
    std::size_t at = 0;
    while ((at = text.find('<', at)) != std::string::npos) {
        std::size_t end = text.find('>', at);
        if (end == std::string::npos) {
            return "unterminated tag at " + std::to_string(at);
        }
        std::string tag = text.substr(at + 1, end - at - 1);
        at = end + 1;
        if (tag.starts_with('?')) {
            continue;
        }
        if (tag.starts_with('/')) {
            if (open.empty() || open.back() != tag.substr(1)) {
                return "</" + tag.substr(1) + "> closes " +
                       (open.empty() ? "nothing" : open.back());
            }
            open.pop_back();
            continue;
        }
        std::string name = tag.substr(0, tag.find_first_of(" \n/"));
        if (!tag.ends_with('/')) {
            open.push_back(name);
        }
    }
    return open.empty() ? std::string() : "<" + open.back() + "> never closed";
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(BenchTool, SweepCountsAgreeAtEachCountAndThePlotIsValidSvg) {
    auto json_path = aioloop::testing::temp_path("bench-sweep-json");
    auto svg_path = aioloop::testing::temp_path("bench-sweep") + ".svg";
    aioloop::testing::tool_run run({"bench",
                                    "--backends",
                                    "aio,epoll",
                                    "--sweep",
                                    "1,4",
                                    "--duration",
                                    "0.2",
                                    "--rounds",
                                    "1",
                                    "--json",
                                    json_path,
                                    "--plot",
                                    svg_path});
    run.deadline = std::chrono::seconds(20);
    auto r = aioloop::testing::run_tool(run);
    std::string text = read_text(json_path);
    std::string svg = read_text(svg_path);
    std::remove(json_path.c_str());
    std::remove(svg_path.c_str());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("at 4 connections:"), std::string::npos) << "a table per count: " << r.out;
    EXPECT_NE(r.out.find("conns"), std::string::npos) << "the sweep table: " << r.out;
    EXPECT_NE(r.out.find("client%"), std::string::npos) << r.out;

    auto doc = json_parser(text).parse();
    ASSERT_TRUE(doc) << "not valid JSON: " << text;
    ASSERT_EQ((*doc)["sweep"].arr().size(), 2u);
    const auto& runs = (*doc)["runs"].arr();
    ASSERT_EQ(runs.size(), 4u) << "every backend at every count";
    std::map<std::pair<std::string, double>, int> seen;
    for (const json& run_json : runs) {
        double connections = run_json["connections"].num();
        SCOPED_TRACE(run_json["server"].str() + " at " + std::to_string(connections));
        ++seen[{run_json["server"].str(), connections}];
        ASSERT_TRUE(std::get<bool>(run_json["ok"].v)) << run_json["error"].str();
        double client = run_json["client_requests"].num();
        double server = run_json["server_metrics"]["requests"].num();
        EXPECT_GT(client, 0);
        // As above: a message may be echoed in more than one chunk, rarely at this size.
        EXPECT_GE(server + connections, client);
        EXPECT_LE(server, client * 1.05 + connections);
        EXPECT_EQ(run_json["server_metrics"]["bytes_out"].num(), run_json["client_bytes"].num());
        EXPECT_GT(run_json["client_cpu_percent"].num(), 0);
    }
    EXPECT_EQ(seen.size(), 4u) << "aio and epoll, each at 1 and at 4 connections";
    const auto& summary = (*doc)["summary"].arr();
    ASSERT_EQ(summary.size(), 4u);
    for (const json& s : summary) {
        EXPECT_TRUE(s.has("connections"));
        EXPECT_TRUE(s.has("client_cpu_percent"));
    }

    EXPECT_EQ(xml_tag_problem(svg), "") << svg;
    EXPECT_TRUE(svg.starts_with("<?xml")) << svg.substr(0, 100);
    for (const char* metric : {"rps", "p99", "syscalls", "cpu"}) {
        for (const char* server : {"aio", "epoll"}) {
            EXPECT_EQ(occurrences(svg,
                                  std::string("class=\"series\" data-server=\"") + server +
                                      "\" data-metric=\"" + metric + "\""),
                      1u)
                << "one line per server and figure: " << server << " " << metric;
        }
    }
    // A real XML parser too, when the machine has one.
    if (::system("python3 -c 'import xml.etree.ElementTree' >/dev/null 2>&1") == 0) {
        auto again = aioloop::testing::temp_path("bench-sweep-again") + ".svg";
        std::ofstream(again) << svg;
        std::string check = "python3 -c 'import sys, xml.etree.ElementTree as E; "
                            "r = E.parse(sys.argv[1]).getroot(); "
                            "print(sum(1 for g in r.iter(\"{http://www.w3.org/2000/svg}g\") "
                            "if g.get(\"class\") == \"series\"))' " +
                            again;
        FILE* p = ::popen(check.c_str(), "r");
        ASSERT_NE(p, nullptr);
        char line[64] = {};
        bool got = std::fgets(line, sizeof(line), p) != nullptr;
        int status = ::pclose(p);
        std::remove(again.c_str());
        EXPECT_EQ(status, 0) << "xml.etree could not parse the plot";
        EXPECT_TRUE(got);
        EXPECT_EQ(std::string(line), "8\n") << "4 figures x 2 servers";
    }
}

TEST(BenchTool, TooLowADescriptorLimitForTheSweepIsAClearError) {
    // In a child, so that lowering the hard limit (irreversible) leaves the test runner alone.
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        rlimit low{200, 200};
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0) {
            ::_exit(2);
        }
        aioloop::testing::tool_run run(
            {"bench", "--backends", "epoll", "--sweep", "1,1000", "--duration", "0.2"});
        run.deadline = std::chrono::seconds(10);
        auto r = aioloop::testing::run_tool(run);
        bool clear = r.exit_code == 1 && r.err.find("RLIMIT_NOFILE") != std::string::npos &&
                     r.err.find("1000 connections") != std::string::npos &&
                     r.err.find("round 1") == std::string::npos;
        if (!clear) {
            std::fprintf(stderr, "exit %d, stderr: %s\n", r.exit_code, r.err.c_str());
        }
        ::_exit(clear ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "bench must refuse 1000 connections under a hard limit of 200, naming RLIMIT_NOFILE, "
           "before starting any server";
}

} // namespace
