// bench/int8: int8 inference off the event loop. For each case, an fp32 VGG and
// its int8 copy (quantization.quantize, 4 seeded calibration batches), side by side:
//
//   fp32 forwardAsync   model.forwardAsync (predict's compiled graph, optimizeForInference, on a libuv worker)
//   int8 forwardAsync   the int8 model's forwardAsync (its frozen traced graph, on a libuv worker)
//   int8 forward        the int8 model's eager forward, on this thread (it blocks the loop)
//
// Reported: median ms per call, and the event loop's delay (perf_hooks.monitorEventLoopDelay,
// p99 and max) while CALLS back-to-back calls run, with a 5 ms interval ticking, as bench/infer.ts
// measures fp32's. Target: p99 < 20 ms for forwardAsync. The int8 outputs of forwardAsync are
// checked to be forward's, bit for bit.
//
// Run: npx tsx bench/int8.ts   (no Python needed)
// Env: CASES (tutorial-b64,vgg11-b1: the tutorial's VGG at 32×32, torchvision's vgg11 at 224×224),
//      ROUNDS (5 timed calls per system), CALLS (10 calls under the delay monitor), THREADS (libtorch's default).
// A smoke run: CASES=tutorial-b8 ROUNDS=2 CALLS=4 npx tsx bench/int8.ts
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Tensor, inferenceMode, manualSeed, quantization, randn, setNumThreads, tidy, vgg11, vggTutorial } from '../lib/index.js';
import { machine } from './machine.js';

const CASES = (process.env.CASES ?? 'tutorial-b64,vgg11-b1').split(',');
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const CALLS = Number(process.env.CALLS ?? 10);
if (process.env.THREADS) setNumThreads(Number(process.env.THREADS));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const disposeAll = (t: Tensor | Tensor[]): void => (Array.isArray(t) ? t : [t]).forEach((u) => u.dispose());

/** The event loop's delay while `calls` runs of `run` follow each other. */
async function loopDelay(run: () => unknown | Promise<unknown>, calls: number): Promise<{ p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await new Promise((r) => setTimeout(r, 30));
  const tick = setInterval(() => {}, 5);
  for (let i = 0; i < calls; i++) await run();
  await new Promise((r) => setTimeout(r, 20));
  clearInterval(tick);
  h.disable();
  return { p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

async function benchCase(name: string): Promise<void> {
  const [arch, b] = name.split('-b');
  const batch = Number(b);
  if (!['tutorial', 'vgg11'].includes(arch) || !(batch > 0)) throw new Error(`bench/int8: unknown case '${name}' (tutorial-b<N> or vgg11-b<N>)`);
  const size = arch === 'tutorial' ? 32 : 224;
  manualSeed(0);
  const model = (arch === 'tutorial' ? vggTutorial() : vgg11()).eval();
  const x = randn(batch, 3, size, size);
  const calibration = Array.from({ length: 4 }, () => randn(...x.shape));
  const int8 = quantization.quantize(model, calibration);
  for (const c of calibration) c.dispose();

  // Compile both (the first call traces, freezes or optimizes) and check int8's bits.
  disposeAll(await model.forwardAsync(x));
  const [eager, compiled] = [tidy(() => inferenceMode(() => int8.forward(x))), await int8.forwardAsync(x)];
  const same = eager.equal(compiled) && Buffer.from(eager.toTypedArray().buffer).equals(Buffer.from(compiled.toTypedArray().buffer));
  disposeAll([eager, compiled]);
  if (!same) throw new Error("bench/int8: int8 forwardAsync does not give forward's bits");

  const systems: [string, () => unknown | Promise<unknown>][] = [
    ['fp32 forwardAsync', async () => disposeAll(await model.forwardAsync(x))],
    ['int8 forwardAsync', async () => disposeAll(await int8.forwardAsync(x))],
    ['int8 forward (sync)', () => inferenceMode(() => int8.forward(x)).dispose()],
  ];
  const ms = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [label, run] of systems) {
      const t = performance.now();
      await run();
      ms.set(label, [...(ms.get(label) ?? []), performance.now() - t]);
    }
  }
  console.log(`\n${name} (batch ${batch}, ${size}×${size}): median of ${ROUNDS} calls; event-loop delay over ${CALLS} back-to-back calls`);
  console.log('| system | ms | loop delay p99 ms | loop delay max ms |\n|---|---:|---:|---:|');
  for (const [label, run] of systems) {
    const d = await loopDelay(run, CALLS);
    console.log(`| ${label} | ${median(ms.get(label)!).toFixed(1)} | ${d.p99.toFixed(1)} | ${d.max.toFixed(1)} |`);
  }
  console.log('target: forwardAsync loop delay p99 < 20 ms (fp32 and int8)');
  int8.dispose();
  model.dispose();
  x.dispose();
}

console.log(machine());
for (const c of CASES) await benchCase(c);
