#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for vgg-torch: the system packages the
# project and its tests need (only those missing), then `npm ci`, which builds
# the native addon against the libtorch found by scripts/find-libtorch.cjs.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# libtorch-dev: libtorch (CPU) + headers + CMake config, with Debian's optimized BLAS.
# python3-torch/-torchvision: the test oracle (same libtorch_cpu.so), never used at run time.
# dataset-fashion-mnist: real data for the offline training examples and tests.
# libgloo-dev: the Gloo headers libtorch's c10d ProcessGroupGloo needs (distributed training).
# clang-format: `npm run lint` / `npm run format` for native/ (.clang-format).
PACKAGES=(libtorch-dev libopenblas0-pthread cmake g++ make python3-torch python3-torchvision dataset-fashion-mnist chromium libgloo-dev clang-format)
if [ -n "${LIBTORCH:-}" ] || [ -n "${Torch_DIR:-}" ]; then
  # A libtorch of the user's own: do not install Debian's.
  PACKAGES=("${PACKAGES[@]/libtorch-dev}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  [ -z "$p" ] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  # Debian 12's own nodejs is 18. The official Node.js 20 build is published on the
  # npm registry as node-linux-<arch>: install it into /usr/local, ahead in PATH.
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch="" ;; esac
  if [ -z "$arch" ]; then
    echo "setup: vgg-torch needs Node.js 20 or newer (found $(node --version)); install it from https://nodejs.org" >&2
    exit 1
  fi
  echo "setup: Node.js $(node --version) is too old; installing Node.js 20 (node-linux-$arch from the npm registry) into /usr/local"
  $SUDO npm install -g --no-audit --no-fund "node-linux-$arch@20"
  hash -r
  # Its headers, for building the addon (Debian's nodejs keeps them in libnode-dev).
  export npm_config_nodedir="$(npm root -g)/node-linux-$arch"
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$node_major" -lt 20 ]; then
    echo "setup: $(command -v node) is still $(node --version): put /usr/local/bin first in PATH" >&2
    exit 1
  fi
fi

# onnxruntime-node (a dev dependency, the tests' ONNX oracle) ships its CPU
# binaries in the package; its install step would otherwise download CUDA files.
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund
