#pragma once

// Real kernel objects for tests: socket pairs, loopback TCP, temporary files.

#include <cstdint>
#include <string>
#include <utility>

#include <aioloop/result.hpp>

namespace aioloop::testing {

/// Closes its fd on destruction.
class scoped_fd {
public:
    scoped_fd() = default;
    explicit scoped_fd(int fd) noexcept
        : fd_(fd) {}
    scoped_fd(scoped_fd&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)) {}
    scoped_fd& operator=(scoped_fd&& other) noexcept;
    ~scoped_fd();
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept;

private:
    int fd_ = -1;
};

/// A connected AF_UNIX stream pair, both ends non-blocking.
std::pair<scoped_fd, scoped_fd> stream_pair();
/// A connected TCP pair over 127.0.0.1, both ends non-blocking.
std::pair<scoped_fd, scoped_fd> tcp_pair();
/// Writes all of `data` to a blocking or non-blocking fd, waiting with poll(2) as needed.
void write_all(int fd, const std::string& data);
/// A temporary file path in the current directory, removed by the caller.
std::string temp_path(const std::string& stem);

} // namespace aioloop::testing
