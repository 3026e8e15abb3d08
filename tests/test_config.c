/* Training configuration: presets against spec §1, file parsing, --set
 * precedence, every error path, dump/parse round trip (src/train/config.h). */
#include <stdlib.h>
#include <string.h>

#include "train/config.h"
#include "io/file.h"
#include "test.h"

#define CHECK_ERR(st, ...)                                                                  \
    do {                                                                                    \
        const char *frags_[] = {__VA_ARGS__, NULL};                                         \
        CHECK((st) != RAMC_OK, "expected a failure");                                       \
        for (int f_ = 0; frags_[f_]; f_++)                                                  \
            CHECK(strstr(ramc_last_error(), frags_[f_]) != NULL, "message '%s' lacks '%s'", \
                  ramc_last_error(), frags_[f_]);                                           \
    } while (0)

static ramc_status parse(ram_train_config *c, const char *text) {
    return ram_train_config_parse(c, text, strlen(text), "run.cfg");
}

static void test_presets(void) {
    ram_train_config c;
    ram_train_config_init(&c, RAM_PRESET_COCO);
    CHECK(c.preset == RAM_PRESET_COCO, "preset");
    /* presets count from the last block: [-3,-2,-1] is [9,10,11] on ViT-B/16 */
    CHECK(c.n_depth_vision == 3 && c.depth_vision[0] == -3 && c.depth_vision[2] == -1, "DEPTH_VISION");
    CHECK(c.n_depth_text == 3 && c.depth_text[0] == -3 && c.depth_text[2] == -1, "COCO DEPTH_TEXT");
    CHECK(c.vision_prompts == 8 && c.text_prompts == 4 && c.kernel_size == 3, "prompts, kernel");
    CHECK(c.temperature == 2e-3, "COCO TEMPERATURE");
    CHECK(c.ot_reg == 0.1 && c.ot_regsc == 0.05, "OT_REG, OT_REGSC");
    CHECK(c.use_teacher == 1 && c.teacher_sharpen == 20 && c.sinkhorn == SINKHORN_BATCH_COUPLED,
          "teacher, sinkhorn");
    CHECK(c.image_size == 0, "SIZE: the model's own by default");
    for (int i = 0; i < 3; i++) CHECK(c.pixel_mean[i] == 0.5 && c.pixel_std[i] == 0.5, "PIXEL_MEAN/STD");
    CHECK(c.flip_prob == 0.5 && c.erase_prob == 0.5 && c.padding == 10, "PROB, RE_PROB, PADDING");
    CHECK(c.base_lr == 5e-5 && c.weight_decay == 1e-4 && c.clip_lr_factor == 0.1, "AdamW");
    CHECK(c.base_lr_sgd == 1e-3 && c.weight_decay_sgd == 1e-4 && c.momentum == 0.9, "SGD");
    CHECK(c.lr_scheduler == 0 && c.warmup_lr_factor == 0.01 && c.min_lr_factor == 0.002, "schedule");
    CHECK(c.scheduler_max_epochs == 60 && c.warmup_epochs == 3 && c.max_epochs == 6, "epochs");
    CHECK(c.batch_size == 32 && c.eval_batch_size == 512 && c.eval_period == 3, "batches");
    CHECK(c.checkpoint_period == 1 && c.seed == 42 && c.log_period == 500, "period, seed, log");
    CHECK(c.use_ema == 1 && c.ema_decay == 0.9997 && c.workers == 8, "EMA, workers");
    CHECK(c.dataset_mode == DATASET_STRICT && c.train[0] == 0 && c.output_dir[0] == 0, "data");

    ram_train_config n;
    ram_train_config_init(&n, RAM_PRESET_NUS);
    CHECK(n.preset == RAM_PRESET_NUS, "nus preset");
    CHECK(n.n_depth_text == 6 && n.depth_text[0] == -6 && n.depth_text[5] == -1, "NUS DEPTH_TEXT");
    CHECK(n.n_depth_vision == 3 && n.depth_vision[0] == -3, "NUS DEPTH_VISION");
    CHECK(n.temperature == 2e-4 && n.log_period == 1000, "NUS TEMPERATURE, LOG_PERIOD");
    CHECK(n.base_lr == 5e-5 && n.max_epochs == 6 && n.eval_batch_size == 512, "NUS shared");
    CHECK(ram_train_config_validate(&c, "coco") == RAMC_OK && ram_train_config_validate(&n, "nus") == RAMC_OK,
          "presets validate");
}

