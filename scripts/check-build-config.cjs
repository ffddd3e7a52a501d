#!/usr/bin/env node
// Checks that the two builds compile what scripts/find-libtorch.cjs decides, and
// so agree with each other: for every source file, the same libtorch-related
// definitions, the same libtorch include folders, the same C++ ABI; and the
// same libraries linked. Nothing is compiled: CMake configures CMakeLists.txt
// (compile_commands.json, link.txt) and node-gyp configures binding.gyp
// (Makefiles), each in a scratch folder, in about a minute.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { locate, describe } = require('./find-libtorch.cjs');

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-torch-config-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
function run(cmd, args, cwd, env = process.env) {
  try {
    return execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    process.stderr.write(`${cmd} ${args.join(' ')} failed:\n${String(e.stderr || e.message).slice(-3000)}\n`);
    process.exit(1);
  }
}

// What the script decides, per source.
const info = describe(locate(), root);
const expected = {};
for (const g of Object.values(info.groups)) {
  for (const s of g.sources) {
    expected[s] = { defines: [...info.defines, ...g.defines], includes: [...info.includeDirs, ...g.includeDirs] };
  }
}
const universe = {
  defines: new Set([...info.defines, ...Object.values(info.groups).flatMap((g) => g.defines)]),
  includes: new Set([...info.includeDirs, ...Object.values(info.groups).flatMap((g) => g.includeDirs)]),
};
// A definition or include folder that is libtorch's business; the rest (Node's,
// node-addon-api's, the build tool's own) is not compared.
const managedDefine = (d) => universe.defines.has(d) || /^(USE_|VGG_TORCH_|C10_|TORCH_|CAFFE2_|AT_|GLOG|GFLAGS)/.test(d);
const managedInclude = (i) => universe.includes.has(i) || (!/node_modules|node-addon-api/.test(i) && /torch|gloo|nccl|cuda|compat/i.test(i.replace(root, '')));

