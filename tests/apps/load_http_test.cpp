// The load generator's HTTP mode against a real `aioloop http` (every body byte checked, the
// server's count equal to the client's) and against servers that answer wrong: a 404, a body
// that differs, a truncated body, a malformed head. Each error must be counted, never a success.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <aioloop/apps/bench.hpp>
#include <aioloop/apps/load.hpp>

namespace {

using namespace aioloop;
using namespace std::chrono_literals;

// A directory with one file of `size` pseudo-random bytes, removed at the end.
struct served_root {
    std::filesystem::path dir;
    std::shared_ptr<const std::string> body;
    explicit served_root(std::size_t size) {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "aioloop-test-load-http-XXXXXX").string();
        if (::mkdtemp(pattern.data()) != nullptr) {
            dir = pattern;
        }
        std::string content(size, '\0');
        std::uint64_t x = 88172645463325252ULL;
        for (auto& c : content) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c = static_cast<char>(x);
        }
        std::ofstream(dir / "file", std::ios::binary) << content;
        body = std::make_shared<const std::string>(std::move(content));
    }
    ~served_root() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

std::optional<apps::server_process> start_http(const served_root& root,
                                               const std::string& backend = "aio") {
    apps::server_spec spec;
    spec.name = "http";
    spec.argv = {AIOLOOP_TOOL_PATH,
                 "http",
                 "--root",
                 root.dir.string(),
                 "--listen",
                 "127.0.0.1:0",
                 "--backend",
                 backend,
                 "--quiet",
                 "--metrics",
                 "127.0.0.1:0"};
    auto server = apps::server_process::start(spec);
    if (!server) {
        ADD_FAILURE() << server.error();
        return std::nullopt;
    }
    return std::move(*server);
}

apps::load_config http_load(std::uint16_t port, std::string path, unsigned connections) {
    apps::load_config load;
    load.target = *net::address::parse("127.0.0.1:" + std::to_string(port));
    load.protocol = apps::load_protocol::http;
    load.http_path = std::move(path);
    load.connections = connections;
    load.duration = 300ms;
    load.grace = 2000ms;
    return load;
}

// A one-thread server that answers every request head on each of its connections with
// `answer` and then closes: the wrong servers the client must catch.
class canned_server {
public:
    explicit canned_server(std::string answer)
        : answer_(std::move(answer)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(sa);
        EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
        EXPECT_EQ(::listen(listener_, 16), 0);
        EXPECT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&sa), &len), 0);
        port_ = ntohs(sa.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~canned_server() {
        ::shutdown(listener_, SHUT_RDWR); // wakes the accept
        thread_.join();
        ::close(listener_);
    }
    std::uint16_t port() const { return port_; }

private:
    void serve() {
        for (;;) {
            int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                return;
            }
            timeval timeout{2, 0}; // a client that never sends must not hang the test
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
            std::string head;
            char buf[1024];
            while (head.find("\r\n\r\n") == std::string::npos) {
                ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
                if (n <= 0) {
                    break;
                }
                head.append(buf, static_cast<std::size_t>(n));
            }
            ::send(fd, answer_.data(), answer_.size(), MSG_NOSIGNAL);
            ::close(fd);
        }
    }
    std::string answer_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

TEST(LoadHttp, ChecksEveryBodyByteAndCountsWhatTheServerAnswered) {
    served_root root(3000);
    auto server = start_http(root);
    ASSERT_TRUE(server);
    auto load = http_load(server->port(), "/file", 4);
    load.http_body = root.body;
    auto done = apps::run_load(load);
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->errors.total(), 0u) << done->first_error;
    ASSERT_GT(done->requests, 0u);
    EXPECT_EQ(done->bytes, done->requests * 3000);
    // Bodies only come back: the summary must not say the bytes went each way.
    EXPECT_NE(apps::format_summary(*done).find("MB/s of response body"), std::string::npos)
        << apps::format_summary(*done);
    auto metrics = apps::scrape_metrics(server->metrics_port());
    ASSERT_TRUE(metrics) << metrics.error();
    EXPECT_EQ((*metrics)["aioloop_requests_total"], static_cast<double>(done->requests));
    EXPECT_EQ((*metrics)[R"(aioloop_bytes_total{direction="out"})"],
              static_cast<double>(done->bytes));
}

TEST(LoadHttp, A404IsABadResponse) {
    served_root root(100);
    auto server = start_http(root, "epoll");
    ASSERT_TRUE(server);
    auto done = apps::run_load(http_load(server->port(), "/missing", 2));
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->requests, 0u);
    EXPECT_EQ(done->errors.bad_responses, 2u) << "one per connection, which then stops";
    EXPECT_NE(done->first_error.find("404"), std::string::npos) << done->first_error;
}

TEST(LoadHttp, ABodyThatDiffersFromTheFileIsAMismatch) {
    served_root root(2000);
    auto server = start_http(root);
    ASSERT_TRUE(server);
    auto load = http_load(server->port(), "/file", 1);
    auto other = std::make_shared<std::string>(*root.body);
    (*other)[1500] ^= 1; // one bit, late in the body: past the first read
    load.http_body = other;
    auto done = apps::run_load(load);
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->requests, 0u);
    EXPECT_EQ(done->errors.mismatches, 1u) << done->first_error;
}

TEST(LoadHttp, ATruncatedBodyIsAnError) {
    canned_server server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    auto done = apps::run_load(http_load(server.port(), "/file", 2));
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->requests, 0u);
    EXPECT_EQ(done->errors.closed, 2u);
    EXPECT_NE(done->first_error.find("short body"), std::string::npos) << done->first_error;
}

TEST(LoadHttp, ConnectionCloseIsFollowedByANewConnectionNotAnError) {
    // The canned server closes after each answer, as it says it will.
    canned_server server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    auto load = http_load(server.port(), "/", 2);
    load.duration.reset();
    load.requests = 20;
    load.http_body = std::make_shared<const std::string>("ok");
    auto done = apps::run_load(load);
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->errors.total(), 0u) << done->first_error;
    EXPECT_EQ(done->requests, 20u);
    EXPECT_EQ(done->bytes, 40u);
}

TEST(LoadHttp, AMalformedHeadIsABadResponse) {
    for (const char* answer : {"SMTP ready\r\n\r\n",
                               "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                               "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n",
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                               "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"}) {
        SCOPED_TRACE(answer);
        canned_server server(answer);
        auto done = apps::run_load(http_load(server.port(), "/", 1));
        ASSERT_TRUE(done) << done.error().message;
        EXPECT_EQ(done->requests, 0u);
        EXPECT_EQ(done->errors.bad_responses, 1u) << done->first_error;
    }
}

} // namespace
