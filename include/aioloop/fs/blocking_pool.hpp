#pragma once

// A small pool of threads for the system calls that have no asynchronous form on every backend:
// open(), fstat(), and buffered reads of cold files. A job runs on a pool thread and its result
// comes back to the awaiting task through loop::post(), so the loop itself never blocks.

#include <coroutine>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <semaphore>
#include <thread>
#include <utility>
#include <vector>

#include <aioloop/loop.hpp>

namespace aioloop::fs {

class blocking_pool {
public:
    /// Starts `threads` threads (at least one).
    explicit blocking_pool(unsigned threads);
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;
    /// Runs the jobs still queued, then joins the threads.
    ~blocking_pool();

    /// Queues `job` for a pool thread. Safe from any thread.
    void submit(std::function<void()> job);

    /// Jobs run so far (for statistics and tests).
    std::uint64_t jobs_run() const noexcept;

    template <typename T>
    class awaitable;

    /// `co_await pool.run(owner, fn)`: runs fn() on a pool thread, resumes the caller on `owner`
    /// with its value. Not cancellable: jobs are single, bounded system calls.
    /// Name the awaitable before co_await (GCC PR 100611): `auto a = pool.run(..); co_await
    /// std::move(a);`.
    template <typename Fn>
    awaitable<std::invoke_result_t<Fn>> run(loop& owner, Fn fn) {
        return awaitable<std::invoke_result_t<Fn>>(*this, owner, std::move(fn));
    }

private:
    void work();

    mutable std::mutex mutex_;
    // Not a condition variable: glibc's pthread_cond_signal() can wait (futex) for earlier
    // waiters to leave their group, that is, for pool threads to be scheduled, and the loop
    // that submits must not wait for anyone (seen: 122 such waits of a SCHED_FIFO loop thread
    // in one cold run on epoll, its longest turn 2-5 ms). A semaphore's release() never blocks.
    // One count per queued job, plus one per thread at shutdown.
    std::counting_semaphore<> wake_{0};
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::uint64_t run_ = 0;
    std::vector<std::thread> threads_;
};

template <typename T>
class blocking_pool::awaitable {
public:
    awaitable(blocking_pool& pool, loop& owner, std::function<T()> fn)
        : pool_(&pool)
        , owner_(&owner)
        , fn_(std::move(fn)) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> caller) {
        // The frame (and this awaitable in it) stays alive until the posted resume runs.
        pool_->submit([this, caller] {
            value_.emplace(fn_());
            owner_->post([caller] { caller.resume(); });
        });
    }
    T await_resume() { return std::move(*value_); }

private:
    blocking_pool* pool_;
    loop* owner_;
    std::function<T()> fn_;
    std::optional<T> value_;
};

} // namespace aioloop::fs
