/* serve_load: a small HTTP load client for ramc serve. N client threads
 * each send M copies of one request (a body from a file), one connection
 * per request, wait for each answer before the next, and the run reports
 * throughput and latency percentiles:
 *
 *   serve_load --port P --body FILE --content-type TYPE [--path /v1/predict]
 *              [--host 127.0.0.1] [--clients N] [--requests M] [--token T]
 *
 * prints  clients=N requests=N*M errors=E seconds=S rps=R p50_ms=.. p99_ms=.. max_ms=..
 *         statuses=200:790,503:10   (0: no answer)
 * An error is an answer other than 200 or a failed connection; the exit
 * status is 1 if there was any. Plain POSIX sockets: no dependency. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *host, *path, *content_type, *token;
    int port, requests;
    const char *body;
    size_t body_size;
} config;

typedef struct {
    const config *cfg;
    double *latency; /* [requests] seconds */
    int errors;
    int first_bad_status;
    int by_status[600]; /* answers by HTTP status; [0]: no answer */
} client;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        p += k, n -= (size_t)k;
    }
    return 1;
}

/* One request; returns the HTTP status, or -1 when the exchange failed. */
static int one_request(const config *c) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET, a.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->host, &a.sin_addr) != 1 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "%s%s%sConnection: close\r\n\r\n",
                      c->path, c->host, c->port, c->content_type, c->body_size,
                      c->token ? "Authorization: Bearer " : "", c->token ? c->token : "", c->token ? "\r\n" : "");
    int status = -1;
    if (send_all(fd, head, (size_t)hn) && send_all(fd, c->body, c->body_size)) {
        char buf[65536];
        size_t got = 0;
        ssize_t k;
        /* read to the end (the server closes after the answer) */
        while ((k = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0 || (k < 0 && errno == EINTR)) {
            if (k > 0) got += (size_t)k;
            if (got == sizeof buf - 1) {
                if (status < 0) {
                    buf[got] = 0;
                    sscanf(buf, "HTTP/1.%*d %d", &status);
                }
                got = 0; /* the status line is read: the rest only needs draining */
            }
        }
        if (status < 0 && got) {
            buf[got] = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
        }
    }
    close(fd);
    return status;
}

static void *client_main(void *arg) {
    client *cl = arg;
    for (int i = 0; i < cl->cfg->requests; i++) {
        double t0 = now();
        int status = one_request(cl->cfg);
        cl->latency[i] = now() - t0;
        cl->by_status[status > 0 && status < 600 ? status : 0]++;
        if (status != 200) {
            if (!cl->errors) cl->first_bad_status = status;
            cl->errors++;
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *data = malloc(cap);
    size_t k;
    while (data && (k = fread(data + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *more = realloc(data, cap *= 2);
            if (!more) free(data);
            data = more;
        }
    }
    fclose(f);
    *size = n;
    return data;
}

int main(int argc, char **argv) {
    config c = {"127.0.0.1", "/v1/predict", "application/json", NULL, 0, 10, NULL, 0};
    int clients = 1;
    const char *body_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--host")) c.host = v;
        else if (!strcmp(a, "--port")) c.port = atoi(v);
        else if (!strcmp(a, "--path")) c.path = v;
        else if (!strcmp(a, "--content-type")) c.content_type = v;
        else if (!strcmp(a, "--token")) c.token = v;
        else if (!strcmp(a, "--body")) body_path = v;
        else if (!strcmp(a, "--clients")) clients = atoi(v);
        else if (!strcmp(a, "--requests")) c.requests = atoi(v);
        else {
            fprintf(stderr, "serve_load: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (argc % 2 == 0 || !body_path || c.port <= 0 || clients < 1 || c.requests < 1) {
        fprintf(stderr, "usage: serve_load --port P --body FILE [--content-type T] [--path P] "
                        "[--host H] [--clients N] [--requests M] [--token T]\n");
        return 2;
    }
    if (!(c.body = read_file(body_path, &c.body_size))) {
        fprintf(stderr, "serve_load: cannot read %s\n", body_path);
        return 2;
    }
    client *cl = calloc((size_t)clients, sizeof *cl);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    double *all = malloc((size_t)clients * c.requests * sizeof *all);
    if (!cl || !th || !all) return 2;
    double t0 = now();
    for (int i = 0; i < clients; i++) {
        cl[i].cfg = &c;
        cl[i].latency = all + (size_t)i * c.requests;
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    int errors = 0, bad = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        if (cl[i].errors && !errors) bad = cl[i].first_bad_status;
        errors += cl[i].errors;
    }
    double seconds = now() - t0;
    const size_t n = (size_t)clients * c.requests;
    qsort(all, n, sizeof *all, cmp_double);
    /* nearest rank */
    double p50 = all[(n * 50 + 99) / 100 - 1], p99 = all[(n * 99 + 99) / 100 - 1];
    printf("clients=%d requests=%zu errors=%d seconds=%.3f rps=%.2f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
           clients, n, errors, seconds, (double)n / seconds, 1e3 * p50, 1e3 * p99, 1e3 * all[n - 1]);
    printf("statuses=");
    for (int st = 0, first = 1; st < 600; st++) {
        int count = 0;
        for (int i = 0; i < clients; i++) count += cl[i].by_status[st];
        if (count) printf("%s%d:%d", first ? "" : ",", st, count), first = 0;
    }
    printf("\n");
    if (errors) fprintf(stderr, "serve_load: %d failed requests (first: %s %d)\n", errors,
                        bad < 0 ? "no answer" : "status", bad);
    free(all);
    free(cl);
    free(th);
    free((void *)c.body);
    return errors ? 1 : 0;
}
