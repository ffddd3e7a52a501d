#!/usr/bin/env bash
# Checks that CMakeLists.txt and binding.gyp configure what
# scripts/find-libtorch.cjs decides (the same sources, definitions, include
# folders and libraries), then builds the addon a second way, with node-gyp
# from binding.gyp, in a scratch copy (so the cmake-js build stays in place),
# and runs one op through it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
node "$root/scripts/check-build-config.cjs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$root/binding.gyp" "$root/native" "$root/scripts" "$root/package.json" "$work/"
ln -s "$root/node_modules" "$work/node_modules"
(cd "$work" && npm run --silent build:gyp >/dev/null)
gloo=$(node -p "const f = require('$root/scripts/find-libtorch.cjs'); f.describe(f.locate()).gloo")
node -e '
const n = require(process.argv[1]);
const t = n.call(n.op("aten::ones", ""), [2, 2]);
const s = n.call(n.op("aten::sum", ""), t);
if (n.item(s) !== 4) throw new Error("node-gyp build computes wrong results");
// native/distributed.cc, a static library of its own in binding.gyp, has Gloo where find-libtorch found it.
if (String(n.distIsAvailable()) !== process.argv[2]) throw new Error(`node-gyp build: distributed ${n.distIsAvailable()}, find-libtorch says gloo ${process.argv[2]}`);
console.log(`node-gyp build: ok (distributed: ${n.distIsAvailable()})`);
' "$work/build/Release/vgg_torch.node" "$gloo"
