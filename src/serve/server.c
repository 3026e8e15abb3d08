/* The HTTP side of ramc serve (serve.h): libmicrohttpd's daemon with one
 * polling thread, which receives requests, checks and parses them and
 * answers what needs no model; predict and labels requests go to the
 * bounded queue with their connection suspended, and a worker hands the
 * finished answer back by resuming it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/status.h"
#include "serve/internal.h"

/* Connections open at once: each may hold a body of up to max_body bytes
 * while it arrives, so this bounds the memory uploads can take. */
#define SERVE_MAX_CONNECTIONS 64
#define POST_BUFFER_BYTES 65536

serve_options serve_default_options(void) {
    serve_options o = {0};
    o.host = "127.0.0.1";
    o.port = 8080;
    o.threads = 1;
    o.queue = 16;
    o.max_body = (size_t)32 << 20;
    o.max_labels = 1024;
    o.max_images = 16;
    o.max_vocabularies = 64;
    o.timeout_s = 30;
    return o;
}

int serve_port(const serve_server *s) { return s->port; }

/* ------------------------------------------------------------ answers */

void answer_json(answer *a, int status, cJSON *value) {
    char *text = value ? cJSON_PrintUnformatted(value) : NULL;
    cJSON_Delete(value);
    free(a->body);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory writing the answer\"}";
        a->status = 500, a->body = strdup(oom);
    } else {
        a->status = status, a->body = text; /* cJSON allocates with malloc */
    }
    a->size = a->body ? strlen(a->body) : 0;
    a->content_type = "application/json";
}

void answer_error(answer *a, int status, const char *message) {
    cJSON *obj = cJSON_CreateObject();
    if (obj && !cJSON_AddStringToObject(obj, "error", message)) cJSON_Delete(obj), obj = NULL;
    answer_json(a, status, obj);
    if (obj) a->status = status;
}

/* ------------------------------------------------------------ requests */

typedef enum { ROUTE_PAGE, ROUTE_HEALTH, ROUTE_MODEL, ROUTE_PREDICT, ROUTE_LABELS, ROUTE_NONE } route;
typedef enum { RECEIVING, QUEUED, ANSWERED } request_state;

/* One request, from its first header to its completion. */
typedef struct {
    serve_job job; /* first: a worker gets the job and finds its request */
    serve_server *server;
    struct MHD_Connection *con;
    route route;
    const char *method, *url;
    request_state state;
    int computed;              /* the worker's answer is ready (under server->lock) */
    int refused;               /* an error was queued mid-upload: drop the rest */
    size_t received;           /* body bytes so far */
    int json;                  /* body is JSON (else form data through `post`) */
    struct MHD_PostProcessor *post;
    char *body;                /* the JSON body, NUL-terminated */
    size_t body_size, body_cap;
    upload *fields, *files;    /* form parts: text fields, uploaded files */
    int n_fields, n_files;
    upload *current;           /* the part data is arriving for */
    request_spec spec;
    vocab_entry *held;         /* the stored vocabulary the request names */
    request_error perr;
    answer ans;
} request;

static void request_free(request *r) {
    if (r->post) MHD_destroy_post_processor(r->post);
    free(r->body);
    for (int i = 0; i < r->n_fields; i++) upload_free(&r->fields[i]);
    for (int i = 0; i < r->n_files; i++) upload_free(&r->files[i]);
    free(r->fields);
    free(r->files);
    spec_free(&r->spec);
    vocab_release(&r->server->vocab, r->held);
    free(r->ans.body);
    free(r);
}

static void log_answer(request *r) {
    serve_server *s = r->server;
    int cls = r->ans.status / 100;
    pthread_mutex_lock(&s->lock);
    if (cls >= 2 && cls <= 5) s->answered[cls]++;
    pthread_mutex_unlock(&s->lock);
    if (r->ans.status >= 400) /* the body of an error is its JSON message */
        fprintf(stderr, "ramc serve: %s %s: %d %.*s\n", r->method, r->url, r->ans.status,
                (int)(r->ans.size < 400 ? r->ans.size : 400), r->ans.body ? r->ans.body : "");
}

