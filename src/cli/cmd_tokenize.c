/* placeholder until the tokenize command lands */
#include <stdio.h>
#include "cli/cli.h"
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "ramc tokenize: not built yet\n"); return 1; }
