#!/usr/bin/env bash
# Installs the Debian 12 packages ramc builds against, if any are missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
# libmicrohttpd-dev: ramc serve's HTTP; curl: its API tests; chromium and
# chromium-driver: the headless browser test of its page (tests/cli_serve_browser.sh);
# libxsmm-dev, libblis-dev: the optional GEMM library comparison (build/gemm_libs,
# bench/gemm_libs.c) and its smoke test; OpenBLAS stays the system BLAS (higher
# alternatives priority than BLIS's), and ramc links neither library
packages=(build-essential cmake pkg-config libopenblas-dev libdnnl-dev libcjson-dev libpng-dev
          libjpeg62-turbo-dev zlib1g-dev libutf8proc-dev libzip-dev
          python3 python3-numpy python3-matplotlib python3-venv python3-pip python3-setuptools binutils clang libclang-rt-14-dev
          libomp-dev openmpi-bin libopenmpi-dev libmicrohttpd-dev curl chromium chromium-driver
          libxsmm-dev libblis-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "ramc setup: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
