#!/usr/bin/env bash
# The library reads no environment variable and runs nothing before main:
# only the command-line front end (src/cli/) may call getenv, and no file
# under src/ may declare a load-time constructor (ramc.h, docs/performance.md).
#   cli_no_getenv.sh RAMC SHARED SRC
set -u
SRC=$3
status=0
# comments may name the function; a call has "getenv" followed by "("
calls() { grep -rnE '\b(secure_)?getenv[[:space:]]*\(' "$SRC/src" --include='*.c' --include='*.h'; }
bad=$(calls | grep -v "^$SRC/src/cli/")
if [ -n "$bad" ]; then
  echo "FAIL: getenv outside src/cli/:"; echo "$bad"; status=1
fi
ctor=$(grep -rnE '__attribute__[[:space:]]*\(\([^)]*constructor' "$SRC/src" --include='*.c' --include='*.h')
if [ -n "$ctor" ]; then
  echo "FAIL: load-time constructor in src/:"; echo "$ctor"; status=1
fi
# the pattern must see the CLI's own reads, or it proves nothing
if ! calls | grep -q "^$SRC/src/cli/env.c:"; then
  echo "FAIL: the getenv pattern does not find src/cli/env.c's reads"; status=1
fi
[ $status = 0 ] && echo "cli_no_getenv: ok"
exit $status
