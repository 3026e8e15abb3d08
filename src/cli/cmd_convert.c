/* ramc convert: rewrite a safetensors file or a PyTorch checkpoint as
 * safetensors, optionally with its floating-point tensors in another precision
 * (f16 halves the embedded default model). Names, shapes, tensor order and
 * metadata are kept; integer tensors are copied unchanged. Every loader reads
 * F32, F16 and BF16, so a converted file drops in anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/safetensors.h"
#include "ramc.h"

static const char usage_text[] =
    "usage: ramc convert [--f16 | --bf16 | --f32] IN OUT.safetensors\n"
    "\n"
    "IN is a safetensors file or a PyTorch checkpoint (.pt, .pth, .bin: torch.save\n"
    "of a state dict, or a TorchScript archive such as OpenAI's ViT-B-16.pt; read\n"
    "without running any of it). Writes OUT with every tensor of IN, names, shapes,\n"
    "order and metadata kept; with --f16, --bf16 or --f32 every floating-point\n"
    "tensor is stored in that precision (round to nearest even), otherwise in its\n"
    "own. Integer tensors are copied. OUT is written atomically and may not be IN.\n"
    "A CLIP loaded by ramc is fp16-rounded anyway (as the official build_model),\n"
    "so --f16 loses nothing for CLIP weights; adapters change by the rounding.\n"
    "\n"
    "examples:\n"
    "  ramc convert --f16 run/adapter.safetensors data/default/adapter.safetensors\n"
    "  ramc convert ViT-B-16.pt ViT-B-16.safetensors\n";

static int is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int have_dtype = 0;
    st_dtype to = ST_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--f16") || !strcmp(a, "--bf16") || !strcmp(a, "--f32")) {
            to = !strcmp(a, "--f16") ? ST_F16 : !strcmp(a, "--bf16") ? ST_BF16 : ST_F32;
            have_dtype = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ramc convert: unknown option '%s'\n\n%s", a, usage_text);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "ramc convert: one input and one output only\n\n%s", usage_text);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "ramc convert: give IN and OUT\n\n%s", usage_text);
        return 2;
    }
    if (!strcmp(in, out)) {
        /* the reader maps IN while OUT is renamed over it */
        fprintf(stderr, "ramc convert: OUT must differ from IN\n");
        return 2;
    }
    st_file *f = NULL;
    if (st_open(in, &f) != RAMC_OK) return cli_fail("convert");
    st_writer *w = st_writer_new();
    float *buf = NULL;
    ramc_status st = w ? RAMC_OK : ramc_error(RAMC_ERR_NOMEM, "convert: out of memory");
    for (int i = 0; st == RAMC_OK && i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        if (!is_float(t->dtype) || !have_dtype) {
            st = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
            continue;
        }
        float *nb = realloc(buf, (size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (!nb) {
            st = ramc_error(RAMC_ERR_NOMEM, "%s: tensor '%s': out of memory", in, t->name);
            break;
        }
        buf = nb;
        st = st_read_f32(f, t, buf);
        if (st == RAMC_OK) st = st_writer_add_f32(w, t->name, to, t->ndim, t->shape, buf);
    }
    for (int i = 0; st == RAMC_OK && i < f->n_metadata; i++)
        st = st_writer_set_metadata(w, f->metadata_keys[i], f->metadata_values[i]);
    if (st == RAMC_OK) st = st_writer_save(w, out);
    free(buf);
    if (w) st_writer_free(w);
    st_close(f);
    if (st != RAMC_OK) return cli_fail("convert");
    return 0;
}
