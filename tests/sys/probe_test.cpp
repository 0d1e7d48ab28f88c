#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>
#include <vector>

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <aioloop/sys/aio.hpp>
#include <aioloop/sys/probe.hpp>

#include "support/seccomp.hpp"

namespace aioloop::sys {
namespace {

using aioloop::testing::run_in_child_with_seccomp;

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// Every false flag and every missing number says why.
void expect_reasons(const probe_report& report) {
    std::vector<std::pair<const char*, const probe_flag*>> flags = {
        {"aio", &report.aio},
        {"aio_poll", &report.aio_poll},
        {"aio_pgetevents", &report.aio_pgetevents},
        {"aio_ring", &report.aio_ring},
        {"rwf_nowait", &report.rwf_nowait},
        {"rwf_nowait_file", &report.rwf_nowait_file},
        {"dio", &report.dio},
        {"io_uring", &report.io_uring},
        {"uring_defer_taskrun", &report.uring_defer_taskrun},
    };
    for (auto [name, flag] : flags) {
        if (!flag->value) {
            EXPECT_FALSE(flag->reason.empty()) << name << " is false without a reason";
        }
    }
    std::vector<std::pair<const char*, const probe_number*>> numbers = {
        {"aio_max_nr", &report.aio_max_nr},
        {"aio_nr", &report.aio_nr},
        {"dio_mem_align", &report.dio_mem_align},
        {"dio_offset_align", &report.dio_offset_align},
        {"io_uring_disabled", &report.io_uring_disabled},
    };
    for (auto [name, number] : numbers) {
        if (!number->value) {
            EXPECT_FALSE(number->reason.empty()) << name << " is missing without a reason";
        }
    }
}

// A private directory for the probe's temporary file, removed (it must be empty by then).
class scratch_dir {
public:
    scratch_dir() {
        char name[] = "./probe-test-XXXXXX";
        if (::mkdtemp(name) != nullptr) {
            path_ = name;
        }
    }
    ~scratch_dir() {
        if (!path_.empty()) {
            ::rmdir(path_.c_str());
        }
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name != "." && name != "..") {
                names.push_back(name);
            }
        }
        ::closedir(d);
    }
    return names;
}

TEST(ProbeKernel, ParsesKernelReleases) {
    EXPECT_EQ(parse_kernel_version("5.15.0-91-generic"), (std::pair{5, 15}));
    EXPECT_EQ(parse_kernel_version("6.1.0-18-amd64"), (std::pair{6, 1}));
    EXPECT_EQ(parse_kernel_version("4.18"), (std::pair{4, 18}));
    EXPECT_FALSE(parse_kernel_version("linux"));
    EXPECT_FALSE(parse_kernel_version(""));
}

TEST(ProbeKernel, WarnsOnlyBelow516) {
    auto report = probe_kernel();
    ASSERT_FALSE(report.kernel.empty());
    auto version = parse_kernel_version(report.kernel);
    ASSERT_TRUE(version) << report.kernel;
    bool old = *version < std::pair{5, 16};
    EXPECT_EQ(!report.kernel_warning.empty(), old) << report.kernel_warning;
}

TEST(ProbeKernel, EveryMissingFeatureHasAReason) {
    expect_reasons(probe_kernel());
    scratch_dir dir;
    ASSERT_FALSE(dir.path().empty());
    expect_reasons(probe_kernel({.directory = dir.path()}));
    // tmpfs: RWF_NOWAIT and STATX_DIOALIGN answers differ from ext4's, reasons must still be there.
    if (::access("/dev/shm", W_OK) == 0) {
        expect_reasons(probe_kernel({.directory = "/dev/shm"}));
    }
}

