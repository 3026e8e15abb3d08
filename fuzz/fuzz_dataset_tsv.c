/* Fuzz target: dataset_parse_tsv ("path<TAB>label,label" lines). */
#include "fuzz.h"
#include "fuzz_dataset.h"

void fuzz_init_dataset_tsv(void) { fuzz_dataset_init(); }
int fuzz_one_dataset_tsv(const uint8_t *data, size_t size) { return fuzz_dataset_run(data, size, 0); }
