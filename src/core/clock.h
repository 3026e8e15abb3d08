/* Wall-clock intervals: seconds on the monotonic clock (never steps back
 * when the system time is set), for timings, progress rates and timeouts. */
#ifndef RAMC_CORE_CLOCK_H
#define RAMC_CORE_CLOCK_H

double monotonic_seconds(void);

#endif
