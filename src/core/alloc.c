/* ramc_keep_freed_memory (ramc.h): glibc's heap kept for reuse. */
#include <malloc.h>

#include "ramc.h"

void ramc_keep_freed_memory(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_MAX, 0);        /* large blocks from the heap too, not fresh mmaps */
    mallopt(M_TRIM_THRESHOLD, -1); /* never give the heap's top back */
    mallopt(M_TOP_PAD, 64 << 20);
#endif
}
