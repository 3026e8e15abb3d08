/* Fuzz target: dataset_parse_json (the official dataset format). */
#include "fuzz.h"
#include "fuzz_dataset.h"

void fuzz_init_dataset_json(void) { fuzz_dataset_init(); }
int fuzz_one_dataset_json(const uint8_t *data, size_t size) { return fuzz_dataset_run(data, size, 1); }
