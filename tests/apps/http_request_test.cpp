#include <string>

#include <gtest/gtest.h>

#include <aioloop/apps/http_request.hpp>

namespace aioloop::apps::http {
namespace {

int status_of(std::string_view bytes, const request_limits& limits = {}) {
    parse_result r = parse_request(bytes, limits);
    EXPECT_EQ(r.status, parse_status::error) << bytes;
    return r.error_status;
}

TEST(HttpRequest, ParsesGetWithHeaders) {
    std::string text = "GET /a/b.html?x=1 HTTP/1.1\r\nHost: example\r\nIf-None-Match: \"abc\"\r\n"
                       "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nRange:  bytes=0-9 \r\n"
                       "\r\n";
    parse_result r = parse_request(text);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.consumed, text.size());
    EXPECT_EQ(r.req.method, method::get);
    EXPECT_EQ(r.req.target, "/a/b.html?x=1");
    EXPECT_EQ(r.req.host, "example");
    EXPECT_EQ(r.req.if_none_match, "\"abc\"");
    EXPECT_EQ(r.req.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(r.req.range, "bytes=0-9");
    EXPECT_TRUE(r.req.keep_alive);
}

TEST(HttpRequest, KeepsIfRange) {
    parse_result r =
        parse_request("GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=1-\r\nIf-Range: \"e1\"\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.req.if_range, "\"e1\"");
    EXPECT_EQ(r.req.range, "bytes=1-");
}

TEST(HttpRequest, HeadAndBareLineFeeds) {
    parse_result r = parse_request("\r\nHEAD / HTTP/1.1\nhost: x\n\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.req.method, method::head);
    EXPECT_EQ(r.consumed, 27u);
}

TEST(HttpRequest, IncompleteUntilBlankLine) {
    std::string text = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for (std::size_t n = 0; n < text.size(); ++n) {
        EXPECT_EQ(parse_request(text.substr(0, n)).status, parse_status::incomplete) << n;
    }
    EXPECT_EQ(parse_request(text).status, parse_status::complete);
}

TEST(HttpRequest, PipelinedRequestsReturnBytesConsumed) {
    std::string first = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
    std::string second = "GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    std::string both = first + second;
    parse_result r = parse_request(both);
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.consumed, first.size());
    EXPECT_EQ(r.req.target, "/1");
    parse_result r2 = parse_request(std::string_view(both).substr(r.consumed));
    ASSERT_EQ(r2.status, parse_status::complete);
    EXPECT_EQ(r2.req.target, "/2");
    EXPECT_FALSE(r2.req.keep_alive);
}

TEST(HttpRequest, KeepAliveRules) {
    EXPECT_TRUE(parse_request("GET / HTTP/1.1\r\nHost: x\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(
        parse_request("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n").req.keep_alive);
    EXPECT_TRUE(parse_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(
        parse_request("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").req.keep_alive);
    // HTTP/1.0 needs no Host.
    EXPECT_EQ(parse_request("GET / HTTP/1.0\r\n\r\n").status, parse_status::complete);
}

TEST(HttpRequest, AbsoluteFormTakesItsAuthority) {
    parse_result r = parse_request("GET http://h:8/p?q HTTP/1.1\r\nHost: other\r\n\r\n");
    ASSERT_EQ(r.status, parse_status::complete);
    EXPECT_EQ(r.req.target, "/p?q");
    EXPECT_EQ(r.req.host, "h:8");
}

TEST(HttpRequest, BadRequests400) {
    EXPECT_EQ(status_of("GET /\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1 x\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400); // no Host
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
                        "\r\n"),
              400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01"
                        "b\r\n\r\n"),
              400);
    EXPECT_EQ(status_of("GET / HTTX/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

TEST(HttpRequest, MethodsOtherThanGetAndHead405) {
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    EXPECT_EQ(status_of("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    EXPECT_EQ(status_of("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 405); // methods are case-sensitive
}

TEST(HttpRequest, BodiesAndTransferEncodings) {
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"), 413);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
    EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status,
              parse_status::complete);
}

TEST(HttpRequest, VersionsOtherThan1x505) {
    EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
    EXPECT_EQ(status_of("GET / HTTP/0.9\r\n\r\n"), 505);
}

TEST(HttpRequest, LongTarget414EvenBeforeTheLineEnds) {
    request_limits limits;
    limits.max_target = 100;
    std::string target(101, 'a');
    target[0] = '/';
    EXPECT_EQ(status_of("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n", limits), 414);
    EXPECT_EQ(status_of("GET " + target, limits), 414);
}

TEST(HttpRequest, HeaderLimits431) {
    request_limits limits;
    limits.max_header_bytes = 200;
    limits.max_headers = 3;
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits), 431);
    std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(300, 'y');
    EXPECT_EQ(status_of(big, limits), 431); // no end of headers yet, already too big
    EXPECT_EQ(status_of(big + "\r\n\r\n", limits), 431);
    EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", limits).status,
              parse_status::complete);
}

TEST(HttpRequest, ReasonPhrases) {
    EXPECT_EQ(reason_phrase(404), "Not Found");
    EXPECT_EQ(reason_phrase(416), "Range Not Satisfiable");
    EXPECT_EQ(reason_phrase(999), "Unknown");
}

} // namespace
} // namespace aioloop::apps::http