static void test_file(void) {
    ram_train_config c;
    ram_train_config_init(&c, RAM_PRESET_COCO);
    const char *text =
        "\xEF\xBB\xBF# my run\n"
        "preset = nus   # first\n"
        "\n"
        "base_lr = 1e-4\n"
        "  depth_text = [ -3, -2,-1 ]  \r\n"
        "pixel_mean = [0.48145466, 0.4578275, 0.40821073]\n"
        "pixel_std = 0.25\n"
        "train = \"/data/coco/train 48.json\"  # quoted: spaces kept\n"
        "image_root = /data/images  # bare, comment cut\n"
        "path_map = \"/mnt/nas/#x=/data\"\n"
        "use_ema = false\n"
        "sinkhorn = \"per_image\"\n"
        "dataset_mode = official\n"
        "seed = 123456789012\n"
        "max_epochs=10\n";
    ramc_status st = parse(&c, text);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    CHECK(c.preset == RAM_PRESET_NUS && c.temperature == 2e-4, "preset applied");
    CHECK(c.base_lr == 1e-4, "base_lr");
    CHECK(c.n_depth_text == 3 && c.depth_text[0] == -3 && c.depth_text[2] == -1, "negative list");
    CHECK(c.pixel_mean[0] == 0.48145466 && c.pixel_mean[2] == 0.40821073, "vec3");
    CHECK(c.pixel_std[0] == 0.25 && c.pixel_std[2] == 0.25, "scalar vec3");
    CHECK(!strcmp(c.train, "/data/coco/train 48.json"), "quoted string '%s'", c.train);
    CHECK(!strcmp(c.image_root, "/data/images"), "bare string '%s'", c.image_root);
    CHECK(!strcmp(c.path_map, "/mnt/nas/#x=/data"), "'#' inside quotes '%s'", c.path_map);
    CHECK(c.use_ema == 0 && c.sinkhorn == SINKHORN_PER_IMAGE && c.dataset_mode == DATASET_OFFICIAL,
          "bool, enums");
    CHECK(c.seed == 123456789012LL && c.max_epochs == 10, "seed, no spaces");

    /* resolved against a 12-block model */
    ramc_clip_info info;
    memset(&info, 0, sizeof info);
    info.vision_layers = 12;
    info.text_layers = 12;
    ram_config rc;
    CHECK(ram_train_config_model(&c, &info, &rc) == RAMC_OK, "%s", ramc_last_error());
    CHECK(rc.n_text_prompted == 3 && rc.text_layers[0] == 9 && rc.text_layers[2] == 11, "resolved -3..-1");
    CHECK(rc.n_vision_adapted == 3 && rc.vision_layers[0] == 9, "vision layers");
    CHECK(rc.n_vis_prompts == 8 && rc.n_txt_prompts == 4 && rc.gate_kernel == 3 &&
              rc.temperature_loc == 2e-4f,
          "ram_config fields");
    ram_train_config_set(&c, "depth_text = [11, -1]", "--set");
    CHECK_ERR(ram_train_config_model(&c, &info, &rc), "depth_text", "listed twice");
    ram_train_config_set(&c, "depth_vision = [12]", "--set");
    CHECK_ERR(ram_train_config_model(&c, &info, &rc), "depth_vision", "does not exist in a 12-block model");

    /* from a real file, then --set on top: command line wins */
    char path[] = "/tmp/ramc_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    fputs("preset = coco\nbatch_size = 16\nbase_lr = 2e-5\n", f);
    fclose(f);
    ram_train_config_init(&c, RAM_PRESET_NUS);
    CHECK(ram_train_config_load(&c, path) == RAMC_OK, "%s", ramc_last_error());
    CHECK(c.preset == RAM_PRESET_COCO && c.batch_size == 16 && c.log_period == 500, "file over preset");
    CHECK(ram_train_config_set(&c, "batch_size=64", NULL) == RAMC_OK, "%s", ramc_last_error());
    CHECK(ram_train_config_set(&c, " output_dir = runs/a # where ", NULL) == RAMC_OK, "%s", ramc_last_error());
    CHECK(c.batch_size == 64 && c.base_lr == 2e-5 && !strcmp(c.output_dir, "runs/a"), "--set wins");
    CHECK(ram_train_config_apply(&c, "base_lr", " 3e-5 ", "--set") == RAMC_OK, "apply");
    CHECK(c.base_lr == 3e-5, "apply value");
    CHECK(ram_train_config_apply(&c, "image_root", "", "--set") == RAMC_OK && c.image_root[0] == 0,
          "empty string clears");
    CHECK_ERR(ram_train_config_set(&c, "preset=nus", "--set"), "--set", "'preset' must come before");
    /* a bad line names file and line */
    f = fopen(path, "w");
    fputs("batch_size = 16\n\n# c\nbase_lr = fast\n", f);
    fclose(f);
    CHECK_ERR(ram_train_config_load(&c, path), path, ":4:", "key 'base_lr'", "expected a number, got 'fast'");
    remove(path);
    CHECK_ERR(ram_train_config_load(&c, "/nonexistent/run.cfg"), "/nonexistent/run.cfg");
}

