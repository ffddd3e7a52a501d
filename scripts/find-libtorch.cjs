#!/usr/bin/env node
// The one place that decides which libtorch vgg-torch builds against.
// CMakeLists.txt asks it for the Torch CMake folder; binding.gyp asks it for
// include folders, libraries and flags. Order:
//   1. LIBTORCH            an unzipped official libtorch
//   2. Torch_DIR, CMAKE_PREFIX_PATH
//   3. a Python torch       torch.utils.cmake_prefix_path (pip, conda, CUDA builds)
//   4. the system's         Debian/Ubuntu libtorch-dev
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const CONFIG = 'TorchConfig.cmake';

function configIn(dir) {
  if (!dir) return null;
  for (const sub of ['', 'Torch', 'share/cmake/Torch', 'lib/cmake/Torch']) {
    const d = path.resolve(dir, sub);
    if (fs.existsSync(path.join(d, CONFIG))) return d;
  }
  return null;
}

function fromPython() {
  const pythons = [process.env.PYTHON, 'python3', '/usr/bin/python3', 'python'].filter(Boolean);
  for (const py of pythons) {
    try {
      const out = execFileSync(py, ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], {
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      }).toString().trim();
      const dir = configIn(out);
      if (dir) return { dir, via: `Python torch (${py})` };
    } catch {
      // no such interpreter, or no torch in it
    }
  }
  return null;
}

function fromSystem() {
  const roots = ['/usr/lib', '/usr/local/lib', '/usr/lib64'];
  for (const root of roots) {
    const direct = configIn(path.join(root, 'cmake'));
    if (direct) return { dir: direct, via: 'system libtorch' };
    if (!fs.existsSync(root)) continue;
    for (const entry of fs.readdirSync(root)) {
      if (!entry.includes('-linux-')) continue; // multiarch folders, e.g. x86_64-linux-gnu
      const dir = configIn(path.join(root, entry, 'cmake'));
      if (dir) return { dir, via: 'system libtorch' };
    }
  }
  return null;
}

function locate() {
  if (process.env.LIBTORCH) {
    const dir = configIn(process.env.LIBTORCH);
    if (!dir) throw new Error(`LIBTORCH=${process.env.LIBTORCH} holds no share/cmake/Torch/${CONFIG}`);
    return { dir, via: 'LIBTORCH' };
  }
  if (process.env.Torch_DIR) {
    const dir = configIn(process.env.Torch_DIR);
    if (!dir) throw new Error(`Torch_DIR=${process.env.Torch_DIR} holds no ${CONFIG}`);
    return { dir, via: 'Torch_DIR' };
  }
  for (const p of (process.env.CMAKE_PREFIX_PATH || '').split(path.delimiter)) {
    const dir = configIn(p);
    if (dir) return { dir, via: 'CMAKE_PREFIX_PATH' };
  }
  return fromPython() || fromSystem();
}

const HOW_TO =
  'vgg-torch needs libtorch and found none. Do one of:\n' +
  '  - Debian/Ubuntu: sudo apt-get install libtorch-dev   (or run scripts/setup.sh)\n' +
  '  - download libtorch from https://pytorch.org/get-started/locally/ (C++/LibTorch, cxx11 ABI), unzip it,\n' +
  '    and set LIBTORCH=/path/to/libtorch before npm install\n' +
  '  - pip install torch, so that python3 -c "import torch" works, then npm install again\n' +
  '  - or point Torch_DIR at the folder holding TorchConfig.cmake';

function firstWith(dirs, file) {
  return dirs.find((d) => fs.existsSync(path.join(d, file))) || null;
}

function describe(found) {
  const { dir } = found;
  const prefix = path.resolve(dir, '../../..'); // <prefix>/share/cmake/Torch or <prefix>/lib/<arch>/cmake/Torch
  const libDir = firstWith([path.join(prefix, 'lib'), path.resolve(dir, '../..')], 'libtorch.so');
  const includeDir = firstWith([path.join(prefix, 'include'), path.resolve(dir, '../../../../include')], 'ATen/ATen.h');
  if (!libDir || !includeDir) throw new Error(`incomplete libtorch at ${dir}: libtorch.so or ATen headers missing`);
  const config = fs.readFileSync(path.join(dir, CONFIG), 'utf8');
  const abi = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(config);
  const cuda = fs.existsSync(path.join(libDir, 'libtorch_cuda.so'));
  // c10/cuda headers include the CUDA runtime's.
  const cudaHome = process.env.CUDA_HOME || process.env.CUDA_PATH || '/usr/local/cuda';
  const cudaInclude = cuda && fs.existsSync(path.join(cudaHome, 'include')) ? [path.join(cudaHome, 'include')] : [];
  // torch.distributed's Gloo backend: the c10d headers of this libtorch and libgloo (Debian: libgloo-dev).
  const glooLib = ['/usr/lib', '/usr/local/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', libDir]
    .find((d) => fs.existsSync(path.join(d, 'libgloo.so')));
  const gloo = Boolean(glooLib) && ['/usr/include', '/usr/local/include', includeDir].some((d) => fs.existsSync(path.join(d, 'gloo/algorithm.h'))) &&
    fs.existsSync(path.join(includeDir, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp'));
  return {
    via: found.via,
    gloo,
    cmakeDir: dir,
    includeDirs: [includeDir, path.join(includeDir, 'torch/csrc/api/include'), ...cudaInclude],
    libDir,
    cxxFlags: abi ? [`-D_GLIBCXX_USE_CXX11_ABI=${abi[1]}`] : [],
    cuda,
  };
}

function main() {
  let found;
  try {
    found = locate();
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
  if (!found) {
    process.stderr.write(`${HOW_TO}\n`);
    process.exit(1);
  }
  const info = describe(found);
  const what = process.argv[2] || '--json';
  const q = (s) => (/\s/.test(s) ? JSON.stringify(s) : s);
  switch (what) {
    case '--cmake-dir': process.stdout.write(info.cmakeDir); break;
    case '--include-dirs': process.stdout.write(info.includeDirs.map(q).join(' ')); break;
    case '--cflags': process.stdout.write([...info.cxxFlags, ...(info.cuda ? ['-DVGG_TORCH_WITH_CUDA'] : []), ...(info.gloo ? ['-DUSE_C10D_GLOO', '-DVGG_TORCH_WITH_GLOO'] : [])].join(' ')); break;
    case '--libs': {
      const cuda = info.cuda ? ['-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed'] : [];
      process.stdout.write([`-L${q(info.libDir)}`, `-Wl,-rpath,${q(info.libDir)}`, ...cuda, '-ltorch', '-ltorch_cpu', '-lc10', ...(info.gloo ? ['-lgloo'] : [])].join(' '));
      break;
    }
    default: process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  }
}

if (require.main === module) main();
module.exports = { locate, describe, HOW_TO };
