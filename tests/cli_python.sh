#!/usr/bin/env bash
# The Python package (python/): its unittest suite against the built
# libramc.so and ramc tool, then `pip install ./python` offline into a fresh
# virtual environment and a prediction from outside the source tree.
set -u
ramc=$1 golden=$2 src=$(cd "$3" && pwd)
build=$(cd "$(dirname "$ramc")" && pwd)
py=/usr/bin/python3
RAMC=$ramc WORK=
# shellcheck source=tests/lib_cli.sh
. "$src/tests/lib_cli.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export RAMC_LIBRARY=$build/libramc.so RAMC_BINARY=$ramc RAMC_SOURCE_DIR=$src

env "${foreign_env[@]}" PYTHONPATH=$src/python "$py" -m unittest discover -s "$src/python/tests" > "$tmp/unit.txt" 2>&1
check "python unittest suite passes" [ $? -eq 0 ]
cat "$tmp/unit.txt"

"$py" -m venv --system-site-packages "$tmp/venv" > "$tmp/venv.txt" 2>&1
check "a virtual environment" [ -x "$tmp/venv/bin/pip" ] || cat "$tmp/venv.txt" >&2
"$tmp/venv/bin/pip" install --no-index --no-build-isolation --quiet "$src/python" > "$tmp/pip.txt" 2>&1
check "pip install ./python works offline" [ $? -eq 0 ] || cat "$tmp/pip.txt" >&2
cd "$tmp"
sample=$(ls "$src"/data/samples/*.png | head -n 1)
env "${foreign_env[@]}" "$tmp/venv/bin/python" -c "
import ramc, sys
m = ramc.Model()
r = m.predict(sys.argv[1], ['red star', 'blue circle', 'black ring'], top_k=1)[0]
assert len(r['labels']) == 1 and 0 < r['labels'][0][1] <= 1, r
assert ramc.__file__.startswith(sys.argv[2]), ramc.__file__
print('installed package:', ramc.__file__, r['labels'])
" "$sample" "$tmp/venv" > "$tmp/run.txt" 2>&1
check "the installed package predicts" [ $? -eq 0 ]
cat "$tmp/run.txt"

summary cli_python