static void test_errors(void) {
    struct {
        const char *text, *frag1, *frag2;
    } cases[] = {
        {"batch_size = 16\nbatchsize = 8\n", "run.cfg:2:", "unknown key 'batchsize'"},
        {"batch_size = 1.5\n", "run.cfg:1: key 'batch_size'", "expected an integer, got '1.5'"},
        {"batch_size = 0\n", "key 'batch_size'", "0 is outside [1, 4096]"},
        {"batch_size = 99999999999999999999\n", "key 'batch_size'", "expected an integer"},
        {"batch_size = \"16\"\n", "key 'batch_size'", "got a quoted string"},
        {"batch_size =\n", "key 'batch_size'", "missing value"},
        {"base_lr = 5e-5x\n", "key 'base_lr'", "expected a number, got '5e-5x'"},
        {"base_lr = nan\n", "key 'base_lr'", "expected a number"},
        {"base_lr = 1e999\n", "key 'base_lr'", "expected a number"},
        {"base_lr = -1e-5\n", "key 'base_lr'", "outside [0, 10]"},
        {"temperature = 0\n", "key 'temperature'", "outside (0, 1000]"},
        {"momentum = 1\n", "key 'momentum'", "outside [0, 1)"},
        {"ema_decay = 1.0\n", "key 'ema_decay'", "outside [0, 1)"},
        {"flip_prob = 1.5\n", "key 'flip_prob'", "outside [0, 1]"},
        {"kernel_size = 4\n", "key 'kernel_size'", "even"},
        {"use_ema = maybe\n", "key 'use_ema'", "expected true or false, got 'maybe'"},
        {"sinkhorn = fast\n", "key 'sinkhorn'", "expected one of coupled, per_image, log_domain"},
        {"dataset_mode = lenient\n", "key 'dataset_mode'", "expected one of strict, official"},
        {"lr_scheduler = step\n", "key 'lr_scheduler'", "expected one of cosine"},
        {"depth_text = 9\n", "key 'depth_text'", "expected a list like [9, 10, 11]"},
        {"depth_text = [9, x]\n", "key 'depth_text'", "entry 1: expected an integer, got 'x'"},
        {"depth_text = [9, 9]\n", "key 'depth_text'", "block 9 listed twice"},
        {"depth_text = [9, 99]\n", "key 'depth_text'", "entry 1: 99 is outside"},
        {"depth_text = []\n", "key 'depth_text'", "the list is empty"},
        {"depth_text = [9,]\n", "key 'depth_text'", "entry 1: expected an integer, got ''"},
        {"pixel_mean = [0.5, 0.5]\n", "key 'pixel_mean'", "expected 3 numbers, got 2"},
        {"pixel_mean = [0.5, 0.5, 0.5, 0.5]\n", "key 'pixel_mean'", "more than 3 entries"},
        {"pixel_std = [0.5, 0, 0.5]\n", "key 'pixel_std'", "entry 1 (0) is outside"},
        {"pixel_std = [0.5, a, 0.5]\n", "key 'pixel_std'", "entry 1: expected a number"},
        {"pixel_std = abc\n", "key 'pixel_std'", "expected [r, g, b] or one number"},
        {"train = \"abc\n", "key 'train'", "missing closing quote"},
        {"train = \"abc\" def\n", "key 'train'", "text after the closing quote"},
        {"train = \"a\\qb\"\n", "key 'train'", "unknown escape"},
        {"batch_size = 16\nmax_epochs = 3\nbatch_size = 8\n", "run.cfg:3: key 'batch_size' set twice",
         "first on line 1"},
        {"batch_size = 16\npreset = nus\n", "run.cfg:2:", "'preset' must come before every other key"},
        {"preset = imagenet\n", "key 'preset'", "expected coco or nus"},
        {"just some words\n", "run.cfg:1:", "expected 'key = value'"},
        {" = 5\n", "run.cfg:1:", "missing key"},
        {"bad key = 5\n", "run.cfg:1:", "bad key 'bad key'"},
        {"seed = -1\n", "key 'seed'", "outside"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ram_train_config c;
        ram_train_config_init(&c, RAM_PRESET_COCO);
        ramc_status st = parse(&c, cases[i].text);
        CHECK_ERR(st, cases[i].frag1, cases[i].frag2);
    }
    ram_train_config c;
    ram_train_config_init(&c, RAM_PRESET_COCO);
    /* a failed value leaves the old one */
    parse(&c, "batch_size = 0\n");
    CHECK(c.batch_size == 32, "unchanged after an error");
    CHECK_ERR(ram_train_config_set(&c, "batch_size", "--set"), "--set", "expected 'key = value'");
    CHECK_ERR(ram_train_config_set(&c, "nokey=1", "--set"), "--set: unknown key 'nokey'");
    CHECK_ERR(ram_train_config_apply(&c, "train", "a\001b", "--set"), "control character");
    char *big = malloc(RAM_CONFIG_MAX_STRING + 16);
    memset(big, 'a', RAM_CONFIG_MAX_STRING + 8);
    big[RAM_CONFIG_MAX_STRING + 8] = '\0';
    CHECK_ERR(ram_train_config_apply(&c, "train", big, "--set"), "key 'train'", "longer than");
    free(big);
    const char nul[] = "batch_size = 1\0\n";
    CHECK_ERR(ram_train_config_parse(&c, nul, sizeof nul - 1, "run.cfg"), "run.cfg", "NUL");
    /* cross-key checks */
    ram_train_config_init(&c, RAM_PRESET_COCO);
    ram_train_config_set(&c, "warmup_epochs=60", "--set");
    CHECK_ERR(ram_train_config_validate(&c, "run.cfg"), "run.cfg", "warmup_epochs (60)",
              "scheduler_max_epochs (60)");
    ram_train_config_init(&c, RAM_PRESET_COCO);
    ram_train_config_set(&c, "path_map=/only/old", "--set");
    CHECK_ERR(ram_train_config_validate(&c, "run.cfg"), "path_map", "OLD=NEW");
}

static void test_round_trip(void) {
    ram_train_config a, b;
    ram_train_config_init(&a, RAM_PRESET_NUS);
    const char *sets[] = {
        "depth_vision=[-2, -1]", "depth_text=[3,5,7,11]", "temperature=1.2345678901234567e-4",
        "ot_reg=0.3", "base_lr=0.1", "momentum=0.95", "pixel_mean=[0.1,0.2,0.3]",
        "train=\"/a \\\"quoted\\\" #path\\\\x\"", "output_dir=runs/x", "test_gzsl=\"tab\\there\"",
        "seed=9007199254740992", "use_ema=off", "sinkhorn=log_domain", "dataset_mode=official",
        "image_size=0", "checkpoint_period=0", "workers=0", "ema_decay=0.123456789",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK(ram_train_config_set(&a, sets[i], "--set") == RAMC_OK, "%s: %s", sets[i], ramc_last_error());
    CHECK(!strcmp(a.train, "/a \"quoted\" #path\\x"), "escapes: %s", a.train);
    char *d1 = NULL, *d2 = NULL;
    CHECK(ram_train_config_dump(&a, &d1) == RAMC_OK, "dump");
    if (!d1) return;
    CHECK(strstr(d1, "preset = nus\n") != NULL && strstr(d1, "base_lr = 0.1\n") != NULL, "dump text");
    CHECK(strstr(d1, "depth_text = [3, 5, 7, 11]\n") != NULL, "list text");
    ram_train_config_init(&b, RAM_PRESET_COCO);
    ramc_status st = ram_train_config_parse(&b, d1, strlen(d1), "dump");
    CHECK(st == RAMC_OK, "parse dump: %s", ramc_last_error());
    b.n_applied = a.n_applied;
    CHECK(memcmp(&a, &b, sizeof a) == 0, "round trip gives the same struct");
    CHECK(b.temperature == a.temperature && b.ema_decay == a.ema_decay, "doubles exact");
    CHECK(ram_train_config_dump(&b, &d2) == RAMC_OK && d2 && !strcmp(d1, d2), "dump is stable");
    free(d1);
    free(d2);
    /* a preset dump round trips too, and the doc lists every key */
    ram_train_config_init(&a, RAM_PRESET_COCO);
    ram_train_config_dump(&a, &d1);
    ram_train_config_init(&b, RAM_PRESET_NUS);
    CHECK(ram_train_config_parse(&b, d1, strlen(d1), "dump") == RAMC_OK, "%s", ramc_last_error());
    b.n_applied = a.n_applied;
    CHECK(memcmp(&a, &b, sizeof a) == 0, "coco round trip");
    CHECK(strstr(d1, "base_lr = 5e-05\n") != NULL, "short float form");
    free(d1);

    char *doc = NULL;
    size_t len;
    if (read_whole_file(RAMC_SOURCE_DIR "/docs/datasets.md", 1 << 20, &doc, &len) == RAMC_OK) {
        for (int i = 0; i < ram_train_config_key_count(); i++) {
            char pat[128];
            snprintf(pat, sizeof pat, "| `%s` |", ram_train_config_key_name(i));
            CHECK(strstr(doc, pat) != NULL, "docs/datasets.md lacks a row for %s", pat);
            CHECK(ram_train_config_key_help(i) != NULL, "help %d", i);
        }
        free(doc);
    } else {
        CHECK(0, "cannot read docs/datasets.md: %s", ramc_last_error());
    }
    CHECK(ram_train_config_key_name(ram_train_config_key_count()) == NULL, "key table end");
}

int main(void) {
    test_presets();
    test_file();
    test_errors();
    test_round_trip();
    return test_summary("test_config");
}
