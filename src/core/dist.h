/* A process group for data-parallel training (docs/distributed.md).
 *
 * With RAMC_MPI (CMake option, on when Open MPI is found) the group is
 * MPI_COMM_WORLD; without it, or when the program was not started by a
 * launcher, there is one process. Every function takes the group as a
 * pointer and treats NULL as "this process alone" (rank 0 of 1), where the
 * collectives copy or do nothing, so callers keep one code path.
 *
 * Every reduction here is deterministic and gives bitwise the same result on
 * every rank: element k is summed by one rank, over the ranks' values in rank
 * order, in double, then sent to all. A sum over ranks therefore does not
 * depend on the MPI library's algorithm or on timing, only on the number of
 * ranks (a different N adds the same terms with other partial sums, which
 * differs in the last bits).
 *
 * Collectives must be called by every rank in the same order. An error inside
 * MPI stops the whole job (MPI's default handler), so these only fail on
 * memory. The group is driven from one thread (MPI_THREAD_FUNNELED). */
#ifndef RAMC_CORE_DIST_H
#define RAMC_CORE_DIST_H

#include <stdint.h>

#include "core/status.h"

typedef struct ramc_dist ramc_dist;

/* 1 when this build has MPI. */
int dist_built_with_mpi(void);

/* Joins the job's process group (MPI_Init_thread). Call once, from the
 * thread that will use the group, only when the process was started by an
 * MPI launcher (mpirun, srun): the command line decides that. Without MPI in
 * the build this fails with a message saying so. */
ramc_status dist_init(ramc_dist **out);

/* Leaves the group normally (MPI_Finalize); NULL does nothing. */
void dist_finalize(ramc_dist *d);

/* Stops every process of the job with `code` (MPI_Abort). For the command
 * line only, after it printed the reason: the library never calls it. With
 * NULL it returns (the caller exits itself). */
void dist_abort(ramc_dist *d, int code);

int dist_rank(const ramc_dist *d);
int dist_size(const ramc_dist *d);

/* x [n] in place: the sum over ranks of every element, the same on all ranks. */
ramc_status dist_sum_double(const ramc_dist *d, double *x, long n);
/* x [n] in place: each element summed over ranks in double, rounded once. */
ramc_status dist_sum_float(const ramc_dist *d, float *x, long n);

/* The maximum of x over ranks. */
ramc_status dist_max_int(const ramc_dist *d, int *x);
/* The minimum of x over ranks (exact: a minimum has no rounding). */
ramc_status dist_min_float(const ramc_dist *d, float *x);

/* Concatenates every rank's `mine` [n_mine] in rank order into all
 * [sum of n_mine over ranks], which must hold `capacity` floats. *offset
 * (may be NULL) receives where this rank's part starts, *total the whole
 * length. Fails if capacity is too small. */
ramc_status dist_allgather_float(const ramc_dist *d, const float *mine, long n_mine, float *all,
                                 long capacity, long *offset, long *total);

/* Bytes this process has sent through the group's collectives so far (the
 * payload, not MPI's own framing): for the figures of docs/distributed.md. */
uint64_t dist_bytes_sent(const ramc_dist *d);

#endif
