#pragma once

// When a proxy direction raises its source's receive low-water mark (SO_RCVLOWAT), and when it
// gives up on it. A proxy that outpaces its sender wakes for every TCP segment that arrives (65 483
// bytes on loopback), and with aio each wake costs an io_getevents, a PREAD and the io_submit of
// that chunk's PWRITE: three system calls per 64 KiB, more than a plain read and write. With the
// mark raised the kernel ends the readiness wait only once the mark's worth is queued (or the
// stream ended, or its window is nearly closed), so each wake moves a bulk buffer.
//
// A wait with the mark raised is bounded, since the sender may stop short of it: at the end of a
// burst (it waits for an answer), or while it is not running (on a busy machine, for a few
// milliseconds now and then). When that wait runs out the mark comes down to 1 for the read of
// what is there, and goes up again for the next wait. Seen from the proxy both look alike; what
// tells them apart is how often they come. A bulk stream is short of the mark once in hundreds of
// MiB; a dialogue of big messages, at the end of each message. So two short waits (less than half
// the mark came) closer than `short_wait_spacing` marks apart mean a dialogue: the mark stays down
// until the direction goes idle, and later messages do not pay the wait. The policy only decides;
// the caller makes the setsockopt calls.

#include <cstddef>

namespace aioloop::apps::detail {

class low_water_policy {
public:
    /// Marks' worth of bytes that must move between two short waits for the mark to stay in use.
    static constexpr std::size_t short_wait_spacing = 64;

    /// `mark`: the bytes a raised wait waits for; 0 or 1: never raise.
    explicit low_water_policy(std::size_t mark) noexcept
        : mark_(mark) {}

    std::size_t mark() const noexcept { return mark_; }
    bool raised() const noexcept { return raised_; }

    /// A read of the direction brought `n` bytes.
    void read(std::size_t n) noexcept { moved_ += n; }
    /// Whether to raise the mark before the next wait: once the direction has moved two marks'
    /// worth since it was last idle, so that a response of a few hundred KiB never pays the two
    /// setsockopt calls, nor the wait at its end.
    bool should_raise() const noexcept {
        return !raised_ && !gave_up_ && mark_ > 1 && moved_ >= 2 * mark_;
    }
    void set_raised(bool raised) noexcept { raised_ = raised; }

    /// A raised wait ran out (the caller lowers the mark), and the read after it found `arrived`.
    void fell_short(std::size_t arrived) noexcept {
        if (arrived >= mark_ / 2) {
            return; // the sender paused, but it kept most of its pace
        }
        if (had_short_wait_ && moved_ - moved_at_short_wait_ < short_wait_spacing * mark_) {
            gave_up_ = true;
        }
        had_short_wait_ = true;
        moved_at_short_wait_ = moved_;
    }
    /// The direction went idle (waits for readability with no buffer): a new stream may start.
    void went_idle() noexcept { *this = low_water_policy(mark_); }

private:
    std::size_t mark_;
    std::size_t moved_ = 0;
    std::size_t moved_at_short_wait_ = 0; // `moved_` at the last short wait
    bool had_short_wait_ = false;
    bool raised_ = false;
    bool gave_up_ = false;
};

} // namespace aioloop::apps::detail
