// The proof that `aioloop http` never blocks its loop on the disk: with the page cache dropped
// (root only: it empties the whole machine's cache, hence tests/system/, which runs alone), every
// open(), stat() and read of 64 cold 1 MiB files must go off the loop, so the loop's longest turn
// stays as short as a turn with nothing but sockets in it (reported; the loop thread never being
// seen waiting for the disk is asserted).

#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <aioloop/apps/http.hpp>

#include "support/loop_fixture.hpp"
#include "support/sockets.hpp"

namespace aioloop::apps {
namespace {

namespace fsys = std::filesystem;

constexpr int dirs = 8;
constexpr int files_per_dir = 8;
constexpr std::size_t file_size = 1 << 20;
constexpr int clients = 4;

// The design bound: a turn runs callbacks that parse, format and hand buffers to the kernel;
// none of them waits for a disk (a cold 1 MiB file takes 0.5-7 ms to read here, a cold open()
// with its directory lookups 1-4 ms). Measured figures are in docs/http.md.
constexpr std::uint64_t longest_turn_target_ns = 1'000'000; // reported, not asserted

std::string file_name(int d, int f) {
    return fmt::format("d{}/f{}.bin", d, f);
}

// Content that differs per file and per offset, so that a wrong chunk or file can't pass.
void fill(std::vector<char>& buf, int d, int f) {
    auto x = static_cast<std::uint32_t>(d * 131 + f * 7 + 1);
    for (std::size_t i = 0; i < buf.size(); i += 4) {
        x = x * 1664525u + 1013904223u;
        std::memcpy(buf.data() + i, &x, 4);
    }
}

// Up to `limit` bytes of a /proc file, in one read; nothing when it can't be opened (a thread
// that is gone).
std::optional<std::string> read_proc(const std::string& path, std::size_t limit) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return std::nullopt;
    }
    std::string text(limit, '\0');
    ssize_t n = ::read(fd, text.data(), limit);
    ::close(fd);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return text;
}

std::uint64_t process_read_bytes() {
    auto text = read_proc("/proc/self/io", 1023);
    std::size_t at = text ? text->find("\nread_bytes: ") : std::string::npos;
    return at != std::string::npos ? std::strtoull(text->c_str() + at + 13, nullptr, 10) : 0;
}

bool drop_page_cache() {
    ::sync();
    int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = ::write(fd, "3\n", 2) == 2;
    ::close(fd);
    return ok;
}

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

// The state letter of a thread ('R', 'S', 'D'...), or 0 when it is gone.
char thread_state(pid_t tid) {
    auto text = read_proc(fmt::format("/proc/self/task/{}/stat", tid), 511);
    std::size_t paren = text ? text->rfind(')') : std::string::npos;
    return paren != std::string::npos && paren + 2 < text->size() && (*text)[paren + 1] == ' '
               ? (*text)[paren + 2]
               : 0;
}

// The kernel function a sleeping thread waits in (/proc/.../wchan), for the report.
std::string wchan(pid_t tid) {
    return read_proc(fmt::format("/proc/self/task/{}/wchan", tid), 127).value_or("?");
}

