/* The environment variables of the ramc command. The library reads none:
 * each one here becomes a library parameter, so what a variable does is
 * visible at the call that it changes (docs/performance.md, docs/predict.md). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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

void cli_env_process(const char *command) {
    const char *dir = getenv("RAMC_DATA_DIR");
    if (dir && *dir) ramc_set_data_dir(dir);
    /* The command owns its process: where training steps still allocate
     * their records per step, keep freed memory for reuse (ramc.h).
     * Prediction keeps its scratch in a ramc_state and needs no such help. */
    static const char *const per_step_heap[] = {"train", "pretrain-clip", "golden", "bench"};
    int training = 0;
    for (size_t i = 0; command && i < sizeof per_step_heap / sizeof per_step_heap[0]; i++)
        training |= !strcmp(command, per_step_heap[i]);
    const char *keep = getenv("RAMC_KEEP_FREED_MEMORY");
    if (training && (!keep || strcmp(keep, "0") != 0)) ramc_keep_freed_memory();
}
