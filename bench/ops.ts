// bench/ops: vgg-torch against PyTorch on the same libtorch, side by side in one run.
//   1. per-call overhead of a tiny op (1×1 add, 100k calls)
//   2. conv2d forward + backward at the tutorial VGG's shapes
// Rounds alternate between the two so machine drift hits both; medians are reported.
// Run: npm run bench:ops   (needs /usr/bin/python3 with torch)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { F, getNumThreads, manualSeed, ones, randn, setNumThreads, tidy } from '../lib/index.js';
import { machine } from './machine.js';

const THREADS = Number(process.env.THREADS ?? getNumThreads());
const CALLS = 100_000;
const REPS = Number(process.env.REPS ?? 7);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
// (batch, channels, height = width): the 32×32 CIFAR VGG's conv stages at batch 32.
const CONVS: [number, number, number][] = [
  [32, 64, 32],
  [32, 128, 16],
  [32, 256, 8],
  [32, 512, 4],
];

function tinyAdd(calls: number): number {
  const a = ones(1, 1);
  const b = ones(1, 1);
  for (let i = 0; i < 1000; i++) a.add(b).dispose();
  const t = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) a.add(b).dispose();
  const us = Number(process.hrtime.bigint() - t) / 1e3 / calls;
  a.dispose();
  b.dispose();
  return us;
}

function conv(n: number, c: number, hw: number, reps: number): number {
  return tidy(() => {
    manualSeed(0);
    const x = randn(n, c, hw, hw);
    const w = randn([c, c, 3, 3], { requiresGrad: true });
    const b = randn([c], { requiresGrad: true });
    const step = () =>
      tidy(() => {
        F.conv2d(x, w, b, 1, 1).sum().backward();
        w.grad = null;
        b.grad = null;
      });
    step();
    step();
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = process.hrtime.bigint();
      step();
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return median(times);
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function python(): { add_us: number; conv_ms: number[] } {
  const script = fileURLToPath(new URL('./ops.py', import.meta.url));
  const spec = JSON.stringify({ threads: THREADS, calls: CALLS, reps: REPS, convs: CONVS });
  const r = spawnSync('/usr/bin/python3', [script, spec], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch side failed (is python3-torch installed?):\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

setNumThreads(THREADS);
const js = { add: [] as number[], conv: CONVS.map(() => [] as number[]) };
const py = { add: [] as number[], conv: CONVS.map(() => [] as number[]) };
for (let round = 0; round < ROUNDS; round++) {
  const p = python();
  py.add.push(p.add_us);
  p.conv_ms.forEach((v, i) => py.conv[i].push(v));
  js.add.push(tinyAdd(CALLS));
  CONVS.forEach(([n, c, hw], i) => js.conv[i].push(conv(n, c, hw, REPS)));
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}

const rows: [string, number, number, string][] = [['add 1×1 (µs/call)', median(js.add), median(py.add), 'µs']];
CONVS.forEach(([n, c, hw], i) => rows.push([`conv2d fwd+bwd ${n}×${c}×${hw}×${hw}, 3×3 (ms)`, median(js.conv[i]), median(py.conv[i]), 'ms']));
console.log(machine());
console.log(`bench/ops — ${THREADS} threads, ${ROUNDS} interleaved rounds, medians; ratio = vgg-torch / PyTorch (lower is better)`);
console.log('| case | vgg-torch | PyTorch 1.13 | ratio |');
console.log('|---|---:|---:|---:|');
for (const [name, a, b] of rows) console.log(`| ${name} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(3)} |`);
