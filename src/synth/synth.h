/* A seeded generator of synthetic multi-label images (`ramc synth`).
 *
 * There are no pretrained weights on our machines, so the zero-shot setting
 * of RAM (a CLIP that has read every word, a RAM adapter trained on the seen
 * labels only) is rebuilt from scratch on a compositional toy world:
 * labels are "colour shape" phrases ("red star"), images hold 1-6 flat,
 * anti-aliased shapes on low-contrast grey textures, and the splits hold out
 * some colour x shape combinations so that every WORD of an unseen label is
 * still seen during training. See docs/synth.md.
 *
 * Everything is a pure function of (seed, options): image i of split s is
 * drawn from its own generator seeded by hash(seed, s, i), so the output is
 * byte-identical for any number of threads.
 */
#ifndef RAMC_SYNTH_SYNTH_H
#define RAMC_SYNTH_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"

/* Written into manifest.json; bump when the same seed would give other bytes.
 * World v1 keeps writing "ramc-synth 1" byte for byte (old results stay
 * reproducible); world v2 is "ramc-synth 2". */
#define SYNTH_VERSION "ramc-synth 1"
#define SYNTH_VERSION_V2 "ramc-synth 2"

#define SYNTH_MIN_SIZE 32
#define SYNTH_MAX_SIZE 512
#define SYNTH_MAX_OBJECTS 8    /* world v2; world v1 stops at 6 */
#define SYNTH_MAX_OBJECTS_V1 6
#define SYNTH_MAX_DISTRACTORS 4
#define SYNTH_MAX_IMAGES 1000000 /* per split */
#define SYNTH_MAX_COLOURS 16
#define SYNTH_MAX_SHAPES 16
#define SYNTH_MAX_CLASSES (SYNTH_MAX_COLOURS * SYNTH_MAX_SHAPES)
#define SYNTH_MAX_CAPTION 512

/* The built-in catalogues. The default vocabulary is the first 8 of each:
 * the colours and shapes a small ViT separates most easily. */
int synth_catalog_colours(void);
int synth_catalog_shapes(void);
const char *synth_catalog_colour_name(int i);
const char *synth_catalog_shape_name(int i);
void synth_catalog_colour_rgb(int i, uint8_t rgb[3]);

/* The vocabulary in use: indices into the catalogues. Class (c, k) - colour
 * c, shape k, both vocabulary-local - is number c * n_shapes + k. */
typedef struct {
    int n_colours, n_shapes;
    int colour[SYNTH_MAX_COLOURS];
    int shape[SYNTH_MAX_SHAPES];
} synth_vocab;

/* colours / shapes: comma-separated catalogue names, or NULL / "" for the
 * default eight. Unknown or repeated names are errors. */
ramc_status synth_vocab_make(const char *colours, const char *shapes, synth_vocab *out);
int synth_vocab_classes(const synth_vocab *v);
/* "colour shape" of class `cls` into buf (always NUL-terminated). */
void synth_class_name(const synth_vocab *v, int cls, char *buf, size_t size);
/* Class index of an exact "colour shape" name, or -1. */
int synth_class_find(const synth_vocab *v, const char *name);

/* The held-out classes: is_unseen[cls] = 1. With `list` (comma-separated
 * label names) those exactly; otherwise round(fraction * classes), chosen by
 * `seed` along the diagonals of a randomly permuted colour x shape grid (a
 * Latin-square holdout), which spreads them evenly over colours and shapes.
 * Either way every colour and every shape keeps at least one seen class, so
 * every word of an unseen label occurs in seen labels; a choice that breaks
 * this, or leaves no unseen class, is an error. */
ramc_status synth_choose_unseen(const synth_vocab *v, uint64_t seed, double fraction,
                                const char *list, uint8_t *is_unseen);

/* One object: a class, where it is and what exact colour it got. */
typedef struct {
    int cls;           /* class index (colour * n_shapes + shape) */
    int colour, shape; /* vocabulary-local */
    int kind;          /* catalogue shape index, what the renderer draws */
    float cx, cy;      /* centre, pixels (pixel i spans [i, i+1)) */
    float radius;      /* of the bounding circle, pixels */
    float angle;       /* rotation, radians (counter-clockwise) */
    uint8_t rgb[3];    /* the fill colour after jitter */
} synth_object;

/* World v2's distractors: things that are not labels and are never
 * captioned, drawn over the background and under every object. A stroke is
 * a thick line segment in a vocabulary colour (a colour without a labelled
 * shape); a grey shape is a vocabulary shape in a neutral grey (a shape
 * without a vocabulary colour). Either makes "bag of words" matching fail:
 * a red stroke beside a grey star is no "red star". */
enum { SYNTH_DISTRACTOR_STROKE = 0, SYNTH_DISTRACTOR_GREY_SHAPE = 1 };
typedef struct {
    int type;
    synth_object o;        /* grey shape: kind, cx, cy, radius, angle, rgb (cls = -1) */
    float x0, y0, x1, y1;  /* stroke: end points, pixels */
    float width;           /* stroke: width, pixels */
} synth_distractor;

typedef struct {
    int world;                     /* 1 or 2 (0 reads as 1) */
    int n;                         /* objects, drawn in this order */
    synth_object obj[SYNTH_MAX_OBJECTS];
    int texture;                   /* background kind, see synth_texture_name */
    int n_distractors;             /* world v2 only */
    synth_distractor dis[SYNTH_MAX_DISTRACTORS];
} synth_scene;

const char *synth_texture_name(int texture);

/* Which classes a split may draw. The first object of image i is class
 * first[(i) % n_first] (a per-split shuffled list, so every class of it
 * occurs once the split has n_first images); the others are drawn uniformly
 * from `pool`, all distinct within an image. */
