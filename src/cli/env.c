/* The environment variables of the ramc command. The library reads none:
 * each one here becomes a library parameter, so what a variable does is
 * visible at the call that it changes (docs/performance.md, docs/predict.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/kernels.h"

/* set, non-empty and not "0" */
static int env_on(const char *name, int *set) {
    const char *e = getenv(name);
    *set = e && e[0];
    return *set && strcmp(e, "0") != 0;
}

void cli_env_clip_params(ramc_clip_params *p) {
    int set;
    if (env_on("RAMC_BF16", &set)) p->bf16 = 1;
    int pack = env_on("RAMC_PACK", &set);
    if (set) {
        /* RAMC_PACK=0: float32 on the stored weights everywhere, bf16 included
         * (bf16 exists only on packed copies); RAMC_PACK=1: pack float32 too */
        p->pack_weights = pack;
        if (!pack) p->bf16 = 0;
    }
}

void cli_env_process(void) {
    const char *dir = getenv("RAMC_DATA_DIR");
    if (dir && *dir) ramc_set_data_dir(dir);
    /* the command owns its process: keep freed memory for reuse (ramc.h) */
    const char *keep = getenv("RAMC_KEEP_FREED_MEMORY");
    if (!keep || strcmp(keep, "0") != 0) ramc_keep_freed_memory();
    /* RAMC_ISA=generic|avx2|avx512: run ramc's own kernels at a lower level
     * than the CPU's best (to measure what the run-time choice gains) */
    const char *isa = getenv("RAMC_ISA");
    if (isa && *isa) {
        int level = kernels_isa_parse(isa);
        if (level < 0 || kernels_isa_set((kernels_isa)level) != 0)
            fprintf(stderr, "ramc: RAMC_ISA=%s ignored: %s (this CPU's best: %s)\n", isa,
                    level < 0 ? "not one of generic, avx2, avx512" : "not supported by this CPU",
                    kernels_isa_name(kernels_isa_best()));
    }
}
