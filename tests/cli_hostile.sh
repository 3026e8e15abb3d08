#!/usr/bin/env bash
# The hostile-input corpus (tests/hostile/, written by
# scripts/make_hostile_corpus.py, listed in tests/hostile/MANIFEST.tsv) run
# through the command-line tool. Every case must:
#   * exit with the manifest's status (1 or 2; a signal, 128+N, always fails),
#   * name the file (its base name) on stderr, with the manifest's substring,
#   * leave no output file behind (no OUT.png, no temporary files).
# Entries marked known-bug are run too and reported as XFAIL (not counted as
# passed) until the CLI is fixed; one that starts passing is reported XPASS.
# See docs/limits.md for the bounds and the list of cases.
# usage: cli_hostile.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1 GOLDEN=$2 SRC=$3
abs() { if [ -d "$1" ]; then (cd "$1" && pwd); else echo "$1"; fi; }
GOLDEN=$(abs "$GOLDEN") SRC=$(abs "$SRC")
case "$RAMC" in /*) ;; */*) RAMC=$(abs "$(dirname "$RAMC")")/$(basename "$RAMC") ;; esac
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
H=$SRC/tests/hostile
G=$GOLDEN/tiny-s0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0 skipped=0 xfail=0 xpass=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

CLIP=$H/weights/clip_valid.safetensors
ADAPTER=$H/adapter/adapter_valid.safetensors
IMG=$H/image/valid_8x8.png
HEADS=(--vision-heads 2 --text-heads 2)

# --- the valid base files work, so every failure below comes from the damage
"$RAMC" predict --clip "$CLIP" "${HEADS[@]}" --labels a,b "$IMG" >"$TMP/out" 2>"$TMP/err" \
  && grep -q '"label":"a"' "$TMP/out" && passed=$((passed + 1)) \
  || fail "base: valid CLIP does not predict: $(cat "$TMP/err")"
"$RAMC" predict --clip "$CLIP" --adapter "$ADAPTER" "${HEADS[@]}" --labels-file "$H/labels/ok.txt" "$IMG" \
  >"$TMP/out" 2>"$TMP/err" && grep -q '"label":"dog"' "$TMP/out" && passed=$((passed + 1)) \
  || fail "base: valid CLIP + adapter does not predict: $(cat "$TMP/err")"
mkdir -p "$TMP/pp"
"$RAMC" preprocess "$IMG" --size 16 --out "$TMP/pp/out.png" 2>"$TMP/err" && [ -f "$TMP/pp/out.png" ] \
  && passed=$((passed + 1)) || fail "base: valid image does not preprocess: $(cat "$TMP/err")"

# Whether training/evaluation commands exist yet.
have_eval=0; "$RAMC" eval --help >/dev/null 2>&1 && have_eval=1
have_train=0; "$RAMC" train --help >/dev/null 2>&1 && have_train=1

