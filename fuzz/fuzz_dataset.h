/* Shared body of the dataset_json and dataset_tsv fuzz targets.
 * Input layout: byte 0 = option flags (bit 0 fixed class list, bit 1 official
 * mode, bits 2-3 path_map variants, bit 4 image_root, bit 5 dataset name
 * without a folder), then the file text. */
#ifndef RAMC_FUZZ_DATASET_H
#define RAMC_FUZZ_DATASET_H

#include <stddef.h>
#include <stdint.h>

void fuzz_dataset_init(void);
int fuzz_dataset_run(const uint8_t *data, size_t size, int json);

#endif
