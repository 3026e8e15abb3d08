/* placeholder until the golden command lands */
#include <stdio.h>
#include "cli/cli.h"
int cmd_golden(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "ramc golden: not built yet\n"); return 1; }
