#!/usr/bin/env bash
# ramc tokenize end to end: the golden cases through stdin/stdout, and the
# exit codes of its error paths. Usage: cli_tokenize.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
BIN=$1
GOLDEN=$2
SRC=$3
CASES=$GOLDEN/tokenizer/cases.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # check NAME CONDITION-RESULT(0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

# Line-based input cannot carry cases with line breaks; python3 (part of a
# standard Debian install) turns the JSON into input and expected lines.
python3 - "$CASES" "$TMP" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2] + "/in.txt", "w", encoding="utf-8", newline="") as fi, \
     open(sys.argv[2] + "/want.txt", "w", encoding="utf-8", newline="") as fw:
    for text, ids in cases.items():
        if any(c in text for c in "\n\r\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
            continue
        fi.write(text + "\n")
        fw.write("[" + ",".join(str(i) for i in ids) + "]\n")
PY
check "prepare cases" $?
"$BIN" tokenize <"$TMP/in.txt" >"$TMP/got.txt"
check "tokenize exit status" $?
cmp -s "$TMP/got.txt" "$TMP/want.txt"
r=$?
check "ids of $(wc -l <"$TMP/in.txt") cases equal cases.json" $r
[ $r -ne 0 ] && diff "$TMP/got.txt" "$TMP/want.txt" | head -20

# CRLF line endings and an explicit vocabulary
printf 'A photo of a dog.\r\n' | "$BIN" tokenize --vocab "$SRC/data/bpe_simple_vocab_16e6.txt.gz" --context 9 >"$TMP/crlf.txt"
check "CRLF exit" $?
[ "$(cat "$TMP/crlf.txt")" = "[49406,320,1125,539,320,1929,269,49407,0]" ]
check "CRLF line stripped" $?

# a line longer than any fixed buffer, truncated with EOT last
python3 -c "print('dog ' * 100000)" | "$BIN" tokenize --context 5 >"$TMP/long.txt"
check "long line exit" $?
[ "$(cat "$TMP/long.txt")" = "[49406,1929,1929,1929,49407]" ]
check "long line truncated" $?

"$BIN" tokenize --help >/dev/null
check "--help exits 0" $?

printf 'fine\nbad \xff here\n' | "$BIN" tokenize >/dev/null 2>"$TMP/err.txt"
[ $? -eq 1 ] && grep -q "^ramc tokenize: line 2:" "$TMP/err.txt"
check "invalid UTF-8: exit 1 naming line 2 ($(cat "$TMP/err.txt"))" $?

"$BIN" tokenize --vocab /nonexistent/vocab.gz </dev/null 2>"$TMP/err.txt"
[ $? -eq 1 ] && grep -q "^ramc tokenize: /nonexistent/vocab.gz" "$TMP/err.txt"
check "missing vocab: exit 1 naming the file" $?

head -c 5000 /dev/urandom >"$TMP/garbage.gz" 2>/dev/null || printf '\x1f\x8b\x08garbage' >"$TMP/garbage.gz"
"$BIN" tokenize --vocab "$TMP/garbage.gz" </dev/null 2>/dev/null
[ $? -eq 1 ]
check "garbage vocab: exit 1" $?

"$BIN" tokenize --bogus </dev/null 2>/dev/null
[ $? -eq 2 ]
check "unknown option: exit 2" $?
"$BIN" tokenize --context 0 </dev/null 2>/dev/null
[ $? -eq 2 ]
check "--context 0: exit 2" $?
"$BIN" tokenize --hf-vocab x.json </dev/null 2>/dev/null
[ $? -eq 2 ]
check "--hf-vocab without --hf-merges: exit 2" $?

echo "cli_tokenize: $pass passed, $fail failed"
[ $fail -eq 0 ]
