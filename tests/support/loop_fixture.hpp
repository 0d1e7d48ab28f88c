#pragma once

// Runs a loop test on every backend: INSTANTIATE_TEST_SUITE_P(AllBackends, X, all_backends(),
// backend_test_name). A backend this kernel can't run is skipped with its reason.

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <aioloop/loop.hpp>

namespace aioloop::testing {

inline auto all_backends() {
    return ::testing::Values(backend_kind::aio, backend_kind::epoll, backend_kind::uring);
}

inline std::string backend_test_name(const ::testing::TestParamInfo<backend_kind>& info) {
    return std::string(to_string(info.param));
}

class loop_test : public ::testing::TestWithParam<backend_kind> {
protected:
    void SetUp() override {
        loop_options options;
        options.backend = GetParam();
        options.max_connections = 2048;
        auto made = loop::create(options);
        if (!made) {
            GTEST_SKIP() << to_string(GetParam())
                         << " backend unavailable: " << made.error().message;
        }
        loop_ = std::move(*made);
    }

    loop& ev() { return *loop_; }

    std::unique_ptr<loop> loop_;
};

} // namespace aioloop::testing
