/* The process group of data-parallel training (see dist.h). */
#include "core/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef RAMC_HAVE_MPI
#include <mpi.h>
#endif

struct ramc_dist {
    int rank, size;
    uint64_t bytes_sent;
};

int dist_built_with_mpi(void) {
#ifdef RAMC_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_rank(const ramc_dist *d) { return d ? d->rank : 0; }
int dist_size(const ramc_dist *d) { return d ? d->size : 1; }
uint64_t dist_bytes_sent(const ramc_dist *d) { return d ? d->bytes_sent : 0; }

#ifndef RAMC_HAVE_MPI

ramc_status dist_init(ramc_dist **out) {
    *out = NULL;
    return ramc_error(RAMC_ERR_INVALID_ARG,
                      "this ramc was built without MPI (cmake -DRAMC_MPI=ON with libopenmpi-dev "
                      "installed): it cannot run as several processes");
}
void dist_finalize(ramc_dist *d) { free(d); }
void dist_abort(ramc_dist *d, int code) { (void)d, (void)code; }
ramc_status dist_sum_double(const ramc_dist *d, double *x, long n) { return (void)d, (void)x, (void)n, RAMC_OK; }
ramc_status dist_sum_float(const ramc_dist *d, float *x, long n) { return (void)d, (void)x, (void)n, RAMC_OK; }
ramc_status dist_max_int(const ramc_dist *d, int *x) { return (void)d, (void)x, RAMC_OK; }
ramc_status dist_min_float(const ramc_dist *d, float *x) { return (void)d, (void)x, RAMC_OK; }

#else

ramc_status dist_init(ramc_dist **out) {
    *out = NULL;
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ramc_error(RAMC_ERR_IO, "MPI_Init_thread failed");
    ramc_dist *d = ramc_calloc(1, sizeof *d, "process group");
    if (!d) return RAMC_ERR_NOMEM;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    *out = d;
    return RAMC_OK;
}

void dist_finalize(ramc_dist *d) {
    if (!d) return;
    free(d);
    MPI_Finalize();
}

void dist_abort(ramc_dist *d, int code) {
    if (d) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI counts are int: long vectors go through in segments of this many. */
#define SEGMENT (1L << 26)

/* Sum over ranks of x [n] (elements of MPI type `type`, float or double):
 * rank r sums the r-th slice over all ranks in rank order (alltoall), then
 * every rank receives every slice (allgather). One owner per element makes
 * the result the same everywhere whatever MPI does inside. */
static ramc_status sum_segment(ramc_dist *d, void *x, int n, int is_float) {
    const int P = d->size, me = d->rank;
    const size_t es = is_float ? sizeof(float) : sizeof(double);
    const MPI_Datatype type = is_float ? MPI_FLOAT : MPI_DOUBLE;
    int *counts = ramc_malloc(4 * (size_t)P * sizeof(int), "all-reduce");
    if (!counts) return RAMC_ERR_NOMEM;
    int *displs = counts + P, *rcounts = displs + P, *rdispls = rcounts + P;
    for (int r = 0, at = 0; r < P; r++) {
        counts[r] = n / P + (r < n % P);
        displs[r] = at;
        at += counts[r];
    }
    const int mine = counts[me];
    char *recv = ramc_malloc(((size_t)P * mine + mine + 1) * es, "all-reduce");
    if (!recv) {
        free(counts);
        return RAMC_ERR_NOMEM;
    }
    char *slice = recv + (size_t)P * mine * es;
    for (int r = 0; r < P; r++) rcounts[r] = mine, rdispls[r] = r * mine;
    MPI_Alltoallv(x, counts, displs, type, recv, rcounts, rdispls, type, MPI_COMM_WORLD);
    for (int k = 0; k < mine; k++) {
        double s = 0.0;
        for (int r = 0; r < P; r++)
            s += is_float ? (double)((const float *)recv)[(size_t)r * mine + k]
                          : ((const double *)recv)[(size_t)r * mine + k];
        if (is_float) ((float *)slice)[k] = (float)s;
        else ((double *)slice)[k] = s;
    }
    MPI_Allgatherv(slice, mine, type, x, counts, displs, type, MPI_COMM_WORLD);
    d->bytes_sent += (uint64_t)((size_t)(n - mine) + (size_t)mine * (P - 1)) * es;
    free(recv);
    free(counts);
    return RAMC_OK;
}

static ramc_status sum_any(const ramc_dist *cd, void *x, long n, int is_float) {
    ramc_dist *d = (ramc_dist *)cd; /* only the byte counter changes */
    if (!d || d->size == 1 || n <= 0) return RAMC_OK;
    const size_t es = is_float ? sizeof(float) : sizeof(double);
    for (long at = 0; at < n; at += SEGMENT) {
        long len = n - at < SEGMENT ? n - at : SEGMENT;
        ramc_status st = sum_segment(d, (char *)x + (size_t)at * es, (int)len, is_float);
        if (st) return st;
    }
    return RAMC_OK;
}

ramc_status dist_sum_double(const ramc_dist *d, double *x, long n) { return sum_any(d, x, n, 0); }
ramc_status dist_sum_float(const ramc_dist *d, float *x, long n) { return sum_any(d, x, n, 1); }

ramc_status dist_max_int(const ramc_dist *d, int *x) {
    if (!d || d->size == 1) return RAMC_OK;
    MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    ((ramc_dist *)d)->bytes_sent += sizeof(int);
    return RAMC_OK;
}

ramc_status dist_min_float(const ramc_dist *d, float *x) {
    if (!d || d->size == 1) return RAMC_OK;
    MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_FLOAT, MPI_MIN, MPI_COMM_WORLD);
    ((ramc_dist *)d)->bytes_sent += sizeof(float);
    return RAMC_OK;
}

#endif

ramc_status dist_allgather_float(const ramc_dist *d, const float *mine, long n_mine, float *all,
                                 long capacity, long *offset, long *total) {
    const int P = dist_size(d);
    if (P == 1) {
        if (n_mine > capacity)
            return ramc_error(RAMC_ERR_INVALID_ARG, "all-gather: %ld values, room for %ld", n_mine,
                              capacity);
        if (all != mine) memmove(all, mine, (size_t)n_mine * sizeof(float));
        if (offset) *offset = 0;
        if (total) *total = n_mine;
        return RAMC_OK;
    }
#ifdef RAMC_HAVE_MPI
    long long *lens = ramc_malloc((size_t)P * sizeof(long long), "all-gather");
    int *counts = ramc_malloc(2 * (size_t)P * sizeof(int), "all-gather");
    if (!lens || !counts) {
        free(lens), free(counts);
        return RAMC_ERR_NOMEM;
    }
    long long my_len = n_mine;
    MPI_Allgather(&my_len, 1, MPI_LONG_LONG, lens, 1, MPI_LONG_LONG, MPI_COMM_WORLD);
    long long sum = 0, my_off = 0;
    for (int r = 0; r < P; r++) {
        if (r == d->rank) my_off = sum;
        sum += lens[r];
    }
    ramc_status st = RAMC_OK;
    if (sum > capacity || sum > INT_MAX) {
        /* every rank sees the same sum, so all fail together */
        st = ramc_error(RAMC_ERR_INVALID_ARG, "all-gather: %lld values, room for %ld", sum, capacity);
    } else {
        int *displs = counts + P;
        for (int r = 0, at = 0; r < P; r++) counts[r] = (int)lens[r], displs[r] = at, at += counts[r];
        MPI_Allgatherv(mine, (int)n_mine, MPI_FLOAT, all, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
        ((ramc_dist *)d)->bytes_sent += sizeof(long long) * (P - 1) +
                                        (uint64_t)n_mine * sizeof(float) * (uint64_t)(P - 1);
        if (offset) *offset = (long)my_off;
        if (total) *total = (long)sum;
    }
    free(lens);
    free(counts);
    return st;
#else
    return ramc_error(RAMC_ERR_INVALID_ARG, "all-gather over %d processes without MPI", P);
#endif
}
