// bench/tensor-api: per-call overhead of a generated Tensor method against a hand-written
// one on the same kind of 1×1 op, and the package's import time.
//   1. the same 1×1 op through a hand-written method and through the generated torch.* function
//      (same operator, same kernel): sqrt, add(Tensor), mul(number) (an overload chosen from the
//      argument types); then generated methods beside hand-written ones of similar kernels, and
//      ops.aten.add.Tensor
//   2. `import('vgg-torch')` from the built dist/ in a fresh node, median of 7
// Rounds alternate so machine drift hits both sides; the best round of each is reported.
// Run: npx tsx bench/tensor-api.ts   (build dist/ first: npx tsup)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as torch from '../lib/index.js';
import { type Tensor, ones, ops, setNumThreads } from '../lib/index.js';

setNumThreads(1);

const CALLS = Number(process.env.CALLS ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Per-call cost: the best round (other processes on the machine only ever add time).
const best = (xs: number[]): number => Math.min(...xs);

function perCall(f: () => Tensor): number {
  for (let i = 0; i < 2000; i++) f().dispose();
  // CPU time of this thread's process, not wall time: a loaded machine stretches the wall clock of
  // whichever side it happens to hit. (One intra-op thread, set below: a 1×1 op never forks.)
  const t = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) f().dispose();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / CALLS;
}

const a = ones(1, 1);
const b = ones(1, 1);
const PAIRS: [string, () => Tensor, string, () => Tensor][] = [
  ['a.sqrt()', () => a.sqrt(), 'torch.sqrt(a)', () => torch.sqrt(a)],
  ['a.add(b)', () => a.add(b), 'torch.add(a, b)', () => torch.add(a, b)],
  ['a.mul(2)', () => a.mul(2), 'torch.mul(a, 2)', () => torch.mul(a, 2)],
  ['a.sqrt()', () => a.sqrt(), 'a.rsqrt()', () => a.rsqrt()],
  ['a.add(b)', () => a.add(b), 'a.maximum(b)', () => a.maximum(b)],
  ['a.add(b)', () => a.add(b), 'ops.aten.add.Tensor(a, b)', () => ops.aten.add.Tensor(a, b)],
];
const times = PAIRS.map(() => [[] as number[], [] as number[]]);
for (let r = 0; r < ROUNDS; r++) {
  PAIRS.forEach(([, hand, , gen], i) => {
    times[i][0].push(perCall(hand));
    times[i][1].push(perCall(gen));
  });
}

function importMs(): number {
  const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  const code = `const t = process.hrtime.bigint(); await import(${JSON.stringify(dist)}); console.log(Number(process.hrtime.bigint() - t) / 1e6);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}
const imports = Array.from({ length: 7 }, importMs);

console.log(`bench/tensor-api — ${CALLS} calls × ${ROUNDS} rounds, best round (µs/call); ratio = generated / hand-written`);
console.log('| hand-written | µs | generated | µs | ratio |');
console.log('|---|---:|---|---:|---:|');
PAIRS.forEach(([h, , g], i) => {
  const [x, y] = [best(times[i][0]), best(times[i][1])];
  console.log(`| ${h} | ${x.toFixed(3)} | ${g} | ${y.toFixed(3)} | ${(y / x).toFixed(3)} |`);
});
console.log(`import dist/index.js: median ${median(imports).toFixed(1)} ms of 7 (${imports.map((x) => x.toFixed(0)).join(', ')})`);
