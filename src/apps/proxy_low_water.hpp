#pragma once

// When a proxy direction raises its source's receive low-water mark (SO_RCVLOWAT), and when it
// gives up on it. A proxy that outpaces its sender wakes for every TCP segment that arrives (65 483
// bytes on loopback), and with aio each wake costs an io_getevents, a PREAD and the io_submit of
// that chunk's PWRITE: three system calls per 64 KiB, more than a plain read and write. With the
// mark raised the kernel ends the readiness wait only once the mark's worth is queued (or the
// stream ended, or its window is nearly closed), so each wake moves a bulk buffer.
//
// A wait with the mark raised is bounded, since the sender may stop short of it: at the end of a
// message it wants answered, or while it is not running (on a busy machine, for a few
// milliseconds now and then). When that wait runs out the mark comes down to 1 for the read of
// what is there, and goes up again once the stream has gone on. Seen from the proxy both stops
// look alike; what tells them apart is what follows: a dialogue's peer answers (the other
// direction reads) before the next stop, a stream's does not. So a short wait with an answer
// since the last one means a dialogue: the mark stays down until the direction has waited long
// for its next byte (a new stream), and later messages do not pay the wait. The policy only
// decides; the caller makes the setsockopt calls.

#include <cstddef>
#include <cstdint>

namespace aioloop::apps::detail {

class low_water_policy {
public:
    /// `mark`: the bytes a raised wait waits for; 0 or 1: never raise.
    explicit low_water_policy(std::size_t mark) noexcept
        : mark_(mark) {}

    std::size_t mark() const noexcept { return mark_; }
    bool raised() const noexcept { return raised_; }

    /// A read of the direction brought `n` bytes; `answers` counts the reads of the other
    /// direction so far: when it changed, the peer was answered, and this is a dialogue.
    void read(std::size_t n, std::uint32_t answers) noexcept {
        if (answers != answers_seen_) {
            answers_seen_ = answers;
            one_way_ = 0;
        }
        one_way_ += n;
    }
    /// Whether to raise the mark before the next wait: once two marks' worth has come one way,
    /// with no answer in between, so that neither a dialogue of small messages nor a message of a
    /// few hundred KiB ever pays the two setsockopt calls, nor the wait at its end. (Reads of a
    /// one-way stream are as small as the sender's pace makes them, so their size tells little.)
    bool should_raise() const noexcept {
        return !raised_ && !gave_up_ && mark_ > 1 && one_way_ >= 2 * mark_;
    }
    void set_raised(bool raised) noexcept { raised_ = raised; }

    /// A raised wait ran out (the caller lowers the mark); `answers` as for read(). True when
    /// the policy gives up on the mark now.
    bool fell_short(std::uint32_t answers) noexcept {
        bool giving_up = !gave_up_ && had_short_wait_ && answers != answers_at_short_wait_;
        gave_up_ = gave_up_ || giving_up; // answered between two stops: a dialogue
        had_short_wait_ = true;
        answers_at_short_wait_ = answers;
        return giving_up;
    }
    /// The direction waited long for its next byte: what comes next is a new stream.
    void new_stream() noexcept { *this = low_water_policy(mark_); }

private:
    std::size_t mark_;
    std::size_t one_way_ = 0;                 // bytes read since the other direction last read
    std::uint32_t answers_seen_ = 0;          // the other direction's reads, as last seen
    std::uint32_t answers_at_short_wait_ = 0; // the other direction's reads at the last one
    bool had_short_wait_ = false;
    bool raised_ = false;
    bool gave_up_ = false;
};

} // namespace aioloop::apps::detail
