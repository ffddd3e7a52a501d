#!/usr/bin/env node
// The one place that decides how vgg-torch is built: which libtorch, its include
// folders, libraries and flags, whether CUDA, Gloo and NCCL are used, and which
// sources get which definitions. CMakeLists.txt reads it with --cmake,
// binding.gyp with --sources/--defines/--include-dirs/--cflags/--libs;
// scripts/check-build-config.cjs checks that both builds compile what it says.
// The libtorch, in order:
//   1. LIBTORCH            an unzipped official libtorch
//   2. Torch_DIR, CMAKE_PREFIX_PATH
//   3. a Python torch       torch.utils.cmake_prefix_path (pip, conda, CUDA builds)
//   4. the system's         Debian/Ubuntu libtorch-dev
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

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
      // torch.utils.cmake_prefix_path, without importing torch (seconds, and binding.gyp asks often)
      const code = 'import importlib.util, os; s = importlib.util.find_spec("torch"); ' + 'print(os.path.join(os.path.dirname(s.origin), "share", "cmake"))';
      const out = execFileSync(py, ['-c', code], {
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      })
        .toString()
        .trim();
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
  return dirs.find((d) => d && fs.existsSync(path.join(d, file))) || null;
}

// The compiler searches these anyway; never pass them (-isystem /usr/include breaks #include_next).
const STANDARD_INCLUDE = new Set(['/usr/include', '/usr/local/include']);
const notStandard = (d) => d && !STANDARD_INCLUDE.has(d);
const unique = (xs) => [...new Set(xs)];

// Prefixes searched for Gloo and NCCL, in CMake's order: CMAKE_PREFIX_PATH, then the system's.
function prefixes() {
  return [...(process.env.CMAKE_PREFIX_PATH || '').split(path.delimiter).filter(Boolean), '/usr/local', '/usr'];
}
function libDirsOf(prefix) {
  const lib = path.join(prefix, 'lib');
  const multiarch = fs.existsSync(lib)
    ? fs
        .readdirSync(lib)
        .filter((e) => e.includes('-linux-'))
        .map((e) => path.join(lib, e))
    : [];
  return [...multiarch, lib, path.join(prefix, 'lib64')];
}

// The compile definitions libtorch's CMake package gives everything linked to it
// (Caffe2Targets.cmake: INTERFACE_COMPILE_DEFINITIONS of torch_cpu, torch_cuda, ...),
// e.g. USE_DISTRIBUTED;USE_C10D_GLOO;USE_RPC;USE_TENSORPIPE. Generator expressions are skipped.
function packageDefines(cmakeDir, cuda) {
  const file = path.resolve(cmakeDir, '../Caffe2/Caffe2Targets.cmake');
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  const defs = [];
  for (const target of ['c10', 'torch_cpu', 'torch', ...(cuda ? ['c10_cuda', 'torch_cuda'] : [])]) {
    const block = new RegExp(`set_target_properties\\(${target} PROPERTIES\\n([\\s\\S]*?)\\n\\)`).exec(text);
    const prop = block && /INTERFACE_COMPILE_DEFINITIONS "([^"]*)"/.exec(block[1]);
    if (prop) defs.push(...prop[1].split(';').filter((d) => /^[A-Za-z_]\w*(=[^$<>]*)?$/.test(d)));
  }
  return unique(defs);
}

function nativeSources(root) {
  return fs
    .readdirSync(path.join(root, 'native'))
    .filter((f) => f.endsWith('.cc'))
    .sort()
    .map((f) => `native/${f}`);
}

