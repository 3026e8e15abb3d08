/* Fuzz target: the training config parser (ram_train_config_parse), the
 * --set form of one line (ram_train_config_set), and the promise of config.h
 * that parsing ram_train_config_dump()'s text gives back the same settings.
 * The whole input is the config text. */
#include <stdlib.h>
#include <string.h>

#include "train/config.h"
#include "fuzz.h"

void fuzz_init_config(void) {}

/* dump -> parse -> dump must be a fixed point; returns nothing, aborts if not */
static void check_round_trip(const ram_train_config *cfg) {
    char *text = NULL;
    FUZZ_CHECK(ram_train_config_dump(cfg, &text) == RAMC_OK && text, "dump: %s", ramc_last_error());
    ram_train_config again;
    ram_train_config_init(&again, RAM_PRESET_COCO);
    ramc_status st = ram_train_config_parse(&again, text, strlen(text), "dump");
    FUZZ_CHECK(st == RAMC_OK, "parsing the dump failed: %s\n--- dump ---\n%s", ramc_last_error(), text);
    char *text2 = NULL;
    FUZZ_CHECK(ram_train_config_dump(&again, &text2) == RAMC_OK && text2, "dump 2: %s",
               ramc_last_error());
    FUZZ_CHECK(!strcmp(text, text2), "dump changed by a round trip:\n--- first ---\n%s\n--- second ---\n%s",
               text, text2);
    free(text);
    free(text2);
}

int fuzz_one_config(const uint8_t *data, size_t size) {
    char *text = fuzz_copy(data, size);
    if (!text) return 0;
    ram_train_config cfg;
    ram_train_config_init(&cfg, RAM_PRESET_COCO);
    ramc_clear_error();
    if (ram_train_config_parse(&cfg, text, size, "fuzz.cfg") == RAMC_OK) {
        /* validation may refuse; either way it must not crash */
        ram_train_config_validate(&cfg, "fuzz.cfg");
        check_round_trip(&cfg);
        /* layer lists against a ViT-B-like depth and a one-block model */
        ramc_clip_info info;
        memset(&info, 0, sizeof info);
        ram_config model;
        info.vision_layers = info.text_layers = 12;
        ram_train_config_model(&cfg, &info, &model);
        info.vision_layers = info.text_layers = 1;
        ram_train_config_model(&cfg, &info, &model);
    } else {
        fuzz_check_error_message("ram_train_config_parse");
    }

    /* the first line as a command-line --set argument */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    char *line = fuzz_strdup(data, n);
    if (line) {
        ram_train_config_init(&cfg, RAM_PRESET_NUS);
        ramc_clear_error();
        if (ram_train_config_set(&cfg, line, "--set") == RAMC_OK) check_round_trip(&cfg);
        else fuzz_check_error_message("ram_train_config_set");
        free(line);
    }
    free(text);
    return 0;
}
