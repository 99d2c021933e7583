/* SPDX-License-Identifier: MIT */
/* Clock reads, kept out of proto/: the engine reads time and passes it in. */
#ifndef RC_TIME_H
#define RC_TIME_H

#include <stdint.h>

/* Wall clock, seconds since the epoch (flow timestamps). */
double rc_wall_now(void);
/* Monotonic clock in milliseconds (timers). */
uint64_t rc_mono_ms(void);

#endif