// A wait for the process's mmap_lock (the allocator's mmap/munmap, a page fault racing another
// thread's mapping change): uninterruptible, but not a wait for the disk. Seen under ASan, whose
// allocator maps often: vm_mmap_pgoff, lock_mm_and_find_vma.
bool memory_map_wait(const std::string& where) {
    // gup: io_submit pinning an O_DIRECT buffer (__gup_longterm_locked) takes the lock too.
    for (const char* name :
         {"mmap", "munmap", "vma", "mm_", "fault", "mprotect", "madvise", "gup"}) {
        if (where.find(name) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// Watches every thread of the process until stopped and counts the samples that found the loop
// thread, or any other thread (the pool), in uninterruptible sleep: a wait for the disk.
struct d_state_sampler {
    std::atomic<pid_t> loop_tid{0};
    std::atomic<bool> done{false};
    std::uint64_t samples = 0;
    std::uint64_t loop_in_d = 0;
    std::uint64_t others_in_d = 0;
    std::string loop_wchans;             ///< where the loop thread slept, for each D sample
    std::uint64_t loop_in_mm = 0;        ///< D samples waiting for the mmap lock (not the disk)
    std::uint64_t loop_unattributed = 0; ///< D samples whose wchan was gone when read

    void run(int cpu) {
        if (cpu >= 0) {
            pin_to(cpu);
        }
        while (!done.load()) {
            pid_t loop = loop_tid.load();
            if (loop != 0) {
                ++samples;
                if (thread_state(loop) == 'D') {
                    std::string where = wchan(loop);
                    if (where.empty() || where == "0") {
                        ++loop_unattributed; // awake again by the time wchan was read
                    } else if (memory_map_wait(where)) {
                        ++loop_in_mm; // mmap_lock: another thread maps or faults
                    } else {
                        ++loop_in_d;
                        loop_wchans += where + " ";
                    }
                }
                for (const auto& task : fsys::directory_iterator("/proc/self/task")) {
                    auto tid = static_cast<pid_t>(std::stoi(task.path().filename().string()));
                    if (tid != loop && tid != ::gettid() && thread_state(tid) == 'D') {
                        ++others_in_d;
                    }
                }
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
    }
};

// One keep-alive connection fetching `names` in turn; checks status, length and every byte.
std::string fetch_all(int port, std::vector<std::pair<int, int>> names, int cpu) {
    if (cpu >= 0) {
        pin_to(cpu);
    }
    testing::scoped_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        return "connect failed";
    }
    std::vector<char> expected(file_size);
    std::string in;
    std::array<char, 65536> buf{};
    for (auto [d, f] : names) {
        std::string req = fmt::format("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", file_name(d, f));
        if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(req.size())) {
            return "send failed";
        }
        std::size_t head_end = std::string::npos;
        std::size_t want = 0;
        for (;;) {
            if (head_end == std::string::npos) {
                head_end = in.find("\r\n\r\n");
                if (head_end != std::string::npos) {
                    if (!in.starts_with("HTTP/1.1 200 ") ||
                        in.find(fmt::format("Content-Length: {}\r\n", file_size)) > head_end) {
                        return in.substr(0, head_end);
                    }
                    want = head_end + 4 + file_size;
                }
            }
            if (head_end != std::string::npos && in.size() >= want) {
                break;
            }
            ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
            if (n <= 0) {
                return fmt::format(
                    "{}: connection ended after {} bytes", file_name(d, f), in.size());
            }
            in.append(buf.data(), static_cast<std::size_t>(n));
        }
        fill(expected, d, f);
        if (std::memcmp(in.data() + head_end + 4, expected.data(), file_size) != 0) {
            return file_name(d, f) + ": wrong bytes";
        }
        in.erase(0, want);
    }
    return {};
}

// How late 1 ms timers on the server's loop fire: unlike loop_stats' longest turn (callbacks
// only), this also covers the backend's submit and reap (an io_submit that blocked would show).
task<void> heartbeat(loop* ev, std::atomic<std::int64_t>* worst_ns) {
    for (;;) {
        auto due = clock::now() + std::chrono::milliseconds(1);
        auto slept = co_await ev->sleep_until(due);
        if (!slept) {
            co_return;
        }
        auto late = (clock::now() - due).count();
        if (late > worst_ns->load()) {
            worst_ns->store(late);
        }
    }
}

class HttpColdCache : public testing::loop_test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root to write /proc/sys/vm/drop_caches";
        }
        if (::access("/proc/sys/vm/drop_caches", W_OK) != 0) {
            GTEST_SKIP() << "/proc/sys/vm/drop_caches is not writable here";
        }
        testing::loop_test::SetUp();
        if (IsSkipped()) {
            return;
        }
        loop_.reset();
        root_ = fsys::absolute(testing::temp_path("http_cold"));
        fsys::create_directories(root_);
        struct statfs sfs {};
        if (::statfs(root_.c_str(), &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
            GTEST_SKIP() << root_ << " is on tmpfs: dropping caches can't make it cold";
        }
        std::vector<char> buf(file_size);
        for (int d = 0; d < dirs; ++d) {
            fsys::create_directories(root_ / fmt::format("d{}", d));
            for (int f = 0; f < files_per_dir; ++f) {
                fill(buf, d, f);
                testing::scoped_fd fd(::open((root_ / file_name(d, f)).c_str(),
                                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                             0644));
                ASSERT_GE(fd.get(), 0);
                ASSERT_EQ(::write(fd.get(), buf.data(), buf.size()),
                          static_cast<ssize_t>(buf.size()));
            }
        }
    }
    void TearDown() override {
        if (!root_.empty()) {
            fsys::remove_all(root_);
        }
    }

    fsys::path root_;
};

struct cold_run {
    std::string error; ///< why it could not run
    loop_stats stats;
    std::int64_t worst_lateness_ns = 0;
    std::uint64_t read_from_disk = 0;
    std::uint64_t samples = 0;     ///< thread states sampled
    std::uint64_t loop_in_d = 0;   ///< samples with the loop thread waiting for the disk
    std::uint64_t others_in_d = 0; ///< samples with another thread (the pool) waiting for it
    std::string loop_wchans;
    std::uint64_t loop_in_mm = 0;
    std::uint64_t loop_unattributed = 0;
    std::string figures;
};

// Serves the tree with the page cache just dropped to `clients` parallel keep-alive connections.
// isolated: the loop thread runs SCHED_FIFO alone on CPU 0 (pool threads and clients on CPU 1),
// so that no other thread's time slice lands inside one of its turns: on a shared 2-core machine
// the loop is otherwise preempted mid-turn by the clients and pool threads it wakes (perf
// sched:sched_switch shows such switches in state R after send() and pthread_cond_signal(), and
// never a D-state sleep of the loop thread), and then its "longest turn" measures the scheduler.
cold_run serve_cold(backend_kind backend, const fsys::path& root, bool isolated) {
    cold_run out;
    server_config config;
    config.name = "http";
    config.listen.push_back(*net::address::resolve("127.0.0.1:0")->begin());
    config.loop.backend = backend;
    config.handle_signals = false;
    config.quiet = true;
    config.grace = std::chrono::milliseconds(200);
    std::stop_source stop;
    config.stop = stop.get_token();
    std::promise<int> port;
    config.on_listening = [&port](const std::vector<net::address>& bound) {
        port.set_value(bound.front().port());
    };
    http_options options;
    options.root = root.string();
    auto http = make_http_handler(options);
    if (!http) {
        out.error = http.error().message();
        return out;
    }
    std::atomic<loop*> server_loop{nullptr};
    std::atomic<std::int64_t> worst_lateness{0};
    std::atomic<int> fifo_error{0};
    std::stop_source beat;
    d_state_sampler sampler;
    handler_factory factory = [&, inner = *http](loop& ev) {
        server_loop = &ev;
        sampler.loop_tid = ::gettid();
        if (isolated) {
            pin_to(1); // the pool threads that inner() starts inherit this
        }
        connection_handler handler = inner(ev);
        if (isolated) {
            pin_to(0);
            sched_param prio{};
            prio.sched_priority = 1;
            fifo_error = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &prio);
        }
        ev.spawn(heartbeat(&ev, &worst_lateness), beat.get_token());
        return handler;
    };
    if (!drop_page_cache()) {
        out.error = "writing 3 to /proc/sys/vm/drop_caches failed";
        return out;
    }
    std::uint64_t read_before = process_read_bytes();
    std::thread watcher([&sampler, isolated] { sampler.run(isolated ? 1 : -1); });
    std::thread server([config, factory] { run_server(config, factory); });
    auto port_future = port.get_future();
    if (port_future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
        out.error = "the server did not start";
        stop.request_stop();
        server.join();
        sampler.done = true;
        watcher.join();
        return out;
    }
    int p = port_future.get();

    // Each client takes every clients-th file, so that they all start cold at once.
    std::vector<std::future<std::string>> fetches;
    for (int c = 0; c < clients; ++c) {
        std::vector<std::pair<int, int>> names;
        for (int i = c; i < dirs * files_per_dir; i += clients) {
            names.emplace_back(i / files_per_dir, i % files_per_dir);
        }
        fetches.push_back(std::async(std::launch::async, fetch_all, p, names, isolated ? 1 : -1));
    }
    for (auto& f : fetches) {
        std::string failed = f.get();
        if (!failed.empty() && out.error.empty()) {
            out.error = failed;
        }
    }
    out.read_from_disk = process_read_bytes() - read_before;
    sampler.done = true;
    watcher.join();
    out.samples = sampler.samples;
    out.loop_in_d = sampler.loop_in_d;
    out.others_in_d = sampler.others_in_d;
    out.loop_wchans = sampler.loop_wchans;
    out.loop_in_mm = sampler.loop_in_mm;
    out.loop_unattributed = sampler.loop_unattributed;

    std::promise<loop_stats> stats;
    loop* ev = server_loop.load();
    ev->post([ev, &stats] { stats.set_value(ev->stats()); });
    out.stats = stats.get_future().get();
    beat.request_stop();
    stop.request_stop();
    server.join();
    out.worst_lateness_ns = worst_lateness.load();
    if (isolated && fifo_error != 0 && out.error.empty()) {
        out.error = fmt::format("pthread_setschedparam(SCHED_FIFO): {}", std::strerror(fifo_error));
    }
    out.figures = fmt::format("{} {}: longest turn {} us, worst 1 ms-timer lateness {} us, "
                              "{} turns, {} MiB read from disk; {} samples: loop thread in D "
                              "state {} ({}) + {} on the mmap lock + {} unattributed, other "
                              "threads {}",
                              to_string(backend),
                              isolated ? "isolated (SCHED_FIFO, own CPU)" : "shared CPUs",
                              out.stats.longest_turn_ns / 1000,
                              out.worst_lateness_ns / 1000,
                              out.stats.turns,
                              out.read_from_disk >> 20,
                              out.samples,
                              out.loop_in_d,
                              out.loop_wchans,
                              out.loop_in_mm,
                              out.loop_unattributed,
                              out.others_in_d);
    return out;
}

