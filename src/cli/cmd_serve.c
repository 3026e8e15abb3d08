/* ramc serve: load the model once and answer HTTP until SIGTERM. A thin
 * layer over the server layer (src/serve/serve.h): options, the model, the
 * token, the signals. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/status.h"
#include "data/dataset.h"
#include "io/file.h"
#include "ramc.h"
#include "serve/serve.h"

static const char usage_text[] =
    "usage: ramc serve [--clip WEIGHTS] [--adapter FILE] [--vision-heads N --text-heads N]\n"
    "                  [--host 127.0.0.1] [--port 8080] [--threads N] [--queue N]\n"
    "                  [--max-body MB] [--max-labels N] [--max-images N] [--timeout S]\n"
    "                  [--max-vocabularies N] [--label-cache DIR] [--labels-file FILE]\n"
    "                  [--token-file FILE]\n"
    "                  [--bf16] [--no-pack]\n"
    "\n"
    "Loads the model once and answers HTTP until SIGTERM or Ctrl-C, which stop new\n"
    "connections, finish every request already accepted, and exit 0 (docs/serve.md):\n"
    "\n"
    "  GET  /             a web page: drop an image, type labels, see the ranked\n"
    "                     labels and each label's heat map\n"
    "  GET  /healthz      {\"status\":\"ok\", ...}\n"
    "  GET  /v1/model     what is loaded, the stored vocabularies, the limits\n"
    "  POST /v1/predict   images (multipart files, or JSON with base64) and labels\n"
    "                     or a vocabulary id -> ranked labels as `ramc predict\n"
    "                     --format json`, with explain=1 heat maps as PNG\n"
    "  POST /v1/labels    encode a vocabulary once -> its id for later requests\n"
    "\n"
    "  --clip, --adapter, --vision-heads, --text-heads, --bf16, --no-pack\n"
    "                       the model, as for ramc predict (default: the embedded\n"
    "                       model, whose labels.txt is stored as vocabulary \"default\")\n"
    "  --host ADDR          numeric address to listen on (default 127.0.0.1: this\n"
    "                       machine only; 0.0.0.0 opens it to the network)\n"
    "  --port N             TCP port (default 8080; 0: any free port, printed)\n"
    "  --threads N          worker threads, one request each, one core each\n"
    "                       (default: the number of cores)\n"
    "  --queue N            requests waiting for a worker at most (default 16);\n"
    "                       beyond that: 503 with Retry-After\n"
    "  --max-body MB        largest request body (default 32)\n"
    "  --max-labels N       labels in one request or vocabulary (default 1024)\n"
    "  --max-images N       images in one request (default 16)\n"
    "  --timeout S          idle connection timeout, and the longest wait in the\n"
    "                       queue (default 30)\n"
    "  --max-vocabularies N label sets kept encoded (default 64); when full, the\n"
    "                       least recently used one not in use gives way\n"
    "  --label-cache DIR    keep encoded label features in DIR (as ramc predict)\n"
    "  --labels-file FILE   store this label list as vocabulary \"default\"\n"
    "  --token-file FILE    require 'Authorization: Bearer TOKEN' on /v1/ (TOKEN:\n"
    "                       the file's first line)\n"
    "\n"
    "Exit status: 0 after a signal, 1 the model or a file failed, 2 bad usage.\n"
    "\n"
    "example:\n"
    "  ramc serve --port 8080 &\n"
    "  curl -F image=@photo.jpg -F labels=$'dog\\ncat' http://127.0.0.1:8080/v1/predict\n";

#define MAX_TOKEN_BYTES 4096

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "ramc serve: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'ramc serve --help' for the options.\n");
    return 2;
}

static int parse_int(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) return 0;
    *out = v;
    return 1;
}

/* The token: the file's first line, without surrounding white space. */
static char *read_token(const char *path) {
    char *data = NULL;
    size_t len = 0;
    if (read_whole_file(path, MAX_TOKEN_BYTES, &data, &len) != RAMC_OK) {
        cli_fail("serve");
        return NULL;
    }
    char *p = data;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strcspn(p, "\r\n");
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    p[n] = 0;
    if (n == 0 || strlen(p) != n) {
        fprintf(stderr, "ramc serve: %s: no token on the first line\n", path);
        free(data);
        return NULL;
    }
    memmove(data, p, n + 1);
    struct stat sb;
    if (stat(path, &sb) == 0 && (sb.st_mode & 077))
        fprintf(stderr, "ramc serve: warning: %s can be read by other users (chmod 600 it)\n", path);
    return data;
}

