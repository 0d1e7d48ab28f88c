#include "apps/bench_window.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace aioloop::apps::detail {

std::optional<std::array<core_times, 2>> read_core_times() {
    std::ifstream in("/proc/stat");
    std::array<core_times, 2> out{};
    unsigned found = 0;
    std::string line;
    while (std::getline(in, line) && found < 2) {
        for (unsigned core = 0; core < 2; ++core) {
            if (!line.starts_with("cpu" + std::to_string(core) + " ")) {
                continue;
            }
            std::istringstream fields(line.substr(line.find(' ')));
            // user nice system idle iowait irq softirq steal (guest time is within user)
            std::uint64_t v[8] = {};
            for (auto& x : v) {
                fields >> x;
            }
            out[core].busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            out[core].softirq = v[6];
            out[core].total = out[core].busy + v[3] + v[4];
            ++found;
        }
    }
    if (found < 2) {
        return std::nullopt;
    }
    return out;
}

std::optional<std::uint64_t> run_delay_ns(pid_t pid, pid_t tid) {
    std::string task = "/proc/" + std::to_string(pid) + "/task";
    std::vector<std::string> paths;
    if (tid != 0) {
        paths.push_back(task + "/" + std::to_string(tid) + "/schedstat");
    } else {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(task, ec)) {
            paths.push_back(entry.path().string() + "/schedstat");
        }
    }
    std::uint64_t total = 0;
    bool any = false;
    for (const auto& path : paths) {
        std::ifstream in(path);
        std::uint64_t on_cpu = 0, waited = 0;
        if (in >> on_cpu >> waited) {
            total += waited;
            any = true;
        }
    }
    return any ? std::optional(total) : std::nullopt;
}

void window_meter::start() noexcept {
    client_tid_ = static_cast<pid_t>(::gettid());
    client_wait0_ = run_delay_ns(::getpid(), client_tid_);
    server_wait0_ = run_delay_ns(pid_);
    cpu0_ = process_cpu_ns(pid_);
    if (upstream_ > 0) {
        upstream_cpu0_ = process_cpu_ns(upstream_);
    }
    cores0_ = read_core_times();
    counter_.enable();
    std::lock_guard lock(mutex_);
    t0_ = clock::now();
    started_ = true;
    wake_.notify_all();
}

void window_meter::run(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, stop, [this] { return started_; });
    if (!started_) {
        return;
    }
    wake_.wait_until(lock, stop, t0_ + length_, [] { return false; });
    counter_.disable();
    t1_ = clock::now();
    cpu1_ = process_cpu_ns(pid_);
    if (upstream_ > 0) {
        upstream_cpu1_ = process_cpu_ns(upstream_);
    }
    cores1_ = read_core_times();
    server_wait1_ = run_delay_ns(pid_);
    client_wait1_ = run_delay_ns(::getpid(), client_tid_);
}

double window_meter::seconds() const noexcept {
    return std::chrono::duration<double>(t1_ - t0_).count();
}

std::optional<std::uint64_t> window_meter::cpu_ns() const noexcept {
    if (!cpu0_ || !cpu1_) {
        return std::nullopt;
    }
    return *cpu1_ - *cpu0_;
}

std::optional<double> window_meter::core_busy_percent(unsigned core) const noexcept {
    if (!cores0_ || !cores1_ || core > 1) {
        return std::nullopt;
    }
    auto total = (*cores1_)[core].total - (*cores0_)[core].total;
    if (total == 0) {
        return std::nullopt;
    }
    return 100.0 * static_cast<double>((*cores1_)[core].busy - (*cores0_)[core].busy) /
           static_cast<double>(total);
}

std::optional<double> window_meter::core_softirq_percent(unsigned core) const noexcept {
    if (!cores0_ || !cores1_ || core > 1) {
        return std::nullopt;
    }
    auto total = (*cores1_)[core].total - (*cores0_)[core].total;
    if (total == 0) {
        return std::nullopt;
    }
    return 100.0 * static_cast<double>((*cores1_)[core].softirq - (*cores0_)[core].softirq) /
           static_cast<double>(total);
}

namespace {

std::optional<double> share(const std::optional<std::uint64_t>& a,
                            const std::optional<std::uint64_t>& b,
                            double seconds) {
    if (!a || !b || *b < *a || seconds <= 0) {
        return std::nullopt;
    }
    return 100.0 * static_cast<double>(*b - *a) / 1e9 / seconds;
}

} // namespace

std::optional<double> window_meter::server_wait_percent() const noexcept {
    return share(server_wait0_, server_wait1_, seconds());
}

std::optional<double> window_meter::client_wait_percent() const noexcept {
    return share(client_wait0_, client_wait1_, seconds());
}

std::optional<double> window_meter::upstream_cpu_percent() const noexcept {
    return share(upstream_cpu0_, upstream_cpu1_, seconds());
}

} // namespace aioloop::apps::detail