TEST_P(HttpColdCache, LongestTurnStaysShortWhileColdFilesAreRead) {
    // Shared CPUs first: reported, not asserted (it measures the machine's other load as well).
    cold_run shared = serve_cold(GetParam(), root_, false);
    ASSERT_EQ(shared.error, "");
    std::cout << shared.figures << "\n";
    RecordProperty("shared", shared.figures);
    // The deterministic half of the proof: a loop that waited for the disk would be seen in D
    // state; the pool threads, which do wait for it, are (the sampler can see such waits).
    EXPECT_EQ(shared.loop_in_d, 0u) << shared.figures;
    EXPECT_GT(shared.others_in_d, 0u) << shared.figures;
    if (std::thread::hardware_concurrency() < 2) {
        GTEST_SKIP() << "one CPU: the loop can't have a CPU of its own; " << shared.figures;
    }
    // One isolated run, reported: what is left there is the loop's own work. The 1 ms target is
    // a speed figure, read from this output (and docs/http.md), not asserted: even a SCHED_FIFO
    // thread on its own CPU loses whole milliseconds now and then on a shared VM (no system call
    // of the loop thread lasted over 0.3 ms in `perf trace --duration 0.3`). What is asserted is
    // the part that can't pass by luck: the files came from the disk, and the loop never waited
    // for it.
    std::uint64_t total = std::uint64_t{dirs * files_per_dir} * file_size;
    EXPECT_GE(shared.read_from_disk, total / 2) << shared.figures;
    cold_run isolated = serve_cold(GetParam(), root_, true);
    ASSERT_EQ(isolated.error, "");
    EXPECT_GE(isolated.read_from_disk, total / 2) << isolated.figures;
    EXPECT_EQ(isolated.loop_in_d, 0u) << isolated.figures;
    RecordProperty("isolated", isolated.figures);
    std::cout << isolated.figures << "\n"
              << "longest turn " << isolated.stats.longest_turn_ns / 1000 << " us: "
              << (isolated.stats.longest_turn_ns < longest_turn_target_ns ? "within" : "over")
              << " the 1 ms target\n";
}

INSTANTIATE_TEST_SUITE_P(AllBackends,
                         HttpColdCache,
                         testing::all_backends(),
                         testing::backend_test_name);

} // namespace
} // namespace aioloop::apps