static enum MHD_Result send_answer(request *r) {
    answer *a = &r->ans;
    log_answer(r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->size, a->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    a->body = NULL; /* the response owns it */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->route == ROUTE_PAGE && a->status == 200)
        /* the page loads nothing from anywhere: scripts and styles are inline,
         * pictures are data: or blob: URLs, requests go to this server only */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "img-src data: blob:; connect-src 'self'; form-action 'none'; "
                                "frame-ancestors 'none'; base-uri 'none'");
    if (a->status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (a->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", a->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    r->state = ANSWERED;
    enum MHD_Result ok = MHD_queue_response(r->con, (unsigned)a->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result send_error(request *r, int status, const char *message) {
    answer_error(&r->ans, status, message);
    return send_answer(r);
}

/* ------------------------------------------------------------ routes without the model */

static void add_vocab_item(const vocab_entry *e, void *arg) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddNumberToObject(o, "labels", ramc_labels_count(e->labels));
    cJSON_AddStringToObject(o, "template", e->template_str ? e->template_str : RAMC_DEFAULT_TEMPLATE);
    cJSON_AddBoolToObject(o, "pinned", e->pinned);
    cJSON_AddItemToArray(arg, o);
}

static cJSON *model_info(serve_server *s) {
    const serve_options *o = &s->opt;
    const ramc_clip_info ci = ramc_model_get_info(s->model);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", ramc_version());
    cJSON_AddStringToObject(root, "clip", o->clip_path ? o->clip_path : "");
    if (o->adapter_path) cJSON_AddStringToObject(root, "adapter", o->adapter_path);
    else cJSON_AddNullToObject(root, "adapter");
    cJSON_AddStringToObject(root, "mode", ramc_model_has_adapter(s->model) ? "ram (trained adapter)"
                                                                          : "ram (zero-shot)");
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddNumberToObject(m, "image_size", ci.image_size);
    cJSON_AddNumberToObject(m, "patch_size", ci.patch_size);
    cJSON_AddNumberToObject(m, "grid", ci.grid);
    cJSON_AddNumberToObject(m, "embed_dim", ci.embed_dim);
    cJSON_AddNumberToObject(m, "vision_layers", ci.vision_layers);
    cJSON_AddNumberToObject(m, "text_layers", ci.text_layers);
    cJSON *lc = cJSON_AddObjectToObject(root, "label_cache");
    cJSON_AddBoolToObject(lc, "enabled", o->label_cache != NULL);
    if (o->label_cache) cJSON_AddStringToObject(lc, "dir", o->label_cache);
    cJSON *v = cJSON_AddArrayToObject(root, "vocabularies");
    if (v) vocab_each(&s->vocab, add_vocab_item, v);
    cJSON *lim = cJSON_AddObjectToObject(root, "limits");
    cJSON_AddNumberToObject(lim, "threads", o->threads);
    cJSON_AddNumberToObject(lim, "queue", o->queue);
    cJSON_AddNumberToObject(lim, "max_body_bytes", (double)o->max_body);
    cJSON_AddNumberToObject(lim, "max_images", o->max_images);
    cJSON_AddNumberToObject(lim, "max_labels", o->max_labels);
    cJSON_AddNumberToObject(lim, "max_label_bytes", RAMC_MAX_LABEL_BYTES);
    cJSON_AddNumberToObject(lim, "max_vocabularies", o->max_vocabularies);
    cJSON_AddNumberToObject(lim, "timeout_s", o->timeout_s);
    cJSON_AddBoolToObject(root, "token_required", o->token != NULL);
    return root;
}

static cJSON *health(serve_server *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "ok");
    cJSON_AddNumberToObject(root, "queued", job_queue_waiting(&s->queue));
    pthread_mutex_lock(&s->lock);
    cJSON_AddNumberToObject(root, "in_flight", s->in_flight);
    pthread_mutex_unlock(&s->lock);
    return root;
}

/* ------------------------------------------------------------ authentication */

/* The whole expected token is always walked, whatever the given one holds,
 * so the time taken tells nothing about how much of it matched. */
static int token_matches(const char *given, const char *want) {
    const size_t gl = strlen(given), wl = strlen(want);
    volatile unsigned char diff = gl != wl;
    for (size_t i = 0; i < wl; i++) diff |= (unsigned char)(want[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static int authorised(request *r) {
    const char *want = r->server->opt.token;
    if (!want) return 1;
    const char *h = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    while (*h == ' ') h++;
    return token_matches(h, want);
}

/* ------------------------------------------------------------ the body */

static const char *const form_field_names[] = {"labels", "vocabulary", "template", "top_k",
                                               "threshold", "score", "explain"};

static int is_form_field(const char *key) {
    for (size_t i = 0; i < sizeof form_field_names / sizeof *form_field_names; i++)
        if (!strcmp(key, form_field_names[i])) return 1;
    return 0;
}

static int append(upload *u, const char *data, size_t n) {
    if (n + 1 > u->cap - u->size) {
        size_t cap = u->cap ? u->cap : 4096;
        while (n + 1 > cap - u->size) cap *= 2;
        uint8_t *grown = realloc(u->data, cap);
        if (!grown) return 0;
        u->data = grown, u->cap = cap;
    }
    memcpy(u->data + u->size, data, n);
    u->size += n;
    u->data[u->size] = 0;
    return 1;
}

/* libmicrohttpd's form parser hands over each part in pieces: off == 0 starts a part. */
static enum MHD_Result on_form_part(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data, uint64_t off,
                                    size_t size) {
    request *r = cls;
    if (!key) key = "";
    /* (a part announced empty and then given its bytes, both at offset 0, stays one part) */
    const int continues = r->current && r->current->size == 0 && off == 0 &&
                          !strcmp(r->current->name, filename && *filename && !is_form_field(key) ? filename : key);
    if ((off == 0 && !continues) || !r->current) {
        /* a file under a field's name (curl -F labels=@list.txt) is that field */
        const int is_file = filename && !is_form_field(key);
        upload **list = is_file ? &r->files : &r->fields;
        int *n = is_file ? &r->n_files : &r->n_fields;
        if (is_file && *n >= r->server->opt.max_images) {
            request_fail(&r->perr, 413, "more than %d images in one request", r->server->opt.max_images);
            return MHD_NO;
        }
        if (*n >= 64 + r->server->opt.max_images) {
            request_fail(&r->perr, 400, "too many form fields");
            return MHD_NO;
        }
        upload *grown = realloc(*list, (size_t)(*n + 1) * sizeof **list);
        if (!grown) return MHD_NO;
        *list = grown;
        r->current = &grown[(*n)++];
        memset(r->current, 0, sizeof *r->current);
        char unnamed[32];
        snprintf(unnamed, sizeof unnamed, "image %d", *n);
        r->current->name = strdup(!is_file ? key : *filename ? filename : unnamed);
        if (!r->current->name || !append(r->current, "", 0)) return MHD_NO;
    }
    return append(r->current, data, size) ? MHD_YES : MHD_NO;
}

static int content_type_is(request *r, const char *type) {
    const char *ct = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return ct && !strncasecmp(ct, type, strlen(type));
}

/* First call of a POST: where its body goes. Returns 0 with an error queued. */
static enum MHD_Result begin_post(request *r) {
    serve_server *s = r->server;
    const char *cl = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && end != cl && !*end && n > s->opt.max_body) {
            char msg[160];
            snprintf(msg, sizeof msg, "the body is %llu bytes, more than the server's limit of %zu (--max-body)",
                     n, s->opt.max_body);
            r->refused = 1;
            return send_error(r, 413, msg);
        }
    }
    if (content_type_is(r, "application/json")) {
        r->json = 1;
        return MHD_YES;
    }
    if (content_type_is(r, "multipart/form-data") || content_type_is(r, "application/x-www-form-urlencoded"))
        r->post = MHD_create_post_processor(r->con, POST_BUFFER_BYTES, on_form_part, r);
    if (!r->post) {
        r->refused = 1;
        return send_error(r, 415, "send multipart/form-data (image files and fields) or application/json "
                                  "(base64 images); see docs/serve.md");
    }
    return MHD_YES;
}

static enum MHD_Result receive(request *r, const char *data, size_t size) {
    serve_server *s = r->server;
    /* libmicrohttpd answers only once the upload is in: a refused body is
     * read and dropped, up to twice the limit, then the connection is cut */
    if (r->perr.status) {
        r->received += size;
        return r->received / 2 > s->opt.max_body ? MHD_NO : MHD_YES;
    }
    if (size > s->opt.max_body - r->received) {
        r->received += size;
        return request_fail(&r->perr, 413, "the body is more than the server's limit of %zu bytes (--max-body)",
                            s->opt.max_body), MHD_YES;
    }
    r->received += size;
    if (r->json) {
        if (size + 1 > r->body_cap - r->body_size) {
            size_t cap = r->body_cap ? r->body_cap : 65536;
            while (size + 1 > cap - r->body_size) cap *= 2;
            char *grown = realloc(r->body, cap);
            if (!grown) return request_fail(&r->perr, 500, "out of memory receiving the body"), MHD_YES;
            r->body = grown, r->body_cap = cap;
        }
        memcpy(r->body + r->body_size, data, size);
        r->body_size += size;
        r->body[r->body_size] = 0;
        return MHD_YES;
    }
    if (MHD_post_process(r->post, data, size) != MHD_YES && !r->perr.status)
        request_fail(&r->perr, 400, "malformed multipart/form-data body");
    return MHD_YES;
}

/* ------------------------------------------------------------ the queue */

static void run_job(serve_job *job, serve_worker *w) {
    request *r = (request *)job;
    serve_server *s = r->server;
    const double waited = monotonic_seconds() - job->enqueued;
    if (waited > s->opt.timeout_s) {
        char msg[128];
        snprintf(msg, sizeof msg, "timed out after %.0f s waiting for a worker", waited);
        answer_error(&r->ans, 503, msg);
        r->ans.retry_after = 1;
    } else if (r->route == ROUTE_PREDICT) {
        work_predict(s, w, &r->spec, r->held, &r->ans);
    } else {
        work_labels(s, &r->spec, &r->ans);
    }
    /* handed over under our own lock (libmicrohttpd's are invisible to the
     * thread sanitizer); then the polling thread calls the handler again,
     * which sends the answer */
    pthread_mutex_lock(&s->lock);
    r->computed = 1;
    pthread_mutex_unlock(&s->lock);
    MHD_resume_connection(r->con);
}

/* The whole body is in: check it and queue the work. */
static enum MHD_Result dispatch(request *r) {
    serve_server *s = r->server;
    const int for_labels = r->route == ROUTE_LABELS;
    if (r->post) {
        /* ends the last part; a body cut short before its closing boundary fails here */
        int complete = MHD_destroy_post_processor(r->post) == MHD_YES;
        r->post = NULL;
        if (!complete && !r->perr.status) request_fail(&r->perr, 400, "malformed or truncated multipart/form-data body");
    }
    if (r->perr.status) return send_error(r, r->perr.status, r->perr.message);
    int ok;
    if (r->json) {
        ok = spec_from_json(&r->spec, r->body ? r->body : "", r->body_size, for_labels, &s->opt, &r->perr);
    } else {
        ok = spec_from_form(&r->spec, r->fields, r->n_fields, r->files, r->n_files, for_labels, &s->opt, &r->perr);
        r->files = NULL, r->n_files = 0; /* the spec's now */
    }
    if (!ok) return send_error(r, r->perr.status, r->perr.message);
    if (r->spec.vocabulary && !(r->held = vocab_acquire(&s->vocab, r->spec.vocabulary))) {
        char msg[400];
        snprintf(msg, sizeof msg, "unknown vocabulary id '%.256s' (POST /v1/labels makes one; "
                                  "GET /v1/model lists them)", r->spec.vocabulary);
        return send_error(r, 400, msg);
    }
    if (!job_queue_reserve(&s->queue)) {
        answer_error(&r->ans, 503, "the server is busy: every worker is taken and the queue is full");
        r->ans.retry_after = 1;
        return send_answer(r);
    }
    r->state = QUEUED;
    r->job.run = run_job;
    MHD_suspend_connection(r->con);
    job_queue_push(&s->queue, &r->job);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    serve_server *s = cls;
    request *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->server = s, r->con = con, r->method = method, r->url = url;
        *con_cls = r;
        pthread_mutex_lock(&s->lock);
        s->in_flight++;
        pthread_mutex_unlock(&s->lock);
        const int get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
        const int post = !strcmp(method, MHD_HTTP_METHOD_POST);
        static const struct { const char *path; route route; int post; } routes[] = {
            {"/", ROUTE_PAGE, 0}, {"/healthz", ROUTE_HEALTH, 0}, {"/v1/model", ROUTE_MODEL, 0},
            {"/v1/predict", ROUTE_PREDICT, 1}, {"/v1/labels", ROUTE_LABELS, 1}};
        r->route = ROUTE_NONE;
        int want_post = 0;
        for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
            if (!strcmp(url, routes[i].path)) r->route = routes[i].route, want_post = routes[i].post;
        if (r->route == ROUTE_NONE) return send_error(r, 404, "no such path (see GET /v1/model and docs/serve.md)");
        if (want_post ? !post : !get) {
            r->refused = 1;
            return send_error(r, 405, want_post ? "use POST here" : "use GET here");
        }
        if (!strncmp(url, "/v1/", 4) && !authorised(r)) {
            r->refused = 1;
            return send_error(r, 401, "a valid 'Authorization: Bearer TOKEN' header is required");
        }
        switch (r->route) {
        case ROUTE_PAGE:
            r->ans.status = 200, r->ans.content_type = "text/html; charset=utf-8";
            r->ans.body = malloc(serve_page_html_size);
            if (!r->ans.body) return MHD_NO;
            memcpy(r->ans.body, serve_page_html, serve_page_html_size);
            r->ans.size = serve_page_html_size;
            return send_answer(r);
        case ROUTE_HEALTH: answer_json(&r->ans, 200, health(s)); return send_answer(r);
        case ROUTE_MODEL: answer_json(&r->ans, 200, model_info(s)); return send_answer(r);
        default: return begin_post(r);
        }
    }
    if (r->state == ANSWERED || r->refused) {
        *upload_data_size = 0; /* the answer is out: the rest of the body is dropped */
        return MHD_YES;
    }
    if (r->state == QUEUED) { /* resumed by the worker: its answer is ready */
        pthread_mutex_lock(&s->lock);
        const int computed = r->computed;
        pthread_mutex_unlock(&s->lock);
        return computed ? send_answer(r) : MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return receive(r, upload_data, n);
    }
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    serve_server *s = cls;
    request *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    request_free(r);
    pthread_mutex_lock(&s->lock);
    if (--s->in_flight == 0) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ start and stop */

ramc_status serve_start(const ramc_model *model, const serve_options *opt, serve_server **out) {
    *out = NULL;
    if (opt->threads < 1 || opt->queue < 1 || opt->max_body < 1 || opt->max_labels < 1 ||
        opt->max_images < 1 || opt->max_vocabularies < 1 || opt->timeout_s < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "serve: threads, queue and the limits must be at least 1");
    struct sockaddr_in in4 = {0};
    struct sockaddr_in6 in6 = {0};
    int ipv6 = 0;
    if (inet_pton(AF_INET, opt->host, &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET, in4.sin_port = htons((uint16_t)opt->port);
    } else if (inet_pton(AF_INET6, opt->host, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6, in6.sin6_port = htons((uint16_t)opt->port);
        ipv6 = 1;
    } else {
        return ramc_error(RAMC_ERR_INVALID_ARG, "--host '%s': not a numeric IPv4 or IPv6 address", opt->host);
    }
    serve_server *s = calloc(1, sizeof *s);
    if (!s) return ramc_error(RAMC_ERR_NOMEM, "serve: out of memory");
    s->opt = *opt, s->model = model;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (!vocab_store_init(&s->vocab, opt->max_vocabularies)) {
        free(s);
        return ramc_error(RAMC_ERR_NOMEM, "serve: out of memory");
    }
    ramc_status st = job_queue_start(&s->queue, model, opt->threads, opt->queue);
    if (st != RAMC_OK) {
        vocab_store_free(&s->vocab);
        free(s);
        return st;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ipv6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, ipv6 ? (struct sockaddr *)&in6 : (struct sockaddr *)&in4,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt->timeout_s,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_MAX_CONNECTIONS,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        int e = errno;
        job_queue_stop(&s->queue);
        vocab_store_free(&s->vocab);
        free(s);
        return ramc_error(RAMC_ERR_IO, "cannot listen on %s port %d: %s", opt->host, opt->port,
                          e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : opt->port;
    *out = s;
    return RAMC_OK;
}

ramc_status serve_add_vocabulary(serve_server *s, const char *id, const char *const *names, int n,
                                 const char *template_str) {
    ramc_labels *labels = NULL;
    ramc_status st = ramc_labels_encode_cached(s->model, NULL, names, n, template_str, s->opt.label_cache, &labels);
    if (st != RAMC_OK) return st;
    vocab_entry *e = vocab_insert(&s->vocab, id, template_str, labels, 1);
    if (!e) {
        ramc_labels_free(labels);
        return RAMC_ERR_LIMIT;
    }
    vocab_release(&s->vocab, e);
    return RAMC_OK;
}

void serve_stop(serve_server *s) {
    if (!s) return;
    /* no new connections; those open finish what they began */
    MHD_socket listener = MHD_quiesce_daemon(s->daemon);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    /* an upload can stall for timeout_s, its work wait as long again in the queue */
    until.tv_sec += 3 * s->opt.timeout_s + 60;
    pthread_mutex_lock(&s->lock);
    while (s->in_flight > 0 && pthread_cond_timedwait(&s->idle, &s->lock, &until) != ETIMEDOUT) {
    }
    int left = s->in_flight;
    pthread_mutex_unlock(&s->lock);
    if (left) fprintf(stderr, "ramc serve: %d requests still open at shutdown, dropped\n", left);
    /* the workers finish what is queued first: a suspended connection must be
     * resumed before the daemon stops */
    job_queue_stop(&s->queue);
    MHD_stop_daemon(s->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    vocab_store_free(&s->vocab);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
