/* Helpers shared by the fuzz targets (fuzz.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "ramc.h"

_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: fuzz check failed: %s: ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    /* abort() (not exit) so libFuzzer saves the input as a crash */
    abort();
}

/* One folder per process: libFuzzer -jobs/-fork runs several at once, and the
 * replay test may run beside a fuzzer. Files are removed at exit; a process
 * killed by a crash leaves its folder behind, which is why scripts/fuzz.sh
 * points TMPDIR into the build folder. */
#define MAX_TEMP_FILES 8
static char temp_dir[512];
static char temp_files[MAX_TEMP_FILES][600];
static int n_temp_files;

static void temp_cleanup(void) {
    for (int i = 0; i < n_temp_files; i++) unlink(temp_files[i]);
    if (temp_dir[0]) rmdir(temp_dir);
}

static int temp_dir_init(void) {
    if (temp_dir[0]) return 0;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    int n = snprintf(temp_dir, sizeof temp_dir, "%s/ramc-fuzz-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof temp_dir || !mkdtemp(temp_dir)) {
        fprintf(stderr, "fuzz: cannot create a temporary folder under %s: %s\n", base,
                strerror(errno));
        temp_dir[0] = '\0';
        return -1;
    }
    atexit(temp_cleanup);
    return 0;
}

int fuzz_temp_file(const char *basename, const uint8_t *data, size_t size, char *path,
                   size_t cap) {
    if (temp_dir_init() != 0) return -1;
    int n = snprintf(path, cap, "%s/%s", temp_dir, basename);
    if (n < 0 || (size_t)n >= cap) return -1;
    int known = 0;
    for (int i = 0; i < n_temp_files; i++) known |= !strcmp(temp_files[i], path);
    if (!known && n_temp_files < MAX_TEMP_FILES && strlen(path) < sizeof temp_files[0])
        strcpy(temp_files[n_temp_files++], path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    return close(fd) == 0 ? 0 : -1;
}

char *fuzz_copy(const uint8_t *data, size_t size) {
    char *p = malloc(size ? size : 1);
    if (p && size) memcpy(p, data, size);
    return p;
}

char *fuzz_strdup(const uint8_t *data, size_t size) {
    char *p = malloc(size + 1);
    if (!p) return NULL;
    if (size) memcpy(p, data, size);
    p[size] = '\0';
    return p;
}

void fuzz_check_error_message(const char *what) {
    FUZZ_CHECK(ramc_last_error()[0] != '\0', "%s failed without an error message", what);
}
