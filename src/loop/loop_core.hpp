#pragma once

// The loop's machinery behind aioloop::loop: the operation pool, the turn, timers, spawned tasks
// and cross-thread wake-ups.

#include <atomic>
#include <coroutine>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include <aioloop/loop.hpp>

#include "backend/backend.hpp"
#include "loop/operation.hpp"
#include "loop/timer_queue.hpp"

namespace aioloop::detail {

/// The loop running on this thread, or null.
loop* current() noexcept;

class loop_core {
public:
    loop_core(loop& owner, std::unique_ptr<backend::backend> backend, std::string reason);
    ~loop_core();

    /// Sets up the wake-up eventfd; fails only when the process is out of fds.
    result<void> init();

    void run();
    void stop() noexcept;
    bool stopping() const noexcept { return stop_requested_.load(std::memory_order_relaxed); }

    // Operations.
    operation& allocate();
    void release(operation& op) noexcept;
    /// Hands op to the backend, with its deadline and stop token. Returns false when the op
    /// finished before suspending (already-stopped token).
    void start(operation& op, std::optional<clock::time_point> deadline, std::stop_token token);
    /// Asks the backend to end `op` early (stop token or deadline).
    void cancel(operation& op) noexcept;
    /// From a stop callback that may run on another thread.
    void cancel_from_any_thread(operation& op) noexcept;

    // Tasks.
    void schedule(std::coroutine_handle<> handle) { ready_.push_back(handle); }
    /// A spawned task's root frame: destroyed with the loop if it never finished.
    void task_started(std::coroutine_handle<> root) { roots_.insert(root.address()); }
    void task_finished(std::coroutine_handle<> root) noexcept { roots_.erase(root.address()); }
    std::size_t live_tasks() const noexcept { return roots_.size(); }

    // Timers.
    timer_queue& timers() noexcept { return timers_; }

    // Cross-thread.
    void post(std::function<void()> fn);
    bool on_loop_thread() const noexcept;

    void forget_fd(int fd) noexcept {
        if (backend_) {
            backend_->forget_fd(fd);
        }
    }
    void count_syscall(syscall_name name) noexcept { own_stats_.count(name); }
    std::string_view backend_name() const noexcept { return backend_->name(); }
    const std::string& backend_reason() const noexcept { return reason_; }
    loop_stats stats() const noexcept;
    loop& owner() noexcept { return owner_; }

private:
    void turn();
    void dispatch_completions();
    bool settle(operation& op, completion_queue& queue);
    void finish(operation& op);
    void run_ready();
    void arm_wakeup();
    static void on_wakeup(operation& op, void* self);
    static void on_deadline(void* op) noexcept;
    void wake() noexcept;

    loop& owner_;
    std::unique_ptr<backend::backend> backend_;
    std::string reason_;
    loop_stats own_stats_;

    std::deque<operation> ops_; // never shrinks: records are reused, never freed, while we live
    operation* free_ops_ = nullptr;
    completion_queue done_;
    std::vector<std::coroutine_handle<>> ready_;
    std::vector<std::coroutine_handle<>> running_;
    timer_queue timers_;
    std::unordered_set<void*> roots_;

    std::atomic<bool> stop_requested_{false};
    std::atomic<std::thread::id> thread_{};
    int wake_fd_ = -1;
    operation* wake_op_ = nullptr;
    std::uint64_t wake_buffer_ = 0;
    std::atomic<bool> wake_pending_{false};
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    std::vector<std::function<void()>> posted_running_;
};

} // namespace aioloop::detail
