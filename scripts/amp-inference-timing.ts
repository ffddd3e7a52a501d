// Timing of docs/inference.md's "Mixed precision inference" table: vgg16 (random init) at
// 224×224, batch 1 and 8, on 2 intra-op threads: compiled float32 (predict), compiled bfloat16
// (predict inside autocast) and eager autocast (the module called inside autocast, no grad).
// Median and fastest of `runs` timed calls after 2 warm-up calls (the fastest is the least disturbed by other load). Run: npx tsx scripts/amp-inference-timing.ts
import { autocast, manualSeed, noGrad, randn, setNumThreads, vgg16 } from '../lib/index.js';

setNumThreads(2);
manualSeed(0);
const model = vgg16().eval();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [batch, runs] of [
  [1, 9],
  [8, 5],
] as const) {
  const x = randn(batch, 3, 224, 224);
  const modes: [string, () => { dispose(): void }][] = [
    ['compiled float32', () => model.predict(x)],
    ['compiled bfloat16', () => autocast('cpu', () => model.predict(x))],
    ['eager autocast', () => noGrad(() => autocast('cpu', () => model(x)))],
  ];
  for (const [name, call] of modes) {
    const t0 = performance.now();
    call().dispose(); // compiles on first use
    const first = performance.now() - t0;
    call().dispose();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      call().dispose();
      times.push(performance.now() - t);
    }
    console.log(
      `batch ${batch}  ${name.padEnd(18)} median ${median(times).toFixed(0).padStart(6)} ms, fastest ${Math.min(...times)
        .toFixed(0)
        .padStart(6)} ms  (first call ${first.toFixed(0)} ms; ${times.map((t) => t.toFixed(0)).join(' ')})`,
    );
  }
  x.dispose();
}
model.dispose();