TEST(ProbeKernel, AioWorks) {
    auto report = probe_kernel();
    if (!report.aio.value &&
        (report.aio.error.value() == ENOSYS || report.aio.error.value() == EPERM)) {
        GTEST_SKIP() << report.aio.reason;
    }
    EXPECT_TRUE(report.aio.value) << report.aio.reason;
    ASSERT_TRUE(report.aio_max_nr.value) << report.aio_max_nr.reason;
    ASSERT_TRUE(report.aio_nr.value) << report.aio_nr.reason;
    EXPECT_GT(*report.aio_max_nr.value, 0u);
}

TEST(ProbeKernel, AioPollFiresAndIsReapedByIoPgetevents) {
    auto report = probe_kernel();
    if (!report.aio.value) {
        GTEST_SKIP() << report.aio.reason;
    }
    if (!report.aio_poll.value && report.aio_poll.error.value() == EINVAL) {
        GTEST_SKIP() << report.aio_poll.reason; // before 4.18
    }
    EXPECT_TRUE(report.aio_poll.value) << report.aio_poll.reason;
    EXPECT_TRUE(report.aio_pgetevents.value) << report.aio_pgetevents.reason;
}

TEST(ProbeKernel, RingIsUsable) {
    if (running_under_valgrind()) {
        GTEST_SKIP() << "the ring is turned off under valgrind";
    }
    auto report = probe_kernel();
    if (!report.aio.value) {
        GTEST_SKIP() << report.aio.reason;
    }
    EXPECT_TRUE(report.aio_ring.value) << report.aio_ring.reason;
}

TEST(ProbeKernel, RwfNowaitOnASocketSaysWhatTheKernelAnswered) {
    auto report = probe_kernel();
    if (!report.aio.value) {
        GTEST_SKIP() << report.aio.reason;
    }
    EXPECT_FALSE(report.rwf_nowait_answer.empty());
    if (report.rwf_nowait.value) {
        EXPECT_TRUE(has(report.rwf_nowait_answer, "EAGAIN")) << report.rwf_nowait_answer;
    }
}

TEST(ProbeKernel, FileProbeLeavesNothingBehind) {
    scratch_dir dir;
    ASSERT_FALSE(dir.path().empty());
    auto report = probe_kernel({.directory = dir.path()});
    EXPECT_TRUE(entries(dir.path()).empty());
    if (report.aio.value) {
        EXPECT_FALSE(report.rwf_nowait_file_answer.empty()) << report.rwf_nowait_file.reason;
    }
    // Buffered ext4/xfs/btrfs files take RWF_NOWAIT (4.14+); a filesystem that refuses it says so.
    if (!report.rwf_nowait_file.value) {
        EXPECT_TRUE(has(report.rwf_nowait_file.reason, "RWF_NOWAIT"))
            << report.rwf_nowait_file.reason;
    }
    if (report.dio_mem_align.value) {
        ASSERT_TRUE(report.dio_offset_align.value);
        EXPECT_GT(*report.dio_mem_align.value, 0u);
        EXPECT_GT(*report.dio_offset_align.value, 0u);
    }
}

TEST(ProbeKernel, MissingDirectoryIsAReasonNotACrash) {
    auto report = probe_kernel({.directory = "/nonexistent/aioloop-probe"});
    EXPECT_FALSE(report.rwf_nowait_file.value);
    EXPECT_TRUE(has(report.rwf_nowait_file.reason, "ENOENT")) << report.rwf_nowait_file.reason;
    EXPECT_FALSE(report.dio.value);
    EXPECT_FALSE(report.dio_mem_align.value);
    EXPECT_TRUE(has(report.dio_mem_align.reason, "ENOENT")) << report.dio_mem_align.reason;
}

TEST(ProbeKernel, UringWorksWithDeferTaskrun) {
    auto report = probe_kernel();
    int err = report.io_uring.error.value();
    if (!report.io_uring.value && (err == ENOSYS || err == EPERM)) {
        GTEST_SKIP() << report.io_uring.reason;
    }
    EXPECT_TRUE(report.io_uring.value) << report.io_uring.reason;
    auto version = parse_kernel_version(report.kernel);
    if (version && *version < std::pair{6, 1}) {
        EXPECT_FALSE(report.uring_defer_taskrun.value);
        GTEST_SKIP() << report.uring_defer_taskrun.reason;
    }
    EXPECT_TRUE(report.uring_defer_taskrun.value) << report.uring_defer_taskrun.reason;
}

