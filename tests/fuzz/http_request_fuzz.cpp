// libFuzzer target: the request parser and the path decoder on arbitrary bytes. Besides crashes
// and sanitizer reports, it checks the promises callers rely on.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <aioloop/apps/http_path.hpp>
#include <aioloop/apps/http_request.hpp>

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace aioloop::apps::http;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    request_limits limits;
    limits.max_header_bytes = 1024;
    limits.max_headers = 16;
    limits.max_target = 256;
    parse_result r = parse_request(bytes, limits);
    switch (r.status) {
    case parse_status::complete: {
        check(r.consumed > 0 && r.consumed <= size && r.consumed <= limits.max_header_bytes);
        check(!r.req.target.empty() && r.req.target.front() == '/');
        check(r.req.target.size() <= limits.max_target);
        decoded_path p = decode_target_path(r.req.target);
        if (p.status == 0) {
            std::string_view rel = p.relative;
            check(rel.empty() || rel.front() != '/');
            check(rel.find('\0') == std::string_view::npos);
            // No ".." segment and no hidden component survives decoding.
            std::size_t start = 0;
            while (start <= rel.size() && !rel.empty()) {
                std::size_t slash = rel.find('/', start);
                std::string_view seg = rel.substr(start, slash - start);
                check(!seg.empty() && seg.front() != '.');
                if (slash == std::string_view::npos) {
                    break;
                }
                start = slash + 1;
            }
        } else {
            check(p.status == 400 || p.status == 404);
        }
        // Parsing the same request again gives the same length (pipelining relies on it).
        check(parse_request(bytes.substr(0, r.consumed), limits).consumed == r.consumed);
        break;
    }
    case parse_status::error:
        check(r.error_status == 400 || r.error_status == 405 || r.error_status == 413 ||
              r.error_status == 414 || r.error_status == 431 || r.error_status == 501 ||
              r.error_status == 505);
        break;
    case parse_status::incomplete:
        check(size <= limits.max_header_bytes + 2 || bytes.find('\n') != std::string_view::npos);
        break;
    }
    return 0;
}