int cmd_serve(int argc, char **argv) {
    serve_options so = serve_default_options();
    const char *clip = NULL, *adapter = NULL, *labels_file = NULL, *token_file = NULL;
    long vision_heads = 0, text_heads = 0;
    int bf16 = 0, no_pack = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    so.threads = cores > 0 ? (int)(cores < 256 ? cores : 256) : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--bf16")) { bf16 = 1; continue; }
        if (!strcmp(a, "--no-pack")) { no_pack = 1; continue; }
        static const char *const with_value[] = {
            "--clip", "--adapter", "--vision-heads", "--text-heads", "--host", "--port", "--threads",
            "--queue", "--max-body", "--max-labels", "--max-images", "--timeout", "--label-cache", "--max-vocabularies",
            "--labels-file", "--token-file"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (!known || !v) return usage_error(known ? "%s needs a value" : "unknown option or argument '%s'", a);
        long n = 0;
        int ok = 1;
        if (!strcmp(a, "--clip")) clip = v;
        else if (!strcmp(a, "--adapter")) adapter = v;
        else if (!strcmp(a, "--host")) so.host = v;
        else if (!strcmp(a, "--label-cache")) so.label_cache = v;
        else if (!strcmp(a, "--labels-file")) labels_file = v;
        else if (!strcmp(a, "--token-file")) token_file = v;
        else if (!strcmp(a, "--vision-heads")) ok = parse_int(v, 1, 4096, &vision_heads);
        else if (!strcmp(a, "--text-heads")) ok = parse_int(v, 1, 4096, &text_heads);
        else if (!strcmp(a, "--port")) ok = parse_int(v, 0, 65535, &n), so.port = (int)n;
        else if (!strcmp(a, "--threads")) ok = parse_int(v, 1, 256, &n), so.threads = (int)n;
        else if (!strcmp(a, "--queue")) ok = parse_int(v, 1, 4096, &n), so.queue = (int)n;
        else if (!strcmp(a, "--max-body")) ok = parse_int(v, 1, 1024, &n), so.max_body = (size_t)n << 20;
        else if (!strcmp(a, "--max-labels")) ok = parse_int(v, 1, RAMC_MAX_LABELS, &n), so.max_labels = (int)n;
        else if (!strcmp(a, "--max-images")) ok = parse_int(v, 1, 256, &n), so.max_images = (int)n;
        else if (!strcmp(a, "--max-vocabularies")) ok = parse_int(v, 1, 4096, &n), so.max_vocabularies = (int)n;
        else if (!strcmp(a, "--timeout")) ok = parse_int(v, 1, 3600, &n), so.timeout_s = (int)n;
        if (!ok) {
            fprintf(stderr, "ramc serve: invalid value '%s' for %s\n", v, a);
            return 2;
        }
        i++;
    }

    static char default_clip[4096], default_adapter[4096], default_labels[4200];
    if (!clip) {
        if (ramc_default_model_paths(default_clip, default_adapter, sizeof default_clip) != RAMC_OK)
            return fprintf(stderr, "ramc serve: no --clip given and %s\n", ramc_last_error()), 1;
        clip = default_clip;
        if (!adapter) adapter = default_adapter;
        if (!labels_file) {
            char dir[4096];
            file_parent_dir(default_clip, dir, sizeof dir);
            snprintf(default_labels, sizeof default_labels, "%s/labels.txt", dir);
            if (access(default_labels, R_OK) == 0) labels_file = default_labels;
        }
        fprintf(stderr, "ramc serve: no --clip given: using the embedded default model %s and its adapter %s\n",
                clip, adapter);
    }
    char *token = NULL;
    if (token_file && !(token = read_token(token_file))) return 1;
    so.token = token;
    so.clip_path = clip, so.adapter_path = adapter;

    /* Each request runs on one worker with one core: throughput grows with
     * workers, and one request never competes with another for cores. */
    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = (int)vision_heads, cp.text_heads = (int)text_heads, cp.bf16 = bf16;
    cp.pack_weights = !no_pack, cp.threads = 1;
    cli_env_clip_params(&cp);
    ramc_model *model = NULL;
    if (ramc_model_load(clip, adapter, &cp, &model) != RAMC_OK) {
        free(token);
        return cli_fail("serve");
    }

    /* The signals are taken by sigwait below: blocked here, before any thread
     * starts, so every thread inherits the mask and none is interrupted. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up is the server's business, not a signal */

    serve_server *server = NULL;
    int status = 0;
    if (serve_start(model, &so, &server) != RAMC_OK) {
        status = cli_fail("serve");
        goto done;
    }
    if (labels_file) {
        class_list cl;
        ramc_status st = class_list_load(labels_file, &cl);
        if (st == RAMC_OK) {
            st = serve_add_vocabulary(server, "default", (const char *const *)cl.names, cl.n, NULL);
            if (st != RAMC_OK) ramc_error_prefix(st, "%s", labels_file);
            class_list_free(&cl);
        }
        if (st != RAMC_OK) {
            status = cli_fail("serve");
            goto done;
        }
    }
    fprintf(stderr, "ramc serve: listening on http://%s%s%s:%d/ (%d workers, queue %d%s)\n",
            strchr(so.host, ':') ? "[" : "", so.host, strchr(so.host, ':') ? "]" : "", serve_port(server),
            so.threads, so.queue, token ? ", token required" : "");
    fflush(stderr);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "ramc serve: %s: finishing the requests under way\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
done:
    serve_stop(server);
    if (status == 0) fprintf(stderr, "ramc serve: stopped\n");
    ramc_model_free(model);
    free(token);
    return status;
}
