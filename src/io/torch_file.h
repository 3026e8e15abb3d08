/* PyTorch checkpoints, read without Python and without executing them:
 * the zip archives of torch.save (torch >= 1.6) and torch.jit.save.
 *
 *   archive/data.pkl      the pickled object: a state dict (plain, or under
 *                         "state_dict", names maybe prefixed "module."), or a
 *                         TorchScript module whose attributes are walked
 *                         into dotted names (visual.conv1.weight, ...)
 *   archive/data/<key>    the raw little-endian bytes of storage <key>
 *   archive/byteorder     "little" (absent in older files)
 *
 * st_open() recognises these files by their zip signature and calls
 * torch_read_archive(), so every loader that reads safetensors (CLIP
 * weights, adapters, ramc convert) reads them too. Each tensor is copied out
 * of its storage into a contiguous buffer of its own dtype (float32, float16,
 * bfloat16, float64 and the integer types). Only the globals a state dict
 * needs are accepted (pickle.h); anything else is refused naming the file
 * and the global. The pre-1.6 format (a bare pickle stream) is recognised
 * and refused with a way to convert it. */
#ifndef RAMC_IO_TORCH_FILE_H
#define RAMC_IO_TORCH_FILE_H

#include <stddef.h>

#include "io/safetensors.h"

/* 1 if data begins like a zip archive. */
int torch_is_archive(const unsigned char *data, size_t size);
/* 1 if data begins like the legacy (pre-1.6, non-zip) torch.save format. */
int torch_is_legacy(const unsigned char *data, size_t size);

/* Fills f->tensors (and f->owned) from the archive in data[0 .. size), which
 * is f's file mapped; f->path names it in messages. */
ramc_status torch_read_archive(st_file *f, const unsigned char *data, size_t size);

#endif
