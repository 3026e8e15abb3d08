/* Data tables for the CLIP text cleanup, generated from Python by
 * scripts/gen_text_tables.py (see there for the provenance of each). */
#ifndef RAMC_TEXT_TABLES_H
#define RAMC_TEXT_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint32_t lo, hi; } ramc_cp_range;
typedef struct { const char *key, *value; } ramc_str_entry; /* sorted by key bytes */
typedef struct { uint32_t cp; const char *value; } ramc_cp_entry; /* sorted by cp */
typedef struct { uint32_t cp, mask; } ramc_cp_mask;

#define RAMC_N_CHARMAPS 10

extern const ramc_str_entry ramc_html5_entities[];
extern const size_t ramc_html5_entities_count;
extern const ramc_str_entry ramc_ftfy_upper_entities[];
extern const size_t ramc_ftfy_upper_entities_count;
extern const ramc_cp_entry ramc_lower_map[];
extern const size_t ramc_lower_map_count;
extern const ramc_cp_range ramc_cased_ranges[];
extern const size_t ramc_cased_ranges_count;
extern const ramc_cp_range ramc_case_ignorable_ranges[];
extern const size_t ramc_case_ignorable_ranges_count;
extern const ramc_cp_range ramc_letter_ranges[];
extern const size_t ramc_letter_ranges_count;
extern const ramc_cp_range ramc_number_ranges[];
extern const size_t ramc_number_ranges_count;
extern const ramc_cp_entry ramc_width_map[];
extern const size_t ramc_width_map_count;
extern const char *const ramc_charmap_names[RAMC_N_CHARMAPS];
extern const uint32_t ramc_charmaps[RAMC_N_CHARMAPS][256];
extern const uint32_t ramc_cp1252_strict[256];
extern const ramc_cp_mask ramc_mojibake_classes[];
extern const size_t ramc_mojibake_classes_count;
extern const ramc_cp_entry ramc_html_invalid_charrefs[];
extern const size_t ramc_html_invalid_charrefs_count;
extern const ramc_cp_range ramc_html_invalid_codepoints[];
extern const size_t ramc_html_invalid_codepoints_count;

/* Bits of ramc_mojibake_classes[].mask, in the generator's ORDER. */
enum {
    MJ_COMMON = 1 << 0, MJ_C1 = 1 << 1, MJ_BAD = 1 << 2, MJ_LAW = 1 << 3, MJ_CUR = 1 << 4,
    MJ_SP = 1 << 5, MJ_EP = 1 << 6, MJ_NUM = 1 << 7, MJ_KAO = 1 << 8, MJ_UA = 1 << 9,
    MJ_LA = 1 << 10, MJ_UC = 1 << 11, MJ_LC = 1 << 12, MJ_BOX = 1 << 13
};

#endif
