// `aioloop bench`: the kernel's system call counter against a child whose calls are known, and
// the built tool's JSON (valid, complete, and the client's count matching the server's).

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/bench.hpp>

#include "apps/tool_process.hpp"
#include "support/sockets.hpp"

namespace {

using namespace aioloop;

// A whole JSON document, parsed strictly enough that malformed output fails the test.
struct json;
using json_object = std::map<std::string, json>;
using json_array = std::vector<json>;
struct json {
    std::variant<std::nullptr_t, bool, double, std::string, json_array, json_object> v;
    const json& operator[](const std::string& key) const {
        return std::get<json_object>(v).at(key);
    }
    bool has(const std::string& key) const {
        return std::holds_alternative<json_object>(v) && std::get<json_object>(v).contains(key);
    }
    double num() const { return std::get<double>(v); }
    const json_array& arr() const { return std::get<json_array>(v); }
    const std::string& str() const { return std::get<std::string>(v); }
};

class json_parser {
public:
    explicit json_parser(std::string text)
        : s_(std::move(text)) {}
    std::optional<json> parse() {
        auto v = value();
        skip();
        if (!v || at_ != s_.size()) {
            return std::nullopt;
        }
        return v;
    }

private:
    void skip() {
        while (at_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[at_]))) {
            ++at_;
        }
    }
    bool eat(char c) {
        skip();
        if (at_ < s_.size() && s_[at_] == c) {
            ++at_;
            return true;
        }
        return false;
    }
    std::optional<std::string> string() {
        if (!eat('"')) {
            return std::nullopt;
        }
        std::string out;
        while (at_ < s_.size() && s_[at_] != '"') {
            if (s_[at_] == '\\') {
                ++at_;
                if (at_ < s_.size() && s_[at_] == 'u') {
                    at_ += 4;
                    out += '?';
                } else if (at_ < s_.size()) {
                    out += s_[at_];
                }
                ++at_;
                continue;
            }
            out += s_[at_++];
        }
        if (at_ >= s_.size()) {
            return std::nullopt;
        }
        ++at_;
        return out;
    }
    std::optional<json> value() {
        skip();
        if (at_ >= s_.size()) {
            return std::nullopt;
        }
        char c = s_[at_];
        if (c == '{') {
            ++at_;
            json_object o;
            if (eat('}')) {
                return json{o};
            }
            do {
                auto k = string();
                if (!k || !eat(':')) {
                    return std::nullopt;
                }
                auto v = value();
                if (!v) {
                    return std::nullopt;
                }
                o.emplace(*k, std::move(*v));
            } while (eat(','));
            return eat('}') ? std::optional<json>(json{o}) : std::nullopt;
        }
        if (c == '[') {
            ++at_;
            json_array a;
            if (eat(']')) {
                return json{a};
            }
            do {
                auto v = value();
                if (!v) {
                    return std::nullopt;
                }
                a.push_back(std::move(*v));
            } while (eat(','));
            return eat(']') ? std::optional<json>(json{a}) : std::nullopt;
        }
        if (c == '"') {
            auto str = string();
            return str ? std::optional<json>(json{*str}) : std::nullopt;
        }
        for (auto [word, val] : {std::pair{"true", json{true}},
                                 std::pair{"false", json{false}},
                                 std::pair{"null", json{nullptr}}}) {
            if (s_.compare(at_, std::strlen(word), word) == 0) {
                at_ += std::strlen(word);
                return val;
            }
        }
        std::size_t used = 0;
        try {
            double d = std::stod(s_.substr(at_, 40), &used);
            at_ += used;
            return json{d};
        } catch (...) {
            return std::nullopt;
        }
    }
    std::string s_;
    std::size_t at_ = 0;
};

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
    for (const char* key :
         {"scenario", "connections", "size", "rounds", "syscall_ns", "runs", "summary"}) {
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
                                "server_metrics"}) {
            EXPECT_TRUE(run_json.has(key)) << key;
        }
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

} // namespace
