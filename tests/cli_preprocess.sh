#!/usr/bin/env bash
# `ramc preprocess` end to end: outputs equal Pillow's bytes (fixtures from
# scripts/make_image_fixtures.py), the PNG it writes decodes back to the same
# pixels, exit codes, and no output (or temporary) file after a failure.
# Needs only bash, gzip and coreutils.
# usage: cli_preprocess.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1
SRC=$3
FX=$SRC/tests/fixtures/images
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cli_preprocess.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
source "$SRC/tests/lib_cli.sh"

same_as_fixture() { # same_as_fixture FILE FIXTURE.gz
    gzip -dc "$2" | cmp -s - "$1"
}
run() { run_ramc preprocess "$@"; } # run EXPECTED_RC ARGS...
no_leftovers() { # no file other than the listed survivors in $WORK/o
    local extra
    extra=$(cd "$WORK/o" && ls -A | grep -v -x -F -f <(printf '%s\n' "$@" keep) || true)
    [ -z "$extra" ] || { echo "left behind: $extra" >&2; return 1; }
}

mkdir -p "$WORK/o"

# --- help
run 0 --help && check "--help prints usage" grep -q "usage: ramc preprocess" "$WORK/out"

# --- the official test transform on a 480x320 4:2:0 JPEG
if run 0 "$FX/rocket_420.jpg" --size 224 --out "$WORK/o/a.png" --rgb "$WORK/o/a.rgb" \
    --tensor "$WORK/o/a.safetensors"; then
    check "224 bilinear pixels equal Pillow's" same_as_fixture "$WORK/o/a.rgb" "$FX/rocket_420_jpg_224x224_bilinear.rgb.gz"
    # The data block is the file's tail: 3*224*224 float32.
    check "tensor equals torchvision's float32 values" \
        cmp -s <(tail -c 602112 "$WORK/o/a.safetensors") <(gzip -dc "$FX/rocket_420_jpg_224x224_bilinear_ram.f32.gz")
    check "tensor header names image [1,3,224,224] F32" \
        grep -a -q '"image":{"dtype":"F32","shape":\[1,3,224,224\]' <(head -c 400 "$WORK/o/a.safetensors" | tr -d ' ')
    # The PNG decodes (with ramc, at its own size) to the same pixels.
    run 0 "$WORK/o/a.png" --rgb "$WORK/o/b.rgb" &&
        check "written PNG round-trips" cmp -s "$WORK/o/a.rgb" "$WORK/o/b.rgb"
fi

# --- bicubic, non-square, CLIP statistics
if run 0 "$FX/cat_444.jpg" --size 97x61 --filter bicubic --clip-stats --rgb "$WORK/o/c.rgb" \
    --tensor "$WORK/o/c.safetensors"; then
    check "97x61 bicubic equals Pillow's" same_as_fixture "$WORK/o/c.rgb" "$FX/cat_444_jpg_97x61_bicubic.rgb.gz"
    check "--clip-stats tensor equals torchvision's" \
        cmp -s <(tail -c $((3 * 97 * 61 * 4)) "$WORK/o/c.safetensors") <(gzip -dc "$FX/cat_444_jpg_97x61_bicubic_clip.f32.gz")
fi
# Explicit --mean/--std equal to CLIP's give the same bytes.
if run 0 "$FX/cat_444.jpg" --size 97x61 --filter bicubic --mean 0.48145466,0.4578275,0.40821073 \
    --std 0.26862954,0.26130258,0.27577711 --tensor "$WORK/o/d.safetensors"; then
    check "--mean/--std equal --clip-stats" \
        cmp -s <(tail -c $((3 * 97 * 61 * 4)) "$WORK/o/d.safetensors") <(tail -c $((3 * 97 * 61 * 4)) "$WORK/o/c.safetensors")
fi
# PNG inputs: palette and 16-bit, decoded as Pillow's convert("RGB").
run 0 "$FX/cat_palette.png" --rgb "$WORK/o/e.rgb" &&
    check "palette PNG decodes as Pillow" same_as_fixture "$WORK/o/e.rgb" "$FX/cat_palette_png.rgb.gz"
run 0 "$FX/camera_grey16.png" --rgb "$WORK/o/f.rgb" &&
    check "16-bit grey PNG decodes as Pillow" same_as_fixture "$WORK/o/f.rgb" "$FX/camera_grey16_png.rgb.gz"
rm -f "$WORK/o"/*

# --- failures: exit 1, a message naming the file, nothing written
head -c 5000 "$FX/cat_444.jpg" >"$WORK/trunc.jpg"
if run 1 "$WORK/trunc.jpg" --size 224 --out "$WORK/o/x.png" --tensor "$WORK/o/x.safetensors" --rgb "$WORK/o/x.rgb"; then
    check "error message format" grep -q "^ramc preprocess: .*trunc.jpg" "$WORK/err"
    check "no output after a truncated JPEG" no_leftovers
fi
printf 'definitely not an image' >"$WORK/garbage.png"
run 1 "$WORK/garbage.png" --out "$WORK/o/x.png" && check "no output after garbage" no_leftovers
run 1 "$WORK/missing.jpg" --out "$WORK/o/x.png" && check "no output for a missing input" no_leftovers
# A failure must not clobber an existing output either.
echo old >"$WORK/o/keep"
run 1 "$WORK/trunc.jpg" --out "$WORK/o/keep" &&
    check "existing output untouched" grep -q -x old "$WORK/o/keep"
# Unwritable destination: exit 1, no temporary left in the folder that exists.
run 1 "$FX/cat_444.jpg" --out "$WORK/o/nodir/x.png" && check "no temporaries" no_leftovers
chmod a-w "$WORK/o"
if [ "$(id -u)" != 0 ]; then
    run 1 "$FX/cat_444.jpg" --out "$WORK/o/x.png" && check "read-only folder" no_leftovers
fi
chmod u+w "$WORK/o"

# --- bad usage: exit 2
run 2
run 2 "$FX/cat_444.jpg"                                    # no output
run 2 "$FX/cat_444.jpg" --size 0 --out "$WORK/o/x.png"
run 2 "$FX/cat_444.jpg" --size 12x --out "$WORK/o/x.png"
run 2 "$FX/cat_444.jpg" --size abc --out "$WORK/o/x.png"
run 2 "$FX/cat_444.jpg" --filter lanczos --out "$WORK/o/x.png"
run 2 "$FX/cat_444.jpg" --frobnicate --out "$WORK/o/x.png"
run 2 "$FX/cat_444.jpg" --out
run 2 "$FX/cat_444.jpg" --mean 0.5,0.5 --std 1,1,1 --tensor "$WORK/o/x.safetensors"
run 2 "$FX/cat_444.jpg" --mean 0.5,0.5,0.5 --tensor "$WORK/o/x.safetensors"
run 2 "$FX/cat_444.jpg" --clip-stats --mean 0,0,0 --std 1,1,1 --tensor "$WORK/o/x.safetensors"
run 2 "$FX/cat_444.jpg" "$FX/cat_444.jpg" --out "$WORK/o/x.png"
check "nothing written by usage errors" no_leftovers keep

summary cli_preprocess
