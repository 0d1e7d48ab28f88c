#pragma once

// The completion ring that io_setup maps into the process (fs/aio.c, struct aio_ring). The
// context id returned by io_setup is this header's address; `nr` io_events follow it.

#include <linux/aio_abi.h>

namespace aioloop::sys {

struct aio_ring {
    unsigned id;
    unsigned nr;   // io_events in the ring (more than io_setup asked for)
    unsigned head; // next event to read; written by whoever reaps: us or io_getevents
    unsigned tail; // next event the kernel writes
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length; // sizeof(aio_ring): where the events start
};

inline constexpr unsigned aio_ring_magic = 0xa10a10a1;
inline constexpr unsigned aio_ring_incompat_features = 0;

} // namespace aioloop::sys
