// bench/infer: inference speed of vgg-torch against PyTorch and onnxruntime-node,
// side by side in one run, rounds interleaved (every system once per round), so
// machine drift hits all of them alike. Same weights (seeded here, saved as .pth,
// loaded by PyTorch), same input, eval mode, no grad.
//
// Systems:
//   vgg-torch eager        model.forward under inferenceMode
//   vgg-torch compiled     jit.optimizeForInference(jit.trace(model, x)).forward (sync)
//   vgg-torch async        the same module's forwardAsync (a libuv worker thread)
//   vgg-torch int8         quantization.quantize(model, 8 seeded calibration batches).forward (INT8=1)
//   PyTorch eager          /usr/bin/python3, bench/infer.py (a server child process)
//   PyTorch optimized      torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(m)))
//   PyTorch FX int8        prepare_fx/convert_fx, x86 default qconfig, engine onednn (INT8=1)
//   onnxruntime-node       CPU EP, the model exported by PyTorch's torch.onnx.export, intraOpNumThreads = threads
// Also the event-loop delay (perf_hooks.monitorEventLoopDelay, p99) while forwardAsync runs,
// against the sync forward's full time.
//
// Run: npx tsx bench/infer.ts   (needs /usr/bin/python3 with torch and torchvision)
// Env: CASES (vgg16-b1,vgg16-b8,tutorial-b512), THREADS (1,<cores>), ROUNDS (3), RUNS (1 per round), INT8 (1)
// A vgg16 forward takes about 0.25 s at 2 threads and 0.5 s at 1 on the reference machine; batch 8 and the
// tutorial VGG at 512 take seconds each, so the default run takes about 15 minutes.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { type Tensor, inferenceMode, jit, manualSeed, quantization, randn, save, setNumThreads, tidy, vgg16, vggTutorial } from '../lib/index.js';
import { machine } from './machine.js';

const CASES = (process.env.CASES ?? 'vgg16-b1,vgg16-b8,tutorial-b512').split(',');
const THREADS = (process.env.THREADS ?? `1,${availableParallelism()}`).split(',').map(Number);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const RUNS = Number(process.env.RUNS ?? 1);
const INT8 = process.env.INT8 !== '0';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-bench-infer-'));

