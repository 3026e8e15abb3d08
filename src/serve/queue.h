/* The bounded work queue: requests that need the model wait here for one of
 * N worker threads. Each worker owns a ramc_state (per-call scratch), so the
 * model itself is shared read-only and no lock is held while computing. A
 * full queue refuses at once (the server answers 503 with Retry-After)
 * instead of letting waits grow without bound. */
#ifndef RAMC_SERVE_QUEUE_H
#define RAMC_SERVE_QUEUE_H

#include <pthread.h>

#include "core/clock.h"
#include "ramc.h"

typedef struct {
    int index;
    ramc_state *state;
} serve_worker;

typedef struct serve_job serve_job;
struct serve_job {
    void (*run)(serve_job *job, serve_worker *worker);
    double enqueued; /* seconds, CLOCK_MONOTONIC */
};

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    serve_job **ring; /* [capacity] */
    int capacity, head, count, reserved;
    int stopping;
    int n_workers;
    pthread_t *threads;
    serve_worker *workers;
    long long done; /* jobs run, for /healthz */
} job_queue;

/* Starts `threads` workers, each with a state for `model`. */
ramc_status job_queue_start(job_queue *q, const ramc_model *model, int threads, int capacity);
/* Takes one place in the queue for a job about to be pushed; 0 when full. */
int job_queue_reserve(job_queue *q);
/* Pushes a job into a place taken by job_queue_reserve. */
void job_queue_push(job_queue *q, serve_job *job);
/* Jobs waiting (not yet taken by a worker). */
int job_queue_waiting(job_queue *q);
/* Runs what is queued, then stops and joins the workers and frees the queue. */
void job_queue_stop(job_queue *q);

#endif