TEST(CheckAioUsable, AnswersAsTheProbeDoes) {
    auto report = probe_kernel();
    auto check = check_aio_usable(64);
    EXPECT_EQ(check.has_value(), report.aio.value && report.aio_poll.value)
        << (check ? "" : check.error().reason);
}

TEST(CheckAioUsable, HandsBackAnEmptyContext) {
    auto ctx = create_checked_aio_context(32);
    if (!ctx) {
        GTEST_SKIP() << ctx.error().reason;
    }
    EXPECT_EQ(ctx->capacity(), 32u);
    EXPECT_EQ(ctx->counters().submit_calls, 0u);
    EXPECT_EQ(ctx->ring_ready(), 0u);
    io_event event{};
    timespec zero{0, 0};
    auto n = ctx->reap({&event, 1}, 0, &zero);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 0u) << "the probe's POLL was left behind";
}

// io_setup(aio_max_nr + 1) is EAGAIN without root: the reason names the knob.
TEST(CheckAioUsable, OverAioMaxNrNamesTheSysctl) {
    auto limits = read_aio_limits();
    ASSERT_TRUE(limits);
    if (limits->max_nr >= 0xffffffffu) {
        GTEST_SKIP() << "fs.aio-max-nr doesn't fit io_setup's unsigned";
    }
    auto check = check_aio_usable(static_cast<unsigned>(limits->max_nr + 1));
    ASSERT_FALSE(check);
    EXPECT_EQ(check.error().error.value(), EAGAIN);
    EXPECT_TRUE(has(check.error().reason, "fs.aio-max-nr")) << check.error().reason;
}

TEST(CheckUringUsable, AnswersAsTheProbeDoes) {
    auto report = probe_kernel();
    EXPECT_EQ(check_uring_usable(false).has_value(), report.io_uring.value);
    EXPECT_EQ(check_uring_usable(true).has_value(),
              report.io_uring.value && report.uring_defer_taskrun.value);
}

// --- under seccomp ------------------------------------------------------------------------------

struct child_flag {
    bool value = false;
    std::string reason;
};

// Runs the probe and both checks in a child refusing `syscalls` with `errno_value`; the child
// prints `name \t 0|1 \t reason` lines, parsed here.
std::map<std::string, child_flag> probe_in_child(const std::vector<int>& syscalls,
                                                 int errno_value) {
    auto child = run_in_child_with_seccomp(syscalls, errno_value, [] {
        auto report = probe_kernel();
        auto line = [](const char* name, bool value, const std::string& reason) {
            fmt::print("{}\t{}\t{}\n", name, value ? 1 : 0, reason);
        };
        line("aio", report.aio.value, report.aio.reason);
        line("aio_poll", report.aio_poll.value, report.aio_poll.reason);
        line("aio_pgetevents", report.aio_pgetevents.value, report.aio_pgetevents.reason);
        line("aio_ring", report.aio_ring.value, report.aio_ring.reason);
        line("rwf_nowait", report.rwf_nowait.value, report.rwf_nowait.reason);
        line("io_uring", report.io_uring.value, report.io_uring.reason);
        auto aio = check_aio_usable(64);
        line("check_aio", aio.has_value(), aio ? "" : aio.error().reason);
        auto uring = check_uring_usable();
        line("check_uring", uring.has_value(), uring ? "" : uring.error().reason);
        return 0;
    });
    EXPECT_TRUE(child.ok()) << child.describe();
    std::map<std::string, child_flag> flags;
    std::istringstream in(child.out);
    std::string name;
    std::string value;
    std::string reason;
    while (std::getline(in, name, '\t') && std::getline(in, value, '\t') &&
           std::getline(in, reason)) {
        flags[name] = {value == "1", reason};
    }
    return flags;
}