/** The PyTorch server (bench/infer.py): one JSON line per command and per answer. */
const py = spawn('/usr/bin/python3', [fileURLToPath(new URL('./infer.py', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
const answers = createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
async function ask<T>(cmd: object): Promise<T> {
  py.stdin!.write(`${JSON.stringify(cmd)}\n`);
  const { value } = await answers.next();
  const r = JSON.parse(value as string);
  if (r.error) throw new Error(`bench/infer.py: ${r.error}`);
  return r as T;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeMs(run: () => unknown | Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  return ms;
}

async function benchCase(name: string): Promise<void> {
  const [arch, b] = name.split('-b');
  const batch = Number(b);
  const size = arch === 'tutorial' ? 32 : 224;
  manualSeed(0);
  const model = (arch === 'tutorial' ? vggTutorial() : vgg16()).eval();
  const x = randn(batch, 3, size, size);
  const files = { weights: join(dir, `${name}.pth`), input: join(dir, `${name}-x.pth`), onnx: join(dir, `${name}.onnx`) };
  tidy(() => save(model.stateDict(), files.weights)); // the state dict's handles are freed once written
  save(x, files.input);
  await ask({ op: 'load', case: name, arch, weights: files.weights, input: files.input, onnx: files.onnx, int8: INT8 });
  const compiled = jit.optimizeForInference(jit.trace(model, x));
  // Calibrated on 8 seeded random batches, as bench/infer.py calibrates PyTorch's FX int8.
  const calibration = INT8 ? Array.from({ length: 8 }, () => randn(...x.shape)) : [];
  const int8 = INT8 ? quantization.quantize(model, calibration) : null;
  for (const c of calibration) c.dispose();
  const input = new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape);
  const dispose = (t: Tensor | Tensor[]) => (Array.isArray(t) ? t : [t]).forEach((u) => u.dispose());

  for (const threads of THREADS) {
    setNumThreads(threads);
    await ask({ op: 'threads', n: threads });
    const session = await ort.InferenceSession.create(files.onnx, { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ['cpu'] });
    const systems: [string, () => unknown | Promise<unknown>][] = [
      ['vgg-torch eager', () => inferenceMode(() => model(x)).dispose()],
      ['vgg-torch compiled', () => dispose(compiled.forward(x))],
      ['vgg-torch compiled async', async () => dispose(await compiled.forwardAsync(x))],
      ...(int8 ? [['vgg-torch int8', () => inferenceMode(() => int8(x)).dispose()] as [string, () => unknown]] : []),
      ['onnxruntime-node', () => session.run({ input })],
    ];
    const pySystems = ['eager', 'optimized', ...(INT8 ? ['int8'] : [])];
    const times = new Map<string, number[]>();
    // Two warm-up runs of each, then the rounds.
    for (const [, run] of systems) for (let i = 0; i < 2; i++) await run();
    for (const s of pySystems) await ask({ op: 'time', case: name, system: s, runs: 2 });
    for (let r = 0; r < ROUNDS; r++) {
      for (const [label, run] of systems) times.set(label, [...(times.get(label) ?? []), ...(await timeMs(run))]);
      for (const s of pySystems) {
        const { ms } = await ask<{ ms: number[] }>({ op: 'time', case: name, system: s, runs: RUNS });
        const label = `PyTorch ${s === 'int8' ? 'FX int8' : s}`;
        times.set(label, [...(times.get(label) ?? []), ...ms]);
      }
    }
    // The event loop while forwardAsync runs, and while the sync forward runs.
    const delay = async (run: () => unknown | Promise<unknown>) => {
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      await new Promise((r) => setTimeout(r, 30));
      const tick = setInterval(() => {}, 5);
      await run();
      await new Promise((r) => setTimeout(r, 20));
      clearInterval(tick);
      h.disable();
      return { p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
    };
    const asyncDelay = await delay(async () => dispose(await compiled.forwardAsync(x)));
    const syncDelay = await delay(() => dispose(compiled.forward(x)));
    await session.release();

    const ref = median(times.get('PyTorch optimized')!);
    const ortMs = median(times.get('onnxruntime-node')!);
    console.log(`\n${name} (batch ${batch}, ${size}×${size}), ${threads} thread(s), ${ROUNDS} rounds × ${RUNS}: median ms`);
    console.log('| system | ms | × PyTorch optimized | × onnxruntime-node |\n|---|---:|---:|---:|');
    for (const [label, ms] of times) {
      const m = median(ms);
      console.log(`| ${label} | ${m.toFixed(1)} | ${(m / ref).toFixed(2)} | ${(m / ortMs).toFixed(2)} |`);
    }
    console.log(
      `event loop while forwardAsync runs: p99 ${asyncDelay.p99.toFixed(1)} ms, max ${asyncDelay.max.toFixed(1)} ms; ` +
        `while the sync forward runs: max ${syncDelay.max.toFixed(1)} ms (target: p99 < 20 ms)`,
    );
    console.log(`target compiled fp32 ≤ 1.0× PyTorch optimized: ${(median(times.get('vgg-torch compiled')!) / ref).toFixed(2)}×`);
    if (int8) console.log(`target int8 ≤ 0.7× onnxruntime-node fp32: ${(median(times.get('vgg-torch int8')!) / ortMs).toFixed(2)}×`);
  }
  compiled.dispose();
  int8?.dispose();
  model.dispose();
  x.dispose();
}

console.log(machine());
try {
  for (const c of CASES) await benchCase(c);
} finally {
  py.stdin!.end();
  rmSync(dir, { recursive: true, force: true });
}
