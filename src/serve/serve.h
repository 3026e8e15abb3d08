/* ramc serve: a long-running ramc answering HTTP (docs/serve.md).
 *
 * The server layer sits beside the library, not inside it: HTTP is no part
 * of libramc's C API, so these files build into their own static library
 * (with libmicrohttpd) that only the ramc command links. It loads nothing
 * itself: the caller hands it a loaded model, which stays immutable and is
 * shared by every worker thread (each with its own ramc_state).
 *
 *   server.c   the HTTP daemon: routing, authentication, body limits,
 *              answers, draining on stop
 *   request.c  a predict / labels request's fields (multipart or JSON) into
 *              a checked request_spec
 *   work.c     what the workers run: labels, decoding, prediction, heat maps,
 *              the answer's JSON
 *   queue.c    the bounded queue and its workers
 *   vocab.c    stored vocabularies
 *   base64.c   base64 both ways
 *   page.html  the web page at /, embedded at build time */
#ifndef RAMC_SERVE_SERVE_H
#define RAMC_SERVE_SERVE_H

#include <stddef.h>

#include "ramc.h"

typedef struct serve_server serve_server;

typedef struct {
    const char *host;         /* numeric IPv4 or IPv6 address to listen on */
    int port;                 /* 0: a free port chosen by the system (serve_port) */
    int threads;              /* worker threads: requests computed at once */
    int queue;                /* requests waiting for a worker at most; more get 503 */
    size_t max_body;          /* bytes of one request body */
    int max_labels;           /* labels in one request or vocabulary */
    int max_images;           /* images in one predict request */
    int max_vocabularies;     /* label sets kept in the store */
    int timeout_s;            /* idle connection timeout, and the longest wait in the queue */
    const char *label_cache;  /* folder of the persistent label cache; NULL: none */
    const char *token;        /* bearer token required on /v1/; NULL: none */
    /* what GET /v1/model reports; the strings must outlive the server */
    const char *clip_path, *adapter_path;
} serve_options;

serve_options serve_default_options(void);

/* Starts listening and the workers; the model must outlive the server. */
ramc_status serve_start(const ramc_model *model, const serve_options *opt, serve_server **out);
/* The port listened on (the chosen one when opt.port was 0). */
int serve_port(const serve_server *s);
/* Encodes a vocabulary now (on the calling thread) and stores it under `id`
 * for good (never evicted): the --labels-file of ramc serve. */
ramc_status serve_add_vocabulary(serve_server *s, const char *id, const char *const *names, int n,
                                 const char *template_str);
/* Stops accepting connections, lets every request already accepted finish
 * and be answered, then stops the workers and frees everything. */
void serve_stop(serve_server *s);

#endif