// Everything both builds need, decided once: CMakeLists.txt reads it with --cmake,
// binding.gyp with the per-key options below.
function describe(found, root = path.resolve(__dirname, '..')) {
  const { dir } = found;
  const prefix = path.resolve(dir, '../../..'); // <prefix>/share/cmake/Torch or <prefix>/lib/<arch>/cmake/Torch
  const libDir = firstWith([path.join(prefix, 'lib'), path.resolve(dir, '../..')], 'libtorch.so');
  const includeDir = firstWith([path.join(prefix, 'include'), path.resolve(dir, '../../../../include')], 'ATen/ATen.h');
  if (!libDir || !includeDir) throw new Error(`incomplete libtorch at ${dir}: libtorch.so or ATen headers missing`);
  const config = fs.readFileSync(path.join(dir, CONFIG), 'utf8');
  const abi = /_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(config);
  const lib = (name) => path.join(libDir, `lib${name}.so`);

  // CUDA: a libtorch with libtorch_cuda. torch_cuda is linked with --no-as-needed although no
  // symbol of it is used directly, otherwise CUDA is "not available" at run time.
  const cuda = fs.existsSync(lib('torch_cuda'));
  const cudaHome = process.env.CUDA_HOME || process.env.CUDA_PATH || '/usr/local/cuda';
  const cudaInclude = cuda && fs.existsSync(path.join(cudaHome, 'include')) ? path.join(cudaHome, 'include') : null;
  const cudaLibs = cuda ? [lib('torch_cuda'), ...(fs.existsSync(lib('c10_cuda')) ? [lib('c10_cuda')] : [])] : [];

  // torch.distributed (native/distributed.cc): c10d's ProcessGroupGloo needs this libtorch's
  // c10d headers and Gloo's headers and library (Debian: libgloo-dev). Without them the addon
  // still builds and distributed.isAvailable() is false.
  const glooInclude = firstWith([...prefixes().map((p) => path.join(p, 'include')), includeDir], 'gloo/algorithm.h');
  const glooLibDir = firstWith([...prefixes().flatMap(libDirsOf), libDir], 'libgloo.so');
  const c10d = fs.existsSync(path.join(includeDir, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp'));
  const gloo = Boolean(glooInclude && glooLibDir && c10d);
  // NCCL, guarded like the CUDA code: only a CUDA libtorch with NCCL and c10d's NCCL headers.
  const ncclInclude = gloo && cuda ? firstWith([includeDir, cudaInclude, ...prefixes().map((p) => path.join(p, 'include'))], 'nccl.h') : null;
  const nccl = Boolean(ncclInclude) && fs.existsSync(path.join(includeDir, 'torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp'));

  const distributed = { defines: [], includeDirs: [] };
  if (gloo) {
    // VGG_TORCH_WITH_GLOO says that Gloo's headers exist (USE_C10D_GLOO alone does not:
    // libtorch's package defines it whether or not they do).
    distributed.defines.push('USE_C10D_GLOO', 'VGG_TORCH_WITH_GLOO');
    distributed.includeDirs.push(glooInclude);
    // Debian's libtorch-dev lacks the dist-autograd header reducer.hpp includes.
    if (!fs.existsSync(path.join(includeDir, 'torch/csrc/distributed/autograd/context/context.h'))) {
      distributed.includeDirs.push(path.join(root, 'native/compat'));
    }
    if (nccl) {
      distributed.defines.push('USE_C10D_NCCL', 'VGG_TORCH_WITH_NCCL');
      distributed.includeDirs.push(ncclInclude);
    }
  }

  const includeDirs = unique([includeDir, path.join(includeDir, 'torch/csrc/api/include'), cudaInclude].filter(notStandard));
  const defines = unique([...packageDefines(dir, cuda), ...(cuda ? ['VGG_TORCH_WITH_CUDA'] : [])]);
  const sources = nativeSources(root);
  const distSources = sources.filter((s) => s === 'native/distributed.cc');
  return {
    via: found.via,
    cmakeDir: dir,
    libDir,
    cuda,
    gloo,
    nccl,
    // every source file
    cxxFlags: abi ? [`-D_GLIBCXX_USE_CXX11_ABI=${abi[1]}`] : [],
    defines,
    includeDirs,
    // the sources by group; a group's defines and includeDirs come on top of the ones above
    groups: {
      addon: { sources: sources.filter((s) => !distSources.includes(s)), defines: [], includeDirs: [] },
      distributed: {
        sources: distSources,
        defines: distributed.defines.filter((d) => !defines.includes(d)),
        includeDirs: unique(distributed.includeDirs.filter((d) => notStandard(d) && !includeDirs.includes(d))),
      },
    },
    // linked in this order; --no-as-needed as TorchConfig's torch_library does (and for
    // torch_cuda, else CUDA is "not available"); the rpath lets the addon find libtorch
    // without LD_LIBRARY_PATH
    libraries: [
      '-Wl,--no-as-needed',
      ...cudaLibs,
      lib('torch'),
      lib('torch_cpu'),
      '-Wl,--as-needed',
      lib('c10'),
      ...(gloo ? [path.join(glooLibDir, 'libgloo.so')] : []),
    ],
    rpath: libDir,
  };
}

// CMake's set() lines for the same facts (CMakeLists.txt includes them).
function toCMake(info) {
  const q = (s) =>
    `"${String(s)
      .replace(/[\\"$]/g, '\\$&')
      .replace(/;/g, '\\;')}"`;
  const list = (xs) => xs.map(q).join(' ');
  const lines = [
    `set(VGG_TORCH_VIA ${q(info.via)})`,
    `set(VGG_TORCH_CMAKE_DIR ${q(info.cmakeDir)})`,
    `set(VGG_TORCH_LIB_DIR ${q(info.libDir)})`,
    `set(VGG_TORCH_CUDA ${info.cuda ? 'ON' : 'OFF'})`,
    `set(VGG_TORCH_GLOO ${info.gloo ? 'ON' : 'OFF'})`,
    `set(VGG_TORCH_NCCL ${info.nccl ? 'ON' : 'OFF'})`,
    `set(VGG_TORCH_CXX_FLAGS ${list(info.cxxFlags)})`,
    `set(VGG_TORCH_DEFINES ${list(info.defines)})`,
    `set(VGG_TORCH_INCLUDE_DIRS ${list(info.includeDirs)})`,
    `set(VGG_TORCH_GROUPS ${list(Object.keys(info.groups))})`,
  ];
  for (const [name, g] of Object.entries(info.groups)) {
    lines.push(`set(VGG_TORCH_${name}_SOURCES ${list(g.sources)})`);
    lines.push(`set(VGG_TORCH_${name}_DEFINES ${list(g.defines)})`);
    lines.push(`set(VGG_TORCH_${name}_INCLUDE_DIRS ${list(g.includeDirs)})`);
  }
  lines.push(`set(VGG_TORCH_LIBRARIES ${list(info.libraries)})`);
  lines.push(`set(VGG_TORCH_RPATH ${q(info.rpath)})`);
  return `${lines.join('\n')}\n`;
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
  const [what = '--json', groupName] = process.argv.slice(2);
  const group = () => {
    const g = info.groups[groupName];
    if (!g) {
      process.stderr.write(`find-libtorch: ${what} needs a group: ${Object.keys(info.groups).join(', ')}\n`);
      process.exit(1);
    }
    return g;
  };
  // gyp splits <!@(...) output at spaces
  const q = (s) => (/\s/.test(s) ? JSON.stringify(s) : s);
  const words = (xs) => process.stdout.write(xs.map(q).join(' '));
  switch (what) {
    case '--cmake-dir':
      process.stdout.write(info.cmakeDir);
      break;
    case '--cmake':
      process.stdout.write(toCMake(info));
      break;
    // binding.gyp: per group, the sources and everything they are compiled with
    case '--sources':
      words(group().sources);
      break;
    case '--defines':
      words([...info.defines, ...group().defines]);
      break;
    case '--include-dirs':
      words([...info.includeDirs, ...group().includeDirs]);
      break;
    case '--cflags':
      words(info.cxxFlags);
      break;
    case '--libs':
      words([`-Wl,-rpath,${info.rpath}`, ...info.libraries]);
      break;
    case '--json':
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      break;
    default:
      process.stderr.write(`find-libtorch: unknown option ${what}\n`);
      process.exit(1);
  }
}

if (require.main === module) main();
module.exports = { locate, describe, toCMake, HOW_TO };
