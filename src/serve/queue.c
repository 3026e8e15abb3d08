/* The bounded work queue and its workers (queue.h). */
#include "serve/queue.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/status.h"

typedef struct {
    job_queue *q;
    serve_worker *w;
} worker_arg;

static void *worker_main(void *arg) {
    job_queue *q = ((worker_arg *)arg)->q;
    serve_worker *w = ((worker_arg *)arg)->w;
    free(arg);
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->count && !q->stopping) pthread_cond_wait(&q->ready, &q->lock);
        if (!q->count) break; /* stopping, and nothing left to run */
        serve_job *job = q->ring[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        pthread_mutex_unlock(&q->lock);
        job->run(job, w); /* the job answers its request; it may be freed from here on */
        pthread_mutex_lock(&q->lock);
        q->done++;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

ramc_status job_queue_start(job_queue *q, const ramc_model *model, int threads, int capacity) {
    memset(q, 0, sizeof *q);
    q->capacity = capacity;
    q->ring = calloc((size_t)capacity, sizeof *q->ring);
    q->threads = calloc((size_t)threads, sizeof *q->threads);
    q->workers = calloc((size_t)threads, sizeof *q->workers);
    if (!q->ring || !q->threads || !q->workers) {
        free(q->ring), free(q->threads), free(q->workers);
        return ramc_error(RAMC_ERR_NOMEM, "serve: out of memory for %d workers", threads);
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    ramc_status st = RAMC_OK;
    for (int i = 0; i < threads && st == RAMC_OK; i++) {
        q->workers[i].index = i;
        st = ramc_state_create(model, &q->workers[i].state);
        worker_arg *a = st == RAMC_OK ? malloc(sizeof *a) : NULL;
        if (st == RAMC_OK && !a) st = ramc_error(RAMC_ERR_NOMEM, "serve: out of memory");
        if (st != RAMC_OK) {
            ramc_state_free(q->workers[i].state);
            break;
        }
        a->q = q, a->w = &q->workers[i];
        if (pthread_create(&q->threads[i], NULL, worker_main, a) != 0) {
            free(a);
            ramc_state_free(q->workers[i].state);
            st = ramc_error(RAMC_ERR_NOMEM, "serve: cannot start worker thread %d", i + 1);
            break;
        }
        q->n_workers++;
    }
    if (st != RAMC_OK) job_queue_stop(q);
    return st;
}

int job_queue_reserve(job_queue *q) {
    pthread_mutex_lock(&q->lock);
    int ok = !q->stopping && q->count + q->reserved < q->capacity;
    if (ok) q->reserved++;
    pthread_mutex_unlock(&q->lock);
    return ok;
}

void job_queue_push(job_queue *q, serve_job *job) {
    job->enqueued = monotonic_seconds();
    pthread_mutex_lock(&q->lock);
    q->reserved--;
    q->ring[(q->head + q->count) % q->capacity] = job;
    q->count++;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

int job_queue_waiting(job_queue *q) {
    pthread_mutex_lock(&q->lock);
    int n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void job_queue_stop(job_queue *q) {
    if (!q->ring) return;
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n_workers; i++) {
        pthread_join(q->threads[i], NULL);
        ramc_state_free(q->workers[i].state);
    }
    pthread_cond_destroy(&q->ready);
    pthread_mutex_destroy(&q->lock);
    free(q->ring), free(q->threads), free(q->workers);
    memset(q, 0, sizeof *q);
}
