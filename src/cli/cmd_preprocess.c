/* placeholder until the preprocess command lands */
#include <stdio.h>
#include "cli/cli.h"
int cmd_preprocess(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "ramc preprocess: not built yet\n"); return 1; }