// Docker's default profile answers io_uring_setup with EPERM.
TEST(ProbeUnderSeccomp, UringRefusedWithEperm) {
    auto flags = probe_in_child({SYS_io_uring_setup}, EPERM);
    ASSERT_TRUE(flags.count("io_uring") && flags.count("check_uring"));
    EXPECT_FALSE(flags["io_uring"].value);
    EXPECT_TRUE(has(flags["io_uring"].reason, "EPERM")) << flags["io_uring"].reason;
    EXPECT_TRUE(has(flags["io_uring"].reason, "seccomp")) << flags["io_uring"].reason;
    EXPECT_FALSE(flags["check_uring"].value);
    EXPECT_TRUE(has(flags["check_uring"].reason, "EPERM")) << flags["check_uring"].reason;
}

// A kernel built without CONFIG_AIO answers ENOSYS.
TEST(ProbeUnderSeccomp, AioRefusedWithEnosys) {
    auto flags = probe_in_child({SYS_io_setup}, ENOSYS);
    ASSERT_TRUE(flags.count("aio") && flags.count("check_aio"));
    EXPECT_FALSE(flags["aio"].value);
    EXPECT_TRUE(has(flags["aio"].reason, "ENOSYS")) << flags["aio"].reason;
    EXPECT_FALSE(flags["aio_poll"].value);
    EXPECT_FALSE(flags["aio_poll"].reason.empty());
    EXPECT_FALSE(flags["check_aio"].value);
    EXPECT_TRUE(has(flags["check_aio"].reason, "ENOSYS")) << flags["check_aio"].reason;
}

// io_submit allowed, every way to wait for a completion refused: AIO "works" but a loop can't.
TEST(ProbeUnderSeccomp, GeteventsRefusedMeansNoAioPoll) {
    auto flags = probe_in_child({SYS_io_pgetevents, SYS_io_getevents}, EPERM);
    ASSERT_TRUE(flags.count("aio") && flags.count("aio_poll"));
    if (!flags["aio"].value) {
        GTEST_SKIP() << flags["aio"].reason;
    }
    EXPECT_FALSE(flags["aio_poll"].value);
    EXPECT_TRUE(has(flags["aio_poll"].reason, "io_pgetevents: EPERM")) << flags["aio_poll"].reason;
    EXPECT_FALSE(flags["aio_pgetevents"].value);
    // Socket reads complete inside io_submit and are reaped from the ring: still fine.
    EXPECT_TRUE(flags["rwf_nowait"].value) << flags["rwf_nowait"].reason;
    EXPECT_FALSE(flags["check_aio"].value);
    EXPECT_TRUE(has(flags["check_aio"].reason, "EPERM")) << flags["check_aio"].reason;
}

// Only io_pgetevents refused: the loop reaps with io_getevents, so AIO poll stays usable, but the
// report says io_pgetevents itself was refused.
TEST(ProbeUnderSeccomp, OnlyPgeteventsRefusedIsReported) {
    auto flags = probe_in_child({SYS_io_pgetevents}, EPERM);
    ASSERT_TRUE(flags.count("aio") && flags.count("aio_pgetevents"));
    if (!flags["aio"].value) {
        GTEST_SKIP() << flags["aio"].reason;
    }
    EXPECT_TRUE(flags["aio_poll"].value) << flags["aio_poll"].reason;
    EXPECT_FALSE(flags["aio_pgetevents"].value);
    EXPECT_TRUE(has(flags["aio_pgetevents"].reason, "EPERM")) << flags["aio_pgetevents"].reason;
    EXPECT_TRUE(flags["check_aio"].value) << flags["check_aio"].reason;
}

} // namespace
} // namespace aioloop::sys
