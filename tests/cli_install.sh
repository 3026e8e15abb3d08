#!/usr/bin/env bash
# cmake --install into a fresh prefix gives a working tree: the tool, libramc.so
# with its SONAME, the header, pkg-config, the data and the man page. A program
# built against the installed library through pkg-config (examples/tag_image.c)
# runs, and both it and the tool still find their data after the tree is moved.
set -u
ramc=$1 golden=$2 src=$(cd "$3" && pwd)
build=$(cd "$(dirname "$ramc")" && pwd)
RAMC=$ramc WORK=
# shellcheck source=tests/lib_cli.sh
. "$src/tests/lib_cli.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" > "$tmp/install.txt" 2>&1
check "cmake --install exits 0" [ $? -eq 0 ] || cat "$tmp/install.txt" >&2
lib=$(dirname "$(find "$prefix" -name 'libramc.so.*.*' | head -n 1)")
check "bin/ramc installed" [ -x "$prefix/bin/ramc" ]
check "libramc.so and libramc.a installed" [ -e "$lib/libramc.so" -a -e "$lib/libramc.a" ]
check "libramc.so has SONAME libramc.so.0" bash -c "objdump -p '$lib/libramc.so' | grep -q 'SONAME *libramc.so.0'"
check "libramc.so exports the API only" bash -c "! nm -D --defined-only '$lib/libramc.so' | awk '{print \$3}' | grep -v '^ramc_' | grep -q ."
check "ramc.h installed" [ -f "$prefix/include/ramc.h" ]
check "ramc.pc installed" [ -f "$lib/pkgconfig/ramc.pc" ]
check "default model installed" [ -f "$prefix/share/ramc/default/clip.safetensors" ]
check "vocabulary installed" [ -f "$prefix/share/ramc/bpe_simple_vocab_16e6.txt.gz" ]
check "man page installed" [ -f "$prefix/share/man/man1/ramc.1" ]
check "installed --version is the build's" [ "$("$prefix/bin/ramc" --version)" = "$("$ramc" --version)" ]

# a program built against the installed library through pkg-config
export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs ramc 2>"$tmp/pc.txt")
check "pkg-config --cflags --libs ramc" [ -n "$flags" ] || cat "$tmp/pc.txt" >&2
cc -std=c11 -Wall -Werror "$src/examples/tag_image.c" $flags -o "$tmp/tag_image" 2> "$tmp/cc.txt"
check "examples/tag_image.c builds against the installed library" [ -x "$tmp/tag_image" ] || cat "$tmp/cc.txt" >&2
check "the example links libramc.so.0" bash -c "readelf -d '$tmp/tag_image' | grep -q 'NEEDED.*libramc.so.0'"

# move the whole tree: data is found from where the code lives, not from the source tree
mv "$prefix" "$tmp/moved"; prefix=$tmp/moved; lib=${lib/$tmp\/prefix/$tmp\/moved}
sample=$(ls "$prefix"/share/ramc/samples/*.png "$prefix"/share/ramc/samples/*.jpg 2>/dev/null | head -n 1)
env -u RAMC_DATA_DIR "${foreign_env[@]}" LD_LIBRARY_PATH="$lib" "$tmp/tag_image" "$sample" "red star,blue circle,green heart" > "$tmp/ex.txt" 2>&1
check "the example runs on the moved tree" [ $? -eq 0 ] || cat "$tmp/ex.txt" >&2
check "the example prints 3 scored labels" [ "$(grep -cE ' 0\.[0-9]{4}$' "$tmp/ex.txt")" -eq 3 ]
env -u RAMC_DATA_DIR "$prefix/bin/ramc" predict --labels "red star,blue circle" "$sample" > "$tmp/p.txt" 2>&1
check "the moved tool finds its default model" [ $? -eq 0 ] || cat "$tmp/p.txt" >&2
check "the moved tool uses the installed model" bash -c "! grep -q '$src/data' '$tmp/p.txt'"

summary cli_install
