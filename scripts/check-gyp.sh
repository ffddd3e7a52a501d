#!/usr/bin/env bash
# Builds the addon a second way, with node-gyp from binding.gyp, in a scratch
# copy (so the cmake-js build stays in place), and runs one op through it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$root/binding.gyp" "$root/native" "$root/scripts" "$root/package.json" "$work/"
ln -s "$root/node_modules" "$work/node_modules"
(cd "$work" && npm run --silent build:gyp >/dev/null)
node -e '
const n = require(process.argv[1]);
const t = n.call(n.op("aten::ones", ""), [2, 2]);
const s = n.call(n.op("aten::sum", ""), t);
if (n.item(s) !== 4) throw new Error("node-gyp build computes wrong results");
console.log("node-gyp build: ok");
' "$work/build/Release/vgg_torch.node"
