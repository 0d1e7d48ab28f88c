// The blocking pool's threads: a mutex-protected queue; jobs are few and each is a system call
// or two, so a single queue is not the bottleneck.

#include <algorithm>

#include <aioloop/fs/blocking_pool.hpp>

namespace aioloop::fs {

blocking_pool::blocking_pool(unsigned threads) {
    threads = std::max(threads, 1u);
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) {
        threads_.emplace_back([this] { work(); });
    }
}

blocking_pool::~blocking_pool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.release(static_cast<std::ptrdiff_t>(threads_.size()));
    for (auto& t : threads_) {
        t.join();
    }
}

void blocking_pool::submit(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    wake_.release();
}

std::uint64_t blocking_pool::jobs_run() const noexcept {
    std::lock_guard lock(mutex_);
    return run_;
}

void blocking_pool::work() {
    for (;;) {
        wake_.acquire();
        std::function<void()> job;
        {
            std::lock_guard lock(mutex_);
            if (jobs_.empty()) {
                if (stopping_) {
                    return; // a shutdown count, and every queued job has run
                }
                continue;
            }
            job = std::move(jobs_.front());
            jobs_.pop_front();
            ++run_;
        }
        job();
    }
}

} // namespace aioloop::fs
