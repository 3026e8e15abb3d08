/* Process-wide settings (core/setup.c): the data folder and the version. */
#ifndef RAMC_CORE_SETUP_H
#define RAMC_CORE_SETUP_H

#include <stddef.h>

#include "core/status.h"

/* The data folder now in force (ramc_set_data_dir, else the build's), copied
 * into buf (truncated to size - 1 bytes). */
void core_data_dir(char *buf, size_t size);

#endif
