/* What the files of the server layer share (serve.h says which does what). */
#ifndef RAMC_SERVE_INTERNAL_H
#define RAMC_SERVE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "api/result_json.h"
#include "serve/queue.h"
#include "serve/serve.h"
#include "serve/vocab.h"

/* Heat maps of one image are drawn for at most this many labels (its best):
 * with top_k 0 a request could otherwise ask for thousands of PNGs. */
#define SERVE_MAX_EXPLAINED 16
/* The long side of a heat-map picture, in pixels (the image keeps its aspect ratio). */
#define SERVE_HEATMAP_SIDE 384

struct serve_server {
    serve_options opt;
    const ramc_model *model;
    struct MHD_Daemon *daemon;
    job_queue queue;
    vocab_store vocab;
    pthread_mutex_t lock;
    pthread_cond_t idle;   /* signalled when in_flight drops to 0 */
    int in_flight;         /* requests begun and not yet completed */
    long long answered[6]; /* answers by status class: [2] 2xx, [4] 4xx, [5] 5xx */
    int port;
};

/* One uploaded part or form field: a name and bytes. */
typedef struct {
    char *name;    /* the file name of an upload, or the field's key */
    uint8_t *data; /* NUL-terminated (not counted in size), so text fields are strings */
    size_t size, cap;
} upload;

/* A predict or labels request, checked. */
typedef struct {
    upload *images;       /* [n_images] */
    int n_images;
    char **labels;        /* [n_labels] trimmed names given in the request, or NULL */
    int n_labels;
    char *vocabulary;     /* the id of a stored vocabulary, or NULL */
    char *template_str;   /* NULL: the default */
    result_selection sel;
    int baseline;         /* score "clip": plain CLIP scores */
    ramc_score score;     /* score "independent": each label's own (predict --score) */
    int explain;          /* heat maps as PNG */
} request_spec;

/* An HTTP status and a message naming the problem, for the JSON error. */
typedef struct {
    int status;
    char message[512];
} request_error;

/* request.c. Both take the parts: the spec owns them afterwards (spec_free).
 * for_labels: a POST /v1/labels request (labels and template only). Return 0
 * with *err set on a bad request. */
int spec_from_form(request_spec *spec, upload *fields, int n_fields, upload *files, int n_files,
                   int for_labels, const serve_options *opt, request_error *err);
int spec_from_json(request_spec *spec, const char *body, size_t n, int for_labels,
                   const serve_options *opt, request_error *err);
void spec_free(request_spec *spec);
void upload_free(upload *u);
/* printf into err, with the status; returns 0 */
int request_fail(request_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What a request becomes once answered: a status and a body. */
typedef struct {
    int status;
    char *body;               /* malloc'd */
    size_t size;
    const char *content_type;
    int retry_after;          /* seconds; 0: no Retry-After header */
} answer;

/* Answer helpers (server.c): JSON of a cJSON value (consumed), or of an error. */
void answer_json(answer *a, int status, cJSON *value);
void answer_error(answer *a, int status, const char *message);

/* work.c: run on a worker. spec.vocabulary already resolved into `held`
 * (NULL when the request gives its own labels). */
void work_predict(serve_server *s, serve_worker *w, request_spec *spec, vocab_entry *held,
                  answer *out);
void work_labels(serve_server *s, request_spec *spec, answer *out);

/* page.c (generated from page.html at build time) */
extern const char serve_page_html[];
extern const size_t serve_page_html_size;

#endif
