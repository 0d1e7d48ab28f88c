// loop::create: picks the backend. `auto` tries aio, then uring, then epoll, and says in one line
// why it passed over each; a backend named explicitly either runs or fails with its reason.

#include <functional>

#include <fmt/format.h>

#include <aioloop/loop.hpp>

#include "loop/loop_core.hpp"

namespace aioloop {

namespace {

using backend_result = tl::expected<std::unique_ptr<backend::backend>, backend::backend_error>;

backend_result make_backend(backend_kind kind, const backend::backend_config& config) {
    switch (kind) {
    case backend_kind::aio:
        return backend::make_aio_backend(config);
    case backend_kind::uring:
        return backend::make_uring_backend(config);
    case backend_kind::epoll:
    case backend_kind::automatic:
        break;
    }
    return backend::make_epoll_backend(config);
}

} // namespace

tl::expected<std::unique_ptr<loop>, loop_error> loop::create(loop_options options) {
    auto warn = options.on_warning ? options.on_warning : [](std::string_view line) {
        fmt::print(stderr, "aioloop: warning: {}\n", line);
    };
    backend::backend_config config;
    // Each connection may keep a read and a write readiness wait pending at once, plus the
    // loop's own wake-up and signal polls and the listeners.
    config.max_operations = 2 * options.max_connections + 64;
    config.force_syscalls = options.force_syscalls;
    config.on_warning = warn;

    std::unique_ptr<backend::backend> chosen;
    std::string reason;
    if (options.backend != backend_kind::automatic) {
        auto made = make_backend(options.backend, config);
        if (!made) {
            return tl::unexpected(loop_error{made.error().code, made.error().message});
        }
        chosen = std::move(*made);
        reason = "chosen with --backend";
    } else {
        std::string passed_over;
        for (backend_kind kind : {backend_kind::aio, backend_kind::uring, backend_kind::epoll}) {
            auto made = make_backend(kind, config);
            if (made) {
                chosen = std::move(*made);
                reason = passed_over.empty() ? "auto: the first choice" : "auto: " + passed_over;
                break;
            }
            warn(fmt::format("{} backend unavailable ({}); trying the next",
                             to_string(kind),
                             made.error().message));
            passed_over +=
                fmt::format("{} unavailable: {}; ", to_string(kind), made.error().message);
            if (kind == backend_kind::epoll) {
                return tl::unexpected(loop_error{made.error().code, made.error().message});
            }
        }
    }
    std::unique_ptr<loop> made(new loop());
    made->core_ = std::make_unique<detail::loop_core>(*made, std::move(chosen), std::move(reason));
    if (auto ready = made->core_->init(); !ready) {
        return tl::unexpected(
            loop_error{ready.error(), fmt::format("eventfd: {}", ready.error().message())});
    }
    return made;
}

} // namespace aioloop
