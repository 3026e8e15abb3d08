/* The environment variables of the ramc command. The library reads none:
 * each one here becomes a library parameter, so what a variable does is
 * visible at the call that it changes (docs/performance.md, docs/predict.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/dist.h"
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

void cli_env_process(const char *command) {
    const char *dir = getenv("RAMC_DATA_DIR");
    if (dir && *dir) ramc_set_data_dir(dir);
    /* The command owns its process: where training steps still allocate
     * their records per step (pretrain-clip), keep freed memory for reuse
     * (ramc.h). RAM's training step (train, golden's trajectory replay,
     * bench's training scenarios) runs on its own arena from the third step
     * on, and keeping the first steps' freed memory measured no faster while
     * holding 26-42% more (docs/performance.md); prediction keeps its scratch
     * in a ramc_state. */
    static const char *const per_step_heap[] = {"pretrain-clip"};
    int training = 0;
    for (size_t i = 0; command && i < sizeof per_step_heap / sizeof per_step_heap[0]; i++)
        training |= !strcmp(command, per_step_heap[i]);
    const char *keep = getenv("RAMC_KEEP_FREED_MEMORY");
    if (training && (!keep || strcmp(keep, "0") != 0)) ramc_keep_freed_memory();
    /* RAMC_BF16_ATTENTION=auto|always|never: which attentions of the bf16
     * mode run in bf16 (attention_bf16_pays; auto: where measured faster) */
    const char *att = getenv("RAMC_BF16_ATTENTION");
    if (att && *att) {
        if (!strcmp(att, "auto") || !strcmp(att, "always") || !strcmp(att, "never"))
            kernels_bf16_attention_force(!strcmp(att, "auto") ? -1 : !strcmp(att, "always"));
        else
            fprintf(stderr, "ramc: RAMC_BF16_ATTENTION=%s ignored: not one of auto, always, never\n",
                    att);
    }
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

/* Started as one process of an MPI job? mpirun sets OMPI_COMM_WORLD_SIZE,
 * srun --mpi=pmix / pmi2 set PMIX_RANK / PMI_RANK. Returns the job's size
 * when the launcher says it (1 if not), 0 when not launched by MPI. */
static int mpi_job_size(void) {
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    static const char *const rank_vars[] = {"PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof size_vars / sizeof *size_vars; i++) {
        const char *v = getenv(size_vars[i]);
        if (v && atoi(v) >= 1) return atoi(v);
    }
    for (size_t i = 0; i < sizeof rank_vars / sizeof *rank_vars; i++)
        if (getenv(rank_vars[i])) return 1;
    return 0;
}

int cli_join_processes(const char *command, ramc_dist **d) {
    *d = NULL;
    int job = mpi_job_size();
    if (job == 0) {
        /* srun without an MPI plug-in starts independent copies, which would
         * all train (and fight over the output folder) */
        const char *tasks = getenv("SLURM_NTASKS");
        if (tasks && atoi(tasks) > 1 && getenv("SLURM_PROCID")) {
            fprintf(stderr, "ramc %s: started as one of %s Slurm tasks without MPI: run it as "
                            "srun --mpi=pmix ramc %s ... (see docs/distributed.md)\n", command,
                    tasks, command);
            return 2;
        }
        return 0;
    }
    if (!dist_built_with_mpi() && job == 1) return 0; /* mpirun -np 1 of a build without MPI */
    if (dist_init(d)) return cli_fail(command);
    return 0;
}