typedef struct {
    const int *first;
    int n_first;
    const int *pool;
    int n_pool;
    int min_objects, max_objects;
    int size;
    int world; /* 2: world v2's sizes, occlusion, distractors; otherwise v1 */
} synth_scene_spec;

/* Draws the scene of one image (objects, their placement, background kind)
 * from `r`. World v1: objects keep their bounding circles nearly apart
 * (centres at least 0.9 x the sum of radii), so each stays recognisable.
 * World v2: sizes from 1 to ~12 ViT patches (log-uniform, so many are small),
 * partial occlusion (each object keeps at least SYNTH_V2_MIN_VISIBLE of its
 * pixels uncovered by later objects), 0-4 distractors, six textures. */
#define SYNTH_V2_MIN_VISIBLE 0.5f
void synth_sample_scene(const synth_vocab *v, const synth_scene_spec *spec, long index,
                        ramc_rng *r, synth_scene *out);

/* Renders `scene` into img (size x size RGB, caller-allocated rgb), drawing
 * the background's parameters and pixel noise from `r`. Shapes are 4x4
 * supersampled. */
void synth_render(const synth_scene *scene, int size, ramc_rng *r, uint8_t *rgb);

/* Fraction (0..1) of pixel (px, py) that object `o` covers, from the same
 * 4x4 samples the renderer uses. Tests use it to find an object's pixels. */
float synth_object_coverage(const synth_object *o, int px, int py);

/* Fraction of object k's area (pixel centres) that no later object of the
 * scene covers: what the v2 placement keeps at SYNTH_V2_MIN_VISIBLE or more. */
float synth_visible_fraction(const synth_scene *scene, int k, int size);

/* A caption that names every object once, in a varied template
 * ("a red star and a blue ring", "two objects: a green circle, a white cross"). */
void synth_caption(const synth_vocab *v, const synth_scene *scene, ramc_rng *r, char *buf,
                   size_t size);

/* The per-image generator seed: a hash of (seed, split, index). */
uint64_t synth_image_seed(uint64_t seed, int split, long index);

/* ---------------------------------------------------------------- datasets */

enum { SYNTH_SPLIT_PRETRAIN = 0, SYNTH_SPLIT_TRAIN, SYNTH_SPLIT_TEST_ZSL, SYNTH_SPLIT_TEST_GZSL,
       SYNTH_N_SPLITS };
const char *synth_split_name(int split); /* "pretrain", "train", "test_zsl", "test_gzsl" */

typedef struct {
    int world;        /* 1 (the original world) or 2 (the default); see docs/synth.md */
    uint64_t seed;
    int size;
    long n_pretrain, n_train, n_test; /* n_test images each for test_zsl and test_gzsl */
    int min_objects, max_objects;
    double unseen_fraction;           /* used when unseen_list is NULL */
    const char *unseen_list;          /* comma-separated labels, or NULL */
    const char *colours, *shapes;     /* vocabulary (NULL: default) */
    int strict_pretrain;  /* pretraining images only from seen classes (v2 default: on) */
    int pretrain_max_objects; /* objects per pre-training image, at most (0: max_objects;
                                 v2 default 4: captions of salient objects, as web alt text) */
    int force;            /* write into a non-empty folder */
    int write_objects;    /* also write objects.jsonl: every object's label and geometry */
    int threads;          /* 0: one per online CPU (at most 16) */
    /* Called from the calling thread now and then, and once at the end of
     * each split with done == total. NULL: silent. */
    void (*progress)(const char *split, long done, long total, void *user);
    void *user;
} synth_options;

/* The defaults of world 2. */
synth_options synth_default_options(void);
/* The defaults of a world (1 or 2): v1 holds 1-4 objects and pre-trains on
 * all labels, as before; v2 1-8 objects, strict pre-training, pre-training
 * images of at most 4 objects. */
synth_options synth_world_options(int world);

/* Checks the options' bounds; messages name the option ("--size 20: ..."). */
ramc_status synth_check_options(const synth_options *o);

/* Everything that is decided once per data set: the vocabulary, the
 * held-out classes and, per split, which classes its images draw. */
typedef struct {
    synth_options opt; /* a copy; its strings stay the caller's */
    synth_vocab vocab;
    uint8_t is_unseen[SYNTH_MAX_CLASSES];
    int n_seen, n_unseen;
    long count[SYNTH_N_SPLITS];
    int first[SYNTH_N_SPLITS][SYNTH_MAX_CLASSES], n_first[SYNTH_N_SPLITS];
    int pool[SYNTH_N_SPLITS][SYNTH_MAX_CLASSES], n_pool[SYNTH_N_SPLITS];
} synth_plan;

/* Checks the options, builds the vocabulary and chooses the unseen classes.
 * Writes nothing. */
ramc_status synth_plan_make(const synth_options *o, synth_plan *p);

/* Image `index` of `split` exactly as synth_generate writes it: its scene,
 * its pixels (size x size x 3; NULL to skip rendering) and its caption. */
void synth_example(const synth_plan *p, int split, long index, synth_scene *scene, uint8_t *rgb,
                   char *caption, size_t caption_size);

/* Writes the whole data set into `dir` (created if missing; refused if it
 * holds anything, unless o->force): images/<split>/NNNNNN.png, pretrain.tsv,
 * classes_all.txt, seen.txt, unseen.txt, train.json, test_zsl.json,
 * test_gzsl.json, manifest.json (and objects.jsonl when o->write_objects).
 * Each file is written atomically. */
ramc_status synth_generate(const char *dir, const synth_options *o);

#endif