# check NAME EXPECTED_RC RC ERRFILE BASENAME SUBSTRING OUTDIR -> 0 if all hold; prints why not
check() {
  local rc=$3 want=$2 err=$4 base=$5 sub=$6 outdir=$7 why=""
  if [ "$rc" -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif [ "$rc" -ne "$want" ]; then why="exit $rc, want $want"
  elif ! grep -qF -- "$base" "$err"; then why="stderr lacks the file name '$base'"
  elif [ -n "$sub" ] && ! grep -qF -- "$sub" "$err"; then why="stderr lacks '$sub'"
  elif grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$err"; then why="sanitizer report"
  elif [ -n "$outdir" ] && [ -n "$(ls -A "$outdir")" ]; then why="left files: $(ls -A "$outdir" | tr '\n' ' ')"
  fi
  [ -z "$why" ] && return 0
  echo "$why; stderr: $(head -c 400 "$err" | tr '\n' '|')"
  return 1
}

# record NAME STATUS WHY: counts a case's result
record() {
  local name=$1 status=$2 why=$3
  if [ "$status" = known-bug ]; then
    if [ -n "$why" ]; then echo "XFAIL: $name: $why"; xfail=$((xfail + 1))
    else echo "XPASS: $name (marked known-bug in MANIFEST.tsv, now passes)"; xpass=$((xpass + 1)); fi
  elif [ -n "$why" ]; then fail "$name: $why"
  else passed=$((passed + 1)); fi
}

while IFS=$'\t' read -r path kind want sub status desc; do
  case "$path" in '#'* | '') continue ;; esac
  [ "$sub" = - ] && sub=""
  f=$H/$path
  base=$(basename "$path")
  name="$path [$kind] ($desc)"
  [ -f "$f" ] || { fail "$name: missing corpus file"; continue; }
  out=$TMP/out; rm -rf "$out"; mkdir -p "$out"
  err=$TMP/err
  why=""
  case "$kind" in
    clip | clip-vocab)
      "$RAMC" predict --clip "$f" "${HEADS[@]}" --labels a,b "$IMG" >"$out/stdout" 2>"$err"
      rc=$?
      [ -s "$out/stdout" ] && why="printed results for a broken model" || rm -f "$out/stdout"
      [ -z "$why" ] && why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      ;;
    adapter)
      "$RAMC" predict --clip "$CLIP" --adapter "$f" "${HEADS[@]}" --labels a,b "$IMG" >"$out/stdout" 2>"$err"
      rc=$?
      [ -s "$out/stdout" ] && why="printed results for a broken adapter" || rm -f "$out/stdout"
      [ -z "$why" ] && why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      ;;
    torch)
      # a hostile PyTorch checkpoint (tests/fixtures/torch): ramc convert writes
      # no OUT.safetensors (nor a temporary), and --clip / --adapter print nothing
      "$RAMC" convert "$f" "$out/OUT.safetensors" >"$TMP/stdout" 2>"$err"
      rc=$?
      why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      [ -n "$why" ] && why="convert: $why"
      for use in clip adapter; do
        [ -n "$why" ] && break
        if [ $use = clip ]; then set -- --clip "$f"; else set -- --clip "$CLIP" --adapter "$f"; fi
        "$RAMC" predict "$@" "${HEADS[@]}" --labels a,b "$IMG" >"$out/stdout" 2>"$err"
        rc=$?
        if [ -s "$out/stdout" ]; then why="--$use: printed results for a hostile checkpoint"
        else
          rm -f "$out/stdout"
          why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
          [ -n "$why" ] && why="--$use: $why"
        fi
      done
      ;;
    image)
      # preprocess: nothing may appear in the output folder (no OUT.png, no temporaries)
      "$RAMC" preprocess "$f" --size 16 --out "$out/OUT.png" --tensor "$out/OUT.safetensors" \
        --rgb "$out/OUT.rgb" >/dev/null 2>"$err"
      why=$(check "$name" "$want" $? "$err" "$base" "$sub" "$out")
      # predict: the broken image is named, the good one after it still printed
      if [ -z "$why" ]; then
        "$RAMC" predict --clip "$CLIP" "${HEADS[@]}" --labels a,b "$f" "$IMG" >"$TMP/stdout" 2>"$err"
        rc=$?
        why=$(check "$name" 1 $rc "$err" "$base" "$sub" "")
        if [ -z "$why" ] && ! grep -qF "\"image\":\"$IMG\"" "$TMP/stdout"; then
          why="predict: the valid image after the broken one was not printed"
        elif [ -z "$why" ] && grep -qF "\"image\":\"$f\"" "$TMP/stdout"; then
          why="predict: printed results for the broken image"
        fi
        [ -n "$why" ] && why="predict: $why"
      else
        why="preprocess: $why"
      fi
      ;;
    labels)
      "$RAMC" predict --clip "$CLIP" "${HEADS[@]}" --labels-file "$f" "$IMG" >"$out/stdout" 2>"$err"
      rc=$?
      [ -s "$out/stdout" ] && why="printed results for a broken label list" || rm -f "$out/stdout"
      [ -z "$why" ] && why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      ;;
    vocab)
      echo "a photo of a cat" | "$RAMC" tokenize --vocab "$f" >"$out/stdout" 2>"$err"
      rc=$?
      [ -s "$out/stdout" ] && why="printed token ids with a broken vocabulary" || rm -f "$out/stdout"
      [ -z "$why" ] && why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      ;;
    golden-config | golden-classes)
      # tests/golden ships the set, so its absence is a broken checkout, not a skip
      if [ ! -d "$G" ]; then
        fail "$name: no golden set $G"; continue
      fi
      gd=$TMP/golden; rm -rf "$gd"; mkdir -p "$gd"
      for x in "$G"/*; do ln -s "$x" "$gd/$(basename "$x")"; done
      target=config.json; [ "$kind" = golden-classes ] && target=classes.json
      rm -f "$gd/$target"; cp "$f" "$gd/$target"
      "$RAMC" golden "$gd" >"$TMP/stdout" 2>"$err"
      rc=$?
      # the message names the file the tool read, i.e. config.json / classes.json
      why=$(check "$name" "$want" $rc "$err" "$target" "$sub" "")
      ;;
    dataset | dataset-classes)
      # ramc eval on the hostile dataset (with a valid class list) or on the
      # hostile class list (with a valid dataset); it must fail while reading
      # the file, naming it, and write nothing:
      #   ramc eval --clip CLIP --test FILE --classes dataset/classes_ok.txt
      #   ramc eval --clip CLIP --test dataset/ok.tsv --classes FILE
      if [ $have_eval -eq 0 ]; then
        echo "skip: $name (no 'ramc eval' yet)"; skipped=$((skipped + 1)); continue
      fi
      if [ "$kind" = dataset ]; then set -- --test "$f" --classes "$H/dataset/classes_ok.txt"
      else set -- --test "$H/dataset/ok.tsv" --classes "$f"; fi
      (cd "$out" && "$RAMC" eval --clip "$CLIP" "${HEADS[@]}" "$@" --report "$out/report.json" \
        >/dev/null 2>"$err")
      rc=$?
      why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      ;;
    config)
      # Expected invocation once `ramc train` exists:
      #   ramc train --config FILE
      # must fail while parsing FILE (message "FILE:LINE: key '...': ..."),
      # before reading any dataset or model, and write nothing.
      if [ $have_train -eq 0 ]; then
        echo "skip: $name (no 'ramc train' yet)"; skipped=$((skipped + 1)); continue
      fi
      (cd "$out" && "$RAMC" train --config "$f" >/dev/null 2>"$err")
      rc=$?
      why=$(check "$name" "$want" $rc "$err" "$base" "$sub" "$out")
      ;;
    *)
      fail "$name: unknown kind '$kind'"; continue ;;
  esac
  record "$name" "$status" "$why"
done <"$H/MANIFEST.tsv"

# --- more labels than RAMC_MAX_LABELS on the command line too (not a file)
many=$(seq -f 'l%g' 1 4097 | paste -sd, -)
"$RAMC" predict --clip "$CLIP" "${HEADS[@]}" --labels "$many" "$IMG" >"$TMP/stdout" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q 4096 "$TMP/err" && [ ! -s "$TMP/stdout" ]; then passed=$((passed + 1))
else fail "--labels with 4097 names: exit $rc: $(head -c 300 "$TMP/err")"; fi

# --- fixtures made at test time: special files, link loops, odd names, output folders
# expect NAME WANT_RC SUBSTRING CMD...: runs CMD under a timeout (a hang fails),
# checks the exit status and that stderr holds SUBSTRING
expect() {
  local name=$1 want=$2 sub=$3; shift 3
  timeout 60 "$@" >"$TMP/stdout" 2>"$TMP/err"
  local rc=$? why=""
  if [ $rc -eq 124 ]; then why="hung (killed after 60 s)"
  elif [ $rc -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif [ $rc -ne "$want" ]; then why="exit $rc, want $want"
  elif [ -n "$sub" ] && ! grep -qF -- "$sub" "$TMP/err"; then why="stderr lacks '$sub'"
  elif grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/err"; then why="sanitizer report"
  fi
  if [ -n "$why" ]; then fail "$name: $why; stderr: $(head -c 400 "$TMP/err" | tr '\n' '|')"
  else passed=$((passed + 1)); fi
}
S=$TMP/special; mkdir -p "$S"
# 2. a FIFO wherever a file is read: refused at once, named, never waited on
mkfifo "$S/pipe.png" "$S/pipe.safetensors" "$S/pipe.txt" "$S/pipe.cfg" "$S/pipe.jpg"
P=(predict --clip "$CLIP" "${HEADS[@]}" --labels a,b)
expect "FIFO as an image (predict)" 1 "pipe.png: is a FIFO" "$RAMC" "${P[@]}" "$S/pipe.png" "$IMG"
grep -qF "\"image\":\"$IMG\"" "$TMP/stdout" || fail "FIFO as an image: the valid image after it was not printed"
expect "FIFO as an image (preprocess)" 1 "pipe.jpg: is a FIFO" "$RAMC" preprocess "$S/pipe.jpg" --size 16 --out "$S/o.png"
expect "FIFO as --clip" 1 "pipe.safetensors: is a FIFO" "$RAMC" predict --clip "$S/pipe.safetensors" "${HEADS[@]}" --labels a "$IMG"
expect "FIFO as --adapter" 1 "pipe.safetensors: is a FIFO" "$RAMC" predict --clip "$CLIP" --adapter "$S/pipe.safetensors" "${HEADS[@]}" --labels a "$IMG"
expect "FIFO as --labels-file" 1 "pipe.txt: is a FIFO" "$RAMC" predict --clip "$CLIP" "${HEADS[@]}" --labels-file "$S/pipe.txt" "$IMG"
expect "FIFO as --vocab" 1 "pipe.txt: is a FIFO" bash -c '"$0" tokenize --vocab "$1" </dev/null' "$RAMC" "$S/pipe.txt"
expect "/dev/zero as an image" 1 "character device" "$RAMC" preprocess /dev/zero --size 16 --out "$S/o.png"
if [ $have_train -eq 1 ]; then
  expect "FIFO as --config" 1 "pipe.cfg: is a FIFO" "$RAMC" train --config "$S/pipe.cfg"
fi
if [ $have_eval -eq 1 ]; then
  printf '%s\tcat\n' "$S/pipe.jpg" >"$S/fifo.tsv"
  expect "FIFO listed in a dataset" 1 "pipe.jpg: is a FIFO" "$RAMC" eval --clip "$CLIP" "${HEADS[@]}" \
    --test "$S/fifo.tsv" --classes "$H/dataset/classes_ok.txt" --report "$S/r.json"
  expect "FIFO as a dataset" 1 "pipe.txt: is a FIFO" "$RAMC" eval --clip "$CLIP" "${HEADS[@]}" \
    --test "$S/pipe.txt" --classes "$H/dataset/classes_ok.txt" --report "$S/r.json"
  printf 'cat\ndog\n' >"$S/seen.txt"; printf 'dog\n' >"$S/unseen.txt"
  expect "seen/unseen overlap names both lists" 1 "unseen classes $S/unseen.txt" "$RAMC" eval --clip "$CLIP" \
    "${HEADS[@]}" --test-gzsl "$H/dataset/ok.tsv" --seen-classes "$S/seen.txt" --unseen-classes "$S/unseen.txt"
  grep -qF "seen classes $S/seen.txt" "$TMP/err" || fail "seen/unseen overlap: the seen list is not named"
fi
rm -f "$S"/pipe.*

# 3. folder walks: links to folders are not followed (one image, once); with
# --follow-links each real folder is still walked once; the depth is capped
W=$TMP/walk; mkdir -p "$W/d/sub"; cp "$IMG" "$W/d/a.png"; cp "$IMG" "$W/d/sub/b.png"
ln -s . "$W/d/self"; ln -s .. "$W/d/up"; ln -s ../d "$W/d/sub/back"
for follow in "" --follow-links; do
  expect "link loops ${follow:-(default)}" 0 "" "$RAMC" "${P[@]}" $follow "$W/d"
  n=$(grep -c '"image"' "$TMP/stdout")
  [ "$n" -eq 2 ] && passed=$((passed + 1)) || fail "link loops ${follow:-(default)}: $n results, want 2 (a.png, sub/b.png once each)"
done
deep=$W/deep; for i in $(seq 70); do deep=$deep/x; done; mkdir -p "$deep"; cp "$IMG" "$deep/z.png"
expect "folders nested 70 deep" 1 "deeper than 64" "$RAMC" "${P[@]}" "$W/deep"
mkdir -p "$W/empty"
expect "no image in a folder names it" 1 "no .jpg/.jpeg/.png images found in $W/empty" "$RAMC" "${P[@]}" "$W/empty"

# 7. a file name that is not UTF-8 still gives valid JSON (U+FFFD in its place)
U=$TMP/utf; mkdir -p "$U"; cp "$IMG" "$U/$(printf 'bad\xff\xfe.png')"
expect "non-UTF-8 file name" 0 "" "$RAMC" "${P[@]}" "$U"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys
lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
assert len(lines) == 1 and json.loads(lines[0])["image"].endswith("bad\ufffd\ufffd.png"), lines' <"$TMP/stdout" \
    && passed=$((passed + 1)) || fail "non-UTF-8 file name: the JSON output is not valid UTF-8 JSON"
else
  echo "skip: JSON check of a non-UTF-8 file name (no python3)"; skipped=$((skipped + 1))
fi

# 10. training output folders: a folder holding a run is refused without
# --overwrite, a folder another run holds (its lock) is refused, and a
# symlink planted at a temporary name is not followed
if [ $have_train -eq 1 ] && [ -f "$G/weights.safetensors" ]; then
  O=$TMP/run; mkdir -p "$O"
  printf '%s\tcat\n%s\tdog\n' "$IMG" "$IMG" >"$O.tsv"
  TR=(train --clip "$G/weights.safetensors" "${HEADS[@]}" --train "$O.tsv" --seen-classes "$H/dataset/classes_ok.txt"
      --set batch_size=2 --set max_epochs=1 --set warmup_epochs=0 --set eval_period=100 --set workers=1 --quiet)
  echo "not a real run" >"$O/checkpoint.safetensors"
  expect "a folder holding a run is refused" 1 "already holds a run" "$RAMC" "${TR[@]}" --output "$O"
  grep -q "not a real run" "$O/checkpoint.safetensors" || fail "a refused run touched the old checkpoint"
  rm -f "$O/checkpoint.safetensors"
  ( flock -x 9; sleep 30 ) 9>"$O/.ramc.lock" & lockpid=$!
  sleep 0.5
  expect "a folder locked by another run is refused" 1 "another ramc run" "$RAMC" "${TR[@]}" --output "$O"
  kill $lockpid 2>/dev/null; wait $lockpid 2>/dev/null
  for n in checkpoint adapter adapter-ema; do ln -s "$TMP/victim_$n" "$O/$n.safetensors.tmp"; done
  expect "a planted temporary symlink is not followed" 0 "" "$RAMC" "${TR[@]}" --output "$O"
  [ ! -e "$TMP/victim_checkpoint" ] && [ ! -e "$TMP/victim_adapter" ] && [ -s "$O/checkpoint.safetensors" ] \
    && passed=$((passed + 1)) || fail "the checkpoint was written through a planted symlink"
  expect "--overwrite replaces a run" 0 "" "$RAMC" "${TR[@]}" --output "$O" --overwrite
else
  echo "skip: training output folders (no ramc train or no golden set)"; skipped=$((skipped + 1))
fi

echo "cli_hostile: $passed passed, $failed failed, $xfail known bugs (XFAIL), $xpass XPASS, $skipped skipped"
[ $failed -eq 0 ] || exit 1
