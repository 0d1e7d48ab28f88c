#pragma once

// What a backend guesses about each fd, to skip a readiness wait that would only cost a turn: a
// read that filled its buffer probably left more behind, a shorter one drained the socket, and a
// write that fell short filled the socket buffer. A new fd is assumed readable and writable, so
// the first read of a connection whose request is already there costs no POLL. A wrong guess
// costs one -EAGAIN (counted in the stats), never a lost or stalled operation.

#include <cstdint>
#include <vector>

namespace aioloop::backend {

class readiness_hints {
public:
    bool readable(int fd) const noexcept { return !has(fd, not_readable); }
    bool writable(int fd) const noexcept { return !has(fd, not_writable); }
    void set_readable(int fd, bool yes) { set(fd, not_readable, !yes); }
    void set_writable(int fd, bool yes) { set(fd, not_writable, !yes); }
    /// The fd is being closed; its number will be reused by an unrelated file.
    void forget(int fd) noexcept {
        if (fd >= 0 && static_cast<std::size_t>(fd) < flags_.size()) {
            flags_[static_cast<std::size_t>(fd)] = 0;
        }
    }

private:
    static constexpr std::uint8_t not_readable = 1;
    static constexpr std::uint8_t not_writable = 2;

    bool has(int fd, std::uint8_t flag) const noexcept {
        return fd >= 0 && static_cast<std::size_t>(fd) < flags_.size() &&
               (flags_[static_cast<std::size_t>(fd)] & flag) != 0;
    }
    void set(int fd, std::uint8_t flag, bool on) {
        if (fd < 0) {
            return;
        }
        auto index = static_cast<std::size_t>(fd);
        if (index >= flags_.size()) {
            if (!on) {
                return; // absent means clear
            }
            flags_.resize(index + 1, 0);
        }
        if (on) {
            flags_[index] |= flag;
        } else {
            flags_[index] &= static_cast<std::uint8_t>(~flag);
        }
    }

    std::vector<std::uint8_t> flags_; // by fd number; bits set are negative guesses
};

} // namespace aioloop::backend
