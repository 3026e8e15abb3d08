/* The ramc command-line front end: one function per subcommand.
 * Each returns the process exit status: 0 success, 1 failure of the work
 * (bad file, mismatch), 2 bad usage. They print errors to stderr as
 * "ramc <command>: <message>". */
#ifndef RAMC_CLI_H
#define RAMC_CLI_H

#include "ramc.h"

int cmd_tokenize(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_golden(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Prints "ramc <command>: <library's last error>" to stderr and returns 1. */
int cli_fail(const char *command);
/* The same for an error in the command line itself (a bad --set): returns 2. */
int cli_usage_error(const char *command);

/* The environment, read here and nowhere in the library (cli/env.c):
 * RAMC_BF16=1 and RAMC_PACK=0|1 over a command's CLIP parameters, applied
 * after its flags; RAMC_DATA_DIR (ramc_set_data_dir) and, for the training
 * commands, RAMC_KEEP_FREED_MEMORY once at start (command: argv[1], may be
 * NULL). */
void cli_env_clip_params(ramc_clip_params *p);
void cli_env_process(const char *command);

/* Data-parallel commands (train, golden): joins the MPI job when started by
 * an MPI launcher (mpirun, srun --mpi=pmix); *d stays NULL for one process.
 * Returns 0, or the exit status after printing why not (docs/distributed.md). */
struct ramc_dist;
int cli_join_processes(const char *command, struct ramc_dist **d);

/* --threads N: 1..4096 into *out; 0 and an error message otherwise. */
int cli_parse_threads(const char *command, const char *value, int *out);

/* --score official|independent: 1 with *out set, 0 for another value. */
int cli_parse_score(const char *value, ramc_score *out);
const char *cli_score_name(ramc_score score);

/* --thresholds FILE (cli/thresholds.c, docs/predict.md): out[c] = the
 * threshold of labels[c] (n of them) from the file, or *fallback for a label
 * the file does not list (fallback NULL: that is an error). Errors name the
 * file and line; labels of the file not asked for get one warning on stderr. */
ramc_status cli_read_thresholds(const char *path, const char *const *labels, int n,
                                const float *fallback, float *out);

#endif
