// `aioloop http` on a kernel without cachestat(2) (before 6.5, or a seccomp profile that refuses
// it): the server can't tell whether a range is in the page cache, so it must never sendfile
// (which would wait for the disk on a miss) and fall back to RWF_NOWAIT reads on the loop, with
// the misses going to the reads that never block (O_DIRECT AIO, the ring, the pool), and still
// serve every byte. The tool runs under a seccomp filter that fails cachestat with ENOSYS, as an
// old kernel does; curl and cmp check the bytes of files on both sides of the zero-copy
// threshold.

#include <filesystem>
#include <fstream>
#include <string>

#include <sys/syscall.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/loop_fixture.hpp"
#include "support/seccomp.hpp"
#include "support/sockets.hpp"
#include "support/tool_server.hpp"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

namespace aioloop::apps {
namespace {

namespace fsys = std::filesystem;

class HttpWithoutCachestat : public ::testing::TestWithParam<backend_kind> {
protected:
    void SetUp() override {
        if (std::string why = testing::backend_unavailable(GetParam()); !why.empty()) {
            GTEST_SKIP() << why;
        }
        root_ = fsys::path(testing::temp_path("http_nocachestat"));
        fsys::create_directories(root_);
        for (std::size_t size : {std::size_t{1}, std::size_t{4097}, std::size_t{3 << 20}}) {
            std::ofstream f(root_ / fmt::format("f{}.bin", size), std::ios::binary);
            for (std::size_t i = 0; i < size; ++i) {
                f.put(static_cast<char>(i * 13 % 251));
            }
        }
    }
    void TearDown() override {
        std::error_code ignored;
        fsys::remove_all(root_, ignored);
    }

    fsys::path root_;
};

// The tool's `ops_send` from --stats in `err`, -1 when absent.
long sends_of(const std::string& err) {
    auto at = err.find("ops_send");
    return at == std::string::npos ? -1 : std::stol(err.substr(at + 8));
}

TEST_P(HttpWithoutCachestat, ServesEveryByteTakingTheReadsThatNeverBlock) {
    // The shell, the tool and curl all run under the filter; only the tool calls cachestat.
    std::string script = fmt::format(
        R"(cd '{root}' || exit 2
rm -f log got.* # the log of the run before would show its port until the server truncates it
'{tool}' http --listen 127.0.0.1:0 --root . --backend {backend} --stats 2> log &
server=$!
port=
for i in $(seq 100); do
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' log)
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || {{ kill $server; cat log >&2; exit 3; }}
status=0
for f in f1.bin f4097.bin f3145728.bin; do
    for round in 1 2; do
        curl -sS -m 10 -o "got.$f" "http://127.0.0.1:$port/$f" && cmp "got.$f" "$f" || status=4
    done
done
kill -TERM $server
wait $server || status=5
cat log >&2
exit $status
)",
        fmt::arg("root", root_.string()),
        fmt::arg("tool", AIOLOOP_TOOL_PATH),
        fmt::arg("backend", to_string(GetParam())));
    auto refused = testing::exec_with_seccomp(
        {{__NR_cachestat, ENOSYS}}, {"/bin/sh", "-c", script}, std::chrono::seconds(30));
    ASSERT_TRUE(refused.ok()) << refused.describe();
    // The control: the same with cachestat allowed (an unrelated call refused instead).
    auto allowed = testing::exec_with_seccomp(
        {{SYS_acct, EPERM}}, {"/bin/sh", "-c", script}, std::chrono::seconds(30));
    ASSERT_TRUE(allowed.ok()) << allowed.describe();
    // The filter really changed the path: with cachestat the cached 3 MiB body goes out by
    // sendfile after one send of the head; without it, no range counts as cached, sendfile is
    // never tried, and the body goes out in 128 KiB sends (24 per response).
    EXPECT_GE(sends_of(refused.err), 2 * 24) << refused.err;
    EXPECT_LT(sends_of(allowed.err), 24) << allowed.err;
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         HttpWithoutCachestat,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop::apps
