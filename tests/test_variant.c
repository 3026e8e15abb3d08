/* ramc_variant, the one struct of the paper's ablations: the config keys
 * read and write it under their own names (use_saa = false is no_saa = 1),
 * training and the head take it whole, and plain OT (RAMC_MATCH_OT) is
 * exactly KCOT's solver with the uniform source marginal. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "train/config.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"
#include "test.h"

static ramc_status parse(ram_train_config *c, const char *text) {
    return ram_train_config_parse(c, text, strlen(text), "variant.cfg");
}

static void test_config_keys(void) {
    ram_train_config c;
    ram_train_config_init(&c, RAM_PRESET_COCO);
    CHECK(c.variant.matching == RAMC_MATCH_KCOT && !c.variant.no_saa && !c.variant.no_tss &&
              !c.variant.uniform_source,
          "the default variant is RAM as published");

    CHECK(parse(&c, "use_saa = false\nuse_tss = false\nuse_lpd = false\nmatching = ot\n") ==
              RAMC_OK,
          "parse: %s", ramc_last_error());
    CHECK(c.variant.no_saa == 1 && c.variant.no_tss == 1 && c.variant.uniform_source == 1,
          "use_* = false sets the variant's no_* / uniform_source");
    CHECK(c.variant.matching == RAMC_MATCH_OT, "matching = ot");

    /* the dump writes the keys under their own meaning, and parses back */
    char *text = NULL;
    CHECK(ram_train_config_dump(&c, &text) == RAMC_OK, "dump: %s", ramc_last_error());
    if (text) {
        CHECK(strstr(text, "use_saa = false") && strstr(text, "use_tss = false") &&
                  strstr(text, "use_lpd = false") && strstr(text, "matching = ot"),
              "dump shows the keys as written:\n%s", text);
        ram_train_config back;
        ram_train_config_init(&back, RAM_PRESET_COCO);
        CHECK(parse(&back, text) == RAMC_OK, "parse the dump: %s", ramc_last_error());
        CHECK(!memcmp(&back.variant, &c.variant, sizeof c.variant), "round trip of the variant");
        free(text);
    }

    CHECK(parse(&c, "use_saa = true\n") == RAMC_OK && c.variant.no_saa == 0, "use_saa = true");

    ram_train_options o = ram_train_default_options();
    const ramc_variant v = {RAMC_MATCH_REWEIGHT, 1, 0, 1};
    ram_train_options_set_variant(&o, &v);
    CHECK(o.matching == RAM_MATCH_REWEIGHT && o.no_saa == 1 && o.no_tss == 0 &&
              o.uniform_source == 1,
          "training options take the variant whole");
    CHECK(ram_vision_flags(&v) == RAM_VISION_NO_SAA, "vision flags of the variant");
}

/* Plain OT against KCOT with uniform_source on the same inputs: bitwise. */
static void test_plain_ot_head(void) {
    enum { B = 2, N = 9, C = 5, D = 8 };
    ramc_rng rng;
    rng_seed(&rng, 7);
    float g[B * D], f[B * N * D], t[C * D];
    for (int i = 0; i < B * D; i++) g[i] = (float)rng_normal(&rng);
    for (int i = 0; i < B * N * D; i++) f[i] = (float)rng_normal(&rng);
    for (int i = 0; i < C * D; i++) t[i] = (float)rng_normal(&rng);
    sinkhorn_options so = sinkhorn_default_options();
    ram_head ot = {0}, ref = {0};
    if (ram_head_alloc(&ot, NULL, B, N, C, D, 100) || ram_head_alloc(&ref, NULL, B, N, C, D, 100)) {
        CHECK(0, "head alloc");
        return;
    }
    const ramc_variant v_ot = {RAMC_MATCH_OT, 0, 0, 0}, v_ref = {RAMC_MATCH_KCOT, 0, 0, 1};
    ram_head_set_variant(&ot, &v_ot);
    ram_head_set_variant(&ref, &v_ref);
    CHECK(ram_head_forward(&ot, g, f, t, 100.0f, 0.01f, 0.002f, NULL, &so) == RAMC_OK, "OT head");
    CHECK(ram_head_forward(&ref, g, f, t, 100.0f, 0.01f, 0.002f, NULL, &so) == RAMC_OK, "KCOT head");
    CHECK(!memcmp(ot.u, ref.u, sizeof(float) * B * N), "uniform source marginal");
    CHECK(ot.u[0] == 1.0f / N, "u = 1/N: %g", (double)ot.u[0]);
    CHECK(!memcmp(ot.score, ref.score, sizeof(float) * B * C), "scores bitwise equal");
    ram_head_free(&ot);
    ram_head_free(&ref);
}

int main(void) {
    test_config_keys();
    test_plain_ot_head();
    return test_summary("test_variant");
}
