/* Safetensors files: a validated, memory-mapped reader and an atomic writer.
 *
 * Layout: 8-byte little-endian header length n, n bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "string", ...}}, then the data block.
 * st_open checks everything before any tensor is used: header length within
 * the file and below ST_MAX_HEADER_BYTES, valid JSON, known dtypes, shapes
 * whose element count times the dtype size equals the byte range, ranges inside
 * the data block and not overlapping. Every error names the file (and tensor).
 */
#ifndef RAMC_IO_SAFETENSORS_H
#define RAMC_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define ST_MAX_HEADER_BYTES (100u << 20) /* 100 MiB of JSON header at most */
#define ST_MAX_DIMS 8

typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL
} st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data; /* inside the mapping; not necessarily aligned */
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    int n_tensors;
    st_tensor *tensors; /* in header order */
    int n_metadata;
    char **metadata_keys, **metadata_values;
    void **owned;       /* tensor buffers of a file read by copying (PyTorch archives) */
    int n_owned;
} st_file;

const char *st_dtype_name(st_dtype dtype);
size_t st_dtype_size(st_dtype dtype);

/* Opens a safetensors file, or a PyTorch zip checkpoint (torch.save >= 1.6 or
 * torch.jit.save; see torch_file.h), whose tensors then read the same way. */
ramc_status st_open(const char *path, st_file **out);
void st_close(st_file *file);

/* NULL if absent (no error recorded). */
const st_tensor *st_find(const st_file *file, const char *name);
/* Metadata value or NULL. */
const char *st_metadata(const st_file *file, const char *key);

/* Converts a float tensor (F32, F16, BF16, F64) to float32 into out[numel]. */
ramc_status st_read_f32(const st_file *file, const st_tensor *t, float *out);
/* Converts an integer tensor (I64, I32, I16, I8, U8, BOOL) to int64 into out[numel]. */
ramc_status st_read_i64(const st_file *file, const st_tensor *t, int64_t *out);

/* Finds `name`, checks its shape equals shape[0..ndim) (ndim 0 = a scalar,
 * also accepting shape [1]) and reads it as float32. Errors name file and tensor. */
ramc_status st_load_f32(const st_file *file, const char *name, int ndim, const int64_t *shape,
                        float *out);

/* ----------------------------------------------------------------- writer */

typedef struct st_writer st_writer;

st_writer *st_writer_new(void);
/* Copies the data. dtype F32/F16/BF16/I32/I64...; data holds numel elements of that dtype. */
ramc_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                          const int64_t *shape, const void *data);
/* float32 input stored as F32, F16 or BF16 (round to nearest even). */
ramc_status st_writer_add_f32(st_writer *w, const char *name, st_dtype stored_as, int ndim,
                              const int64_t *shape, const float *data);
ramc_status st_writer_set_metadata(st_writer *w, const char *key, const char *value);
/* Writes to a new path.tmp.XXXXXX (mkstemp), fsyncs, renames over path: a crash never leaves a partial file. */
ramc_status st_writer_save(st_writer *w, const char *path);
void st_writer_free(st_writer *w);

#endif