// Both builds' flags, with paths inside the copy they were configured from made root-relative.
function summarize(words, base) {
  const norm = (p) => path.resolve(base, p).replace(base, root);
  const defines = [];
  const includes = [];
  let abi = '1'; // libstdc++'s default
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w.startsWith('-D')) {
      const d = w.slice(2);
      if (d.startsWith('_GLIBCXX_USE_CXX11_ABI=')) abi = d.split('=')[1];
      else if (managedDefine(d)) defines.push(d);
    } else if (w === '-isystem' || w === '-I') {
      includes.push(norm(words[++i]));
    } else if (w.startsWith('-I') || w.startsWith('-isystem')) {
      includes.push(norm(w.replace(/^-I|^-isystem/, '')));
    }
  }
  return { defines: [...new Set(defines)].sort(), includes: [...new Set(includes.filter(managedInclude))].sort(), abi };
}
const shellWords = (s) => (s.match(/'[^']*'|"[^"]*"|\S+/g) || []).map((w) => w.replace(/^'(.*)'$|^"(.*)"$/, '$1$2'));

// CMake: configure only.
function cmakeBuild() {
  const dir = path.join(work, 'cmake');
  run('cmake', ['-S', root, '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON'], root);
  const files = {};
  for (const e of JSON.parse(fs.readFileSync(path.join(dir, 'compile_commands.json'), 'utf8'))) {
    files[path.relative(root, e.file)] = summarize(shellWords(e.command), root);
  }
  const link = fs.readFileSync(path.join(dir, 'CMakeFiles/vgg_torch.dir/link.txt'), 'utf8');
  return { files, link: shellWords(link) };
}

// node-gyp: configure only, in a copy (its build/ would replace cmake-js's).
function gypBuild() {
  const dir = path.join(work, 'gyp');
  fs.mkdirSync(dir);
  for (const f of ['binding.gyp', 'native', 'scripts', 'package.json']) fs.cpSync(path.join(root, f), path.join(dir, f), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  // npm's own node-gyp, as `npm run build:gyp` uses; the nodedir from npm's config.
  const npm = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm']).toString().trim());
  const nodeGyp = [path.resolve(path.dirname(npm), '../node_modules/node-gyp/bin/node-gyp.js')].find(fs.existsSync);
  const env = { ...process.env };
  if (!env.npm_config_nodedir) {
    const nodedir = run('npm', ['config', 'get', 'nodedir'], root).trim();
    if (nodedir && nodedir !== 'undefined' && nodedir !== 'null') env.npm_config_nodedir = nodedir;
  }
  if (nodeGyp) run(process.execPath, [nodeGyp, 'configure'], dir, env);
  else run('node-gyp', ['configure'], dir, env);
  const files = {};
  let link = [];
  for (const mk of fs.readdirSync(path.join(dir, 'build')).filter((f) => f.endsWith('.target.mk'))) {
    const text = fs.readFileSync(path.join(dir, 'build', mk), 'utf8');
    const variable = (name) => {
      const m = new RegExp(`^${name} := ?((?:.*\\\\\\n)*.*)$`, 'm').exec(text);
      return m ? shellWords(m[1].replace(/\\\n/g, ' ')) : [];
    };
    const srcdir = dir; // the Makefile's srcdir
    const words = [...variable('DEFS_Release'), ...variable('INCS_Release'), ...variable('CFLAGS_Release'), ...variable('CFLAGS_CC_Release')].map((w) =>
      w.replace('$(srcdir)', srcdir),
    );
    for (const o of variable('OBJS')) {
      const src = o.replace(/^\$\(obj\)\.target\/\$\(TARGET\)\//, '').replace(/\.o$/, '.cc');
      files[src] = summarize(words, dir);
    }
    if (mk === 'vgg_torch.target.mk') link = variable('LIBS');
  }
  return { files, link };
}

const problems = [];
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const builds = { cmake: cmakeBuild(), gyp: gypBuild() };
const wantAbi = (info.cxxFlags.find((f) => f.startsWith('-D_GLIBCXX_USE_CXX11_ABI=')) || '=1').split('=')[1];
for (const [name, build] of Object.entries(builds)) {
  if (!same(Object.keys(build.files).sort(), Object.keys(expected).sort())) {
    problems.push(`${name} compiles ${Object.keys(build.files).sort().join(' ')}; find-libtorch says ${Object.keys(expected).sort().join(' ')}`);
  }
  for (const [src, want] of Object.entries(expected)) {
    const got = build.files[src];
    if (!got) continue;
    if (!same(got.defines, [...new Set(want.defines)].sort()))
      problems.push(`${name} ${src}: defines ${got.defines.join(' ')}; find-libtorch says ${want.defines.join(' ')}`);
    if (!same(got.includes, [...new Set(want.includes)].sort()))
      problems.push(`${name} ${src}: include folders ${got.includes.join(' ')}; find-libtorch says ${want.includes.join(' ')}`);
    if (got.abi !== wantAbi) problems.push(`${name} ${src}: _GLIBCXX_USE_CXX11_ABI=${got.abi}; find-libtorch says ${wantAbi}`);
  }
  // The libraries, in find-libtorch's order (-L/-l as CMake writes a library without a SONAME, as a path).
  const libDirs = build.link.filter((w) => w.startsWith('-L')).map((w) => w.slice(2));
  const asPath = (w) => (w.startsWith('-l') ? libDirs.map((d) => path.join(d, `lib${w.slice(2)}.so`)).find(fs.existsSync) || w : w);
  const libs = build.link.map(asPath).filter((w) => info.libraries.includes(w));
  if (!same(libs, info.libraries)) problems.push(`${name} links ${libs.join(' ')}; find-libtorch says ${info.libraries.join(' ')}`);
  if (!build.link.some((w) => w.includes('-rpath') && w.includes(info.rpath))) problems.push(`${name}: no rpath ${info.rpath}`);
}

if (problems.length) {
  process.stderr.write(`CMakeLists.txt and binding.gyp do not build what find-libtorch.cjs says:\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}
const dist = info.groups.distributed;
console.log(
  `build config: CMake and node-gyp agree (${info.via}: ${Object.keys(expected).length} sources; ` +
    `all: ${info.defines.join(' ') || 'no definitions'}; ${dist.sources.join(' ')}: +${dist.defines.join(' ') || 'nothing'}` +
    `${dist.includeDirs.length ? ` -I${dist.includeDirs.map((d) => path.relative(root, d) || d).join(' -I')}` : ''}; ` +
    `cuda ${info.cuda}, gloo ${info.gloo}, nccl ${info.nccl})`,
);
