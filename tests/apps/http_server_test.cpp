// `aioloop http` against real clients (curl, raw sockets, wrk, ab) on every backend. The server
// runs in-process through run_server() and stops through config.stop.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <aioloop/apps/http.hpp>

#include "support/child_process.hpp"
#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"
#include "support/tool_server.hpp"

namespace aioloop::apps {
namespace {

namespace fsys = std::filesystem;

bool have(const char* tool) {
    return testing::shell_output(fmt::format("command -v {} 2>/dev/null", tool)).size() > 0;
}

// The value of the first `name: value` line in a response head; empty when there is none.
std::string header_field(const std::string& head, const std::string& name) {
    auto at = head.find(name + ": ");
    if (at == std::string::npos) {
        return {};
    }
    at += name.size() + 2;
    return head.substr(at, head.find("\r\n", at) - at);
}

void write_file(const fsys::path& p, std::size_t size, char seed) {
    std::ofstream f(p, std::ios::binary);
    for (std::size_t i = 0; i < size; ++i) {
        f.put(static_cast<char>(seed + static_cast<char>(i * 7 % 251)));
    }
}

// Drops a clean file's pages from the page cache (no root needed), so that the next read misses.
void evict(const fsys::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

class HttpServer : public testing::loop_test {
protected:
    void SetUp() override {
        testing::loop_test::SetUp();
        if (IsSkipped()) {
            return;
        }
        loop_.reset(); // only to learn that the backend exists
        root_ = fsys::path(testing::temp_path("http_root"));
        fsys::create_directories(root_ / "dir");
        for (std::size_t size : {0, 1, 4095, 4096, 4097, 1024, (1 << 20) + 1}) {
            write_file(root_ / fmt::format("f{}.bin", size), size, static_cast<char>(size));
        }
        std::ofstream(root_ / "index.html") << "<h1>home</h1>\n";
        std::ofstream(root_ / "dir" / "index.html") << "dir index\n";
        fsys::create_directories(root_ / "noindex");
        std::ofstream(root_ / ".hidden") << "secret";
        std::ofstream(root_ / "a.txt") << "0123456789";
        // Sparse: large on paper, cheap on disk.
        {
            std::ofstream big(root_ / "big.bin", std::ios::binary);
            big.seekp((64 << 20) - 5);
            big << "tail!";
        }
        start();
    }
    void TearDown() override {
        stop();
        if (!root_.empty()) {
            fsys::remove_all(root_);
        }
    }
    void start(std::chrono::milliseconds header_timeout = std::chrono::seconds(10)) {
        server_config config;
        config.name = "http";
        config.listen.push_back(*net::address::resolve("127.0.0.1:0")->begin());
        config.loop.backend = GetParam();
        config.loop.max_connections = 256;
        config.handle_signals = false;
        config.quiet = true;
        config.grace = std::chrono::milliseconds(200);
        config.stop = stop_.get_token();
        std::promise<int> port;
        config.on_listening = [&port](const std::vector<net::address>& bound) {
            port.set_value(bound.front().port());
        };
        http_options options;
        options.root = root_.string();
        options.header_timeout = header_timeout;
        auto factory = make_http_handler(options);
        ASSERT_TRUE(factory) << factory.error().message();
        auto port_future = port.get_future();
        server_ = std::thread([config, f = *factory] { run_server(config, f); });
        ASSERT_EQ(port_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
        port_ = port_future.get();
        base_ = fmt::format("http://127.0.0.1:{}", port_);
    }
    void stop() {
        stop_.request_stop();
        if (server_.joinable()) {
            server_.join();
        }
    }
    // "<code>" from curl for `path` with extra curl arguments.
    std::string status(const std::string& path, const std::string& args = "") {
        return testing::shell_output(
            fmt::format("curl -s -m 10 --path-as-is -o /dev/null -w '%{{http_code}}' {} '{}{}'",
                        args,
                        base_,
                        path));
    }
    std::string headers(const std::string& path, const std::string& args = "") {
        return testing::shell_output(fmt::format(
            "curl -s -m 10 --path-as-is -D - -o /dev/null {} '{}{}'", args, base_, path));
    }
    std::string raw(const std::string& request) {
        testing::scoped_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(static_cast<std::uint16_t>(port_));
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval tv{5, 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
        EXPECT_EQ(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(request.size()));
        std::string out;
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
            if (n <= 0) {
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }

    fsys::path root_;
    std::stop_source stop_;
    std::thread server_;
    int port_ = 0;
    std::string base_;
};

TEST_P(HttpServer, StatusesWithCurl) {
    EXPECT_EQ(status("/a.txt"), "200");
    EXPECT_EQ(status("/"), "200");
    EXPECT_EQ(status("/dir/"), "200");
    EXPECT_EQ(status("/missing"), "404");
    EXPECT_EQ(status("/.hidden"), "404");
    EXPECT_EQ(status("/%2ehidden"), "404");
    EXPECT_EQ(status("/../etc/passwd"), "400");
    EXPECT_EQ(status("/%2e%2e/%2e%2e/etc/passwd"), "400");
    EXPECT_EQ(status("/a%2f..%2f..%2fetc%2fpasswd"), "400");
    EXPECT_EQ(status("/a.txt", "-X POST"), "405");
    EXPECT_EQ(status("/a.txt", "-H 'Transfer-Encoding: chunked' -X GET -d x"), "501");
    EXPECT_EQ(status("/a.txt", "-X GET -d hello"), "413");
    EXPECT_EQ(status("/" + std::string(9000, 'a')), "414");
    EXPECT_EQ(status("/a.txt", "-H 'X-Big: " + std::string(17000, 'b') + "'"), "431");
    EXPECT_EQ(status("/a.txt", "-r 2-4"), "206");
    EXPECT_EQ(status("/a.txt", "-r 20-"), "416");
    EXPECT_TRUE(raw("GET /a.txt HTTP/2.0\r\n\r\n").starts_with("HTTP/1.1 505 "));
}

TEST_P(HttpServer, HeadersValidatorsAndRanges) {
    std::string h = headers("/a.txt");
    EXPECT_NE(h.find("HTTP/1.1 200 OK"), std::string::npos) << h;
    EXPECT_NE(h.find("Content-Length: 10\r\n"), std::string::npos) << h;
    EXPECT_NE(h.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << h;
    EXPECT_NE(h.find("Server: aioloop\r\n"), std::string::npos) << h;
    EXPECT_NE(h.find("Date: "), std::string::npos) << h;
    std::string etag = header_field(h, "ETag");
    ASSERT_FALSE(etag.empty()) << h;
    std::string modified = header_field(h, "Last-Modified");
    ASSERT_FALSE(modified.empty()) << h;

    EXPECT_EQ(status("/a.txt", "-H 'If-None-Match: " + etag + "'"), "304");
    EXPECT_EQ(status("/a.txt", "-H 'If-None-Match: \"other\"'"), "200");
    EXPECT_EQ(status("/a.txt", "-H 'If-Modified-Since: " + modified + "'"), "304");
    EXPECT_EQ(status("/a.txt", "-H 'If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT'"), "200");

    EXPECT_EQ(testing::shell_output(fmt::format("curl -s -m 10 -r 2-4 {}/a.txt", base_)), "234");
    EXPECT_EQ(testing::shell_output(fmt::format("curl -s -m 10 -r 7- {}/a.txt", base_)), "789");
    EXPECT_EQ(testing::shell_output(fmt::format("curl -s -m 10 -r -3 {}/a.txt", base_)), "789");
    std::string r = headers("/a.txt", "-r 2-4");
    EXPECT_NE(r.find("Content-Range: bytes 2-4/10\r\n"), std::string::npos) << r;
    r = headers("/a.txt", "-r 20-");
    EXPECT_NE(r.find("Content-Range: bytes */10\r\n"), std::string::npos) << r;

    std::string head = headers("/f1024.bin", "-I");
    EXPECT_NE(head.find("Content-Length: 1024\r\n"), std::string::npos) << head;
    EXPECT_NE(head.find("application/octet-stream"), std::string::npos) << head;
    EXPECT_EQ(testing::shell_output(fmt::format("curl -s -m 10 -I {}/f1024.bin | wc -c", base_)),
              fmt::format("{}\n", head.size()));
}

TEST_P(HttpServer, PipelinedRequestsAnsweredInOrder) {
    std::string answer = raw("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                             "HEAD /f1.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
                             "Connection: close\r\n\r\n"
                             "GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
    std::size_t a = answer.find("HTTP/1.1 200 OK");
    std::size_t b = answer.find("HTTP/1.1 200 OK", a + 1);
    std::size_t c = answer.find("HTTP/1.1 404 Not Found");
    std::size_t d = answer.find("HTTP/1.1 206 Partial Content");
    ASSERT_NE(a, std::string::npos) << answer;
    ASSERT_NE(b, std::string::npos) << answer;
    ASSERT_NE(c, std::string::npos) << answer;
    ASSERT_NE(d, std::string::npos) << answer;
    EXPECT_TRUE(a < b && b < c && c < d) << answer;
    EXPECT_NE(answer.find("\r\n\r\n0123456789HTTP/1.1"), std::string::npos) << answer;
    EXPECT_TRUE(answer.ends_with("\r\n\r\n01")) << answer; // closed after the 4th: no 5th
    // HTTP/1.0 closes unless asked otherwise.
    std::string ten = raw("GET /a.txt HTTP/1.0\r\n\r\nGET /a.txt HTTP/1.0\r\n\r\n");
    EXPECT_EQ(ten.find("HTTP/1.1 200", 1), std::string::npos) << ten;
}

TEST_P(HttpServer, SlowHeadersGet408) {
    stop();
    stop_ = std::stop_source();
    start(std::chrono::milliseconds(300));
    std::string answer = raw("GET /a.txt HTTP/1.1\r\nHost: x\r\n");
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 408 ")) << answer;
}

TEST_P(HttpServer, SameBytesForEverySizeHotAndCold) {
    std::string files = "f0.bin f1.bin f4095.bin f4096.bin f4097.bin f1048577.bin big.bin";
    for (int round = 0; round < 2; ++round) {
        if (round == 1) {
            for (auto& entry : fsys::directory_iterator(root_)) {
                if (entry.is_regular_file()) {
                    evict(entry.path()); // page-cache misses: O_DIRECT, uring or the pool
                }
            }
        }
        for (std::string name : {"f0.bin",
                                 "f1.bin",
                                 "f4095.bin",
                                 "f4096.bin",
                                 "f4097.bin",
                                 "f1048577.bin",
                                 "big.bin"}) {
            std::string served = testing::shell_output(
                fmt::format("curl -s -m 20 {}/{} | sha256sum | cut -d' ' -f1", base_, name));
            std::string local = testing::shell_output(
                fmt::format("sha256sum < '{}' | cut -d' ' -f1", (root_ / name).string()));
            EXPECT_EQ(served, local) << name << " round " << round;
        }
        std::string mid = testing::shell_output(fmt::format(
            "curl -s -m 20 -r 4000-1048000 {}/f1048577.bin | sha256sum | cut -d' ' -f1", base_));
        std::string local = testing::shell_output(
            fmt::format("tail -c +4001 '{}' | head -c 1044001 | sha256sum | cut -d' ' -f1",
                        (root_ / "f1048577.bin").string()));
        EXPECT_EQ(mid, local) << "range, round " << round;
    }
    (void)files;
}

TEST_P(HttpServer, WrkAndAbFinishWithoutErrors) {
    if (!have("wrk") || !have("ab")) {
        GTEST_SKIP() << "wrk or ab (apache2-utils) not installed";
    }
    std::string w = testing::shell_output(fmt::format("wrk -t1 -c10 -d2 {}/f1024.bin 2>&1", base_));
    EXPECT_NE(w.find("requests in"), std::string::npos) << w;
    EXPECT_EQ(w.find("Non-2xx"), std::string::npos) << w;
    EXPECT_EQ(w.find("Socket errors"), std::string::npos) << w;
    std::string a =
        testing::shell_output(fmt::format("ab -q -n 2000 -c 10 -k {}/f4097.bin 2>&1", base_));
    EXPECT_NE(a.find("Complete requests:      2000"), std::string::npos) << a;
    EXPECT_NE(a.find("Failed requests:        0"), std::string::npos) << a;
    EXPECT_EQ(a.find("Non-2xx"), std::string::npos) << a;
}

TEST_P(HttpServer, IfRangeAppliesTheRangeOnlyWhileTheValidatorMatches) {
    std::string h = headers("/a.txt");
    std::string etag = header_field(h, "ETag");
    ASSERT_FALSE(etag.empty()) << h;
    std::string modified = header_field(h, "Last-Modified");
    ASSERT_FALSE(modified.empty()) << h;
    auto get = [this](const std::string& if_range) {
        return testing::shell_output(
            fmt::format("curl -s -m 10 -r 2-4 -H 'If-Range: {}' -w ' %{{http_code}}' {}/a.txt",
                        if_range,
                        base_));
    };
    EXPECT_EQ(get(etag), "234 206");
    EXPECT_EQ(get(modified), "234 206");
    EXPECT_EQ(get("\"other\""), "0123456789 200");
    EXPECT_EQ(get("W/" + etag), "0123456789 200"); // If-Range compares strongly
    EXPECT_EQ(get("Sun, 06 Nov 1994 08:49:37 GMT"), "0123456789 200");
}

TEST_P(HttpServer, DirectoryWithoutSlashIsRedirected) {
    std::string h = headers("/dir");
    EXPECT_TRUE(h.starts_with("HTTP/1.1 301 Moved Permanently\r\n")) << h;
    EXPECT_NE(h.find("\r\nLocation: /dir/\r\n"), std::string::npos) << h;
    h = headers("/dir?x=1");
    EXPECT_NE(h.find("\r\nLocation: /dir/?x=1\r\n"), std::string::npos) << h;
    EXPECT_EQ(status("/noindex"), "301"); // a directory even without index.html
    EXPECT_EQ(status("/noindex/"), "404");
    EXPECT_EQ(testing::shell_output(fmt::format("curl -s -m 10 -L {}/dir", base_)), "dir index\n");
    EXPECT_EQ(status("/a.txt"), "200"); // files are not redirected
    EXPECT_EQ(status("/dir/"), "200");
}

TEST_P(HttpServer, OpenFileCacheCountersInStatsAndMetrics) {
    stop(); // the tool this time: --stats prints at exit, --metrics serves /metrics
    auto server = testing::start_tool_server({"http",
                                              "--listen",
                                              "127.0.0.1:0",
                                              "--backend",
                                              std::string(to_string(GetParam())),
                                              "--root",
                                              root_.string(),
                                              "--cache-entries",
                                              "1",
                                              "--cache-ttl-ms",
                                              "60000",
                                              "--metrics",
                                              "127.0.0.1:0",
                                              "--stats",
                                              "--quiet"});
    ASSERT_NE(server.port, 0) << server.process->err();
    ASSERT_TRUE(server.process->wait_for_stderr("metrics at http://", std::chrono::seconds(5)));
    std::string err = server.process->err();
    auto at = err.find("metrics at http://");
    std::string metrics_url = err.substr(at + 11, err.find('\n', at) - at - 11);
    std::string base = fmt::format("http://127.0.0.1:{}", server.port);
    // a.txt: miss, hit, hit; f1.bin: miss, evicting a.txt (one entry); a.txt: miss again.
    for (const char* name : {"a.txt", "a.txt", "a.txt", "f1.bin", "a.txt"}) {
        EXPECT_EQ(testing::shell_output(fmt::format(
                      "curl -s -m 10 -o /dev/null -w '%{{http_code}}' {}/{}", base, name)),
                  "200");
    }
    std::string metrics;
    // The loops publish their figures every 200 ms; the app counters are live.
    metrics = testing::shell_output(fmt::format("curl -s -m 10 {}", metrics_url));
    EXPECT_NE(metrics.find("aioloop_file_cache_total{result=\"hit\"} 2\n"), std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("aioloop_file_cache_total{result=\"miss\"} 3\n"), std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("aioloop_file_cache_total{result=\"eviction\"} 2\n"), std::string::npos)
        << metrics;
    server.process->signal(SIGTERM);
    EXPECT_EQ(server.process->wait(std::chrono::seconds(10)), 0);
    std::string stats = server.process->err();
    EXPECT_NE(stats.find("file_cache_hits"), std::string::npos) << stats;
    EXPECT_NE(stats.find("file_cache_misses"), std::string::npos) << stats;
    EXPECT_NE(stats.find("file_cache_evictions"), std::string::npos) << stats;
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         HttpServer,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop::apps
