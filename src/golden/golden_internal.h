/* Pieces shared by the two kinds of golden set: the single-step comparison
 * (golden.c) and the training-trajectory replay (golden_trajectory.c). */
#ifndef RAMC_GOLDEN_INTERNAL_H
#define RAMC_GOLDEN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "golden/golden.h"
#include "io/safetensors.h"

/* A new zeroed row at the end of the report (NULL when out of memory). */
golden_row *golden_add_row(golden_report *r);
void golden_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);
/* A failed row whose numbers could not be compared; `why` fills its shape column. */
void golden_fail_row(golden_report *r, const char *name, const char *why);

/* obj[key] as a non-negative integer: `fallback` when absent, an error naming
 * `file` when present but not such an integer. */
ramc_status golden_json_int(const cJSON *obj, const char *key, int fallback, int *out,
                            const char *file);
/* obj[key], which must be an object when present (*out NULL when absent). */
ramc_status golden_json_object(const cJSON *obj, const char *key, const cJSON **out,
                               const char *file);
/* The shape of tensor `name` of `inputs`, which must have want_ndim dimensions. */
ramc_status golden_input_shape(st_file *inputs, const char *name, int want_ndim, int64_t *shape,
                               const char *path);

/* Replays a trajectory set (config.json "kind": "trajectory") through ramc's
 * trainer rules and compares every tensor of every step. `config` is the
 * parsed config.json. */
ramc_status golden_run_trajectory(const char *dir, const cJSON *config, golden_report *report);

#endif
