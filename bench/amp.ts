// bench/amp: mixed precision (bf16 autocast) against fp32, vgg-torch against PyTorch on the
// same libtorch, with onnxruntime-node fp32 as the inference anchor, side by side in one run.
// Rounds interleave (every system once per round) so machine drift hits all alike; medians.
//
// Training: the CIFAR-10 tutorial's VGG at batch 128 (bench/train.ts's step, model, init and
// synthetic in-memory data), fp32 and with the forward pass and the loss under
// autocast('cpu', { dtype: 'bfloat16' }) — backward outside, PyTorch's AMP recipe — on both sides.
// Inference: torchvision's vgg16, 224×224, batch 1 and 8, eval, no grad:
//   vgg-torch compiled fp32     model.predict(x) (trace → freeze → optimizeForInference)
//   vgg-torch compiled bf16     autocast('cpu', () => model.predict(x)): the graph traced under autocast, frozen
//   vgg-torch eager autocast    autocast('cpu', () => model(x)) under inferenceMode
//   PyTorch optimized fp32      optimize_for_inference(freeze(script(m)))
//   PyTorch autocast            m(x) under torch.autocast('cpu', dtype=torch.bfloat16)
//   PyTorch autocast traced     freeze(trace(m, x)) traced under autocast(cache_enabled=False)
//   onnxruntime-node fp32       CPU EP, PyTorch's torch.onnx.export of the same weights
// Targets (issue 23), on a CPU with native bf16: training bf16 ≥ 2× vgg-torch fp32 and ≥ 0.95×
// PyTorch autocast; compiled bf16 vgg16 b1 ≤ 0.6× onnxruntime-node fp32. On a CPU without native
// bf16 the bench says so (bf16 is then emulated and slower; the defaults stay fp32).
//
// Run: npm run bench:amp   (needs /usr/bin/python3 with torch and torchvision)
// Env: THREADS (default: getNumThreads()), ROUNDS (3), STEPS (3 timed training steps), WARMUP (2),
//      RUNS (1 inference run per round), CASES (vgg16-b1,vgg16-b8), TRAIN (1; 0 skips training).
// About 10 minutes on 2 cores.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import {
  type Tensor,
  autocast,
  backends,
  getNumThreads,
  inferenceMode,
  manualSeed,
  memory,
  nn,
  optim,
  randint,
  randn,
  save,
  setNumThreads,
  tidy,
  version,
  vgg16,
  vggTutorial,
} from '../lib/index.js';
import { machine } from './machine.js';

const THREADS = Number(process.env.THREADS ?? getNumThreads());
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const STEPS = Number(process.env.STEPS ?? 3);
const WARMUP = Number(process.env.WARMUP ?? 2);
const RUNS = Number(process.env.RUNS ?? 1);
const CASES = (process.env.CASES ?? 'vgg16-b1,vgg16-b8').split(',');
const TRAIN = process.env.TRAIN !== '0';
const SEED = 777;
const BATCH = 128;

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-bench-amp-'));
const py = spawn('/usr/bin/python3', [fileURLToPath(new URL('./amp.py', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
const answers = createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
async function ask<T>(cmd: object): Promise<T> {
  py.stdin!.write(`${JSON.stringify(cmd)}\n`);
  const { value } = await answers.next();
  const r = JSON.parse(value as string);
  if (r.error) throw new Error(`bench/amp.py: ${r.error}`);
  return r as T;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

interface TrainResult {
  images_per_s: number;
  first_loss: number;
  last_loss: number;
}

/** bench/train.ts's step, with the forward pass and the loss under bf16 autocast when `amp`. */
function trainJs(amp: boolean): TrainResult {
  manualSeed(SEED);
  const model = vggTutorial();
  model.train();
  const criterion = new nn.CrossEntropyLoss();
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.005, momentum: 0.9 });
  const data: [Tensor, Tensor][] = Array.from({ length: WARMUP + STEPS }, () => [randn(BATCH, 3, 32, 32), randint(0, 10, [BATCH])]);
  const step = ([inputs, labels]: [Tensor, Tensor]): number =>
    tidy(() => {
      optimizer.zeroGrad();
      const loss = autocast('cpu', { dtype: 'bfloat16', enabled: amp }, () => criterion(model(inputs), labels));
      loss.backward();
      optimizer.step();
      return loss.item() as number;
    });
  try {
    const losses: number[] = [];
    for (let i = 0; i < WARMUP; i++) losses.push(step(data[i]));
    const t = performance.now();
    for (let i = WARMUP; i < WARMUP + STEPS; i++) losses.push(step(data[i]));
    const seconds = (performance.now() - t) / 1000;
    return { images_per_s: (BATCH * STEPS) / seconds, first_loss: losses[0], last_loss: losses.at(-1)! };
  } finally {
    for (const [x, y] of data) {
      x.dispose();
      y.dispose();
    }
    optimizer.zeroGrad();
    optimizer.dispose();
    model.dispose();
  }
}

async function benchTraining(): Promise<void> {
  const results = new Map<string, TrainResult[]>();
  const add = (label: string, r: TrainResult) => results.set(label, [...(results.get(label) ?? []), r]);
  for (let round = 0; round < ROUNDS; round++) {
    add('vgg-torch fp32', trainJs(false));
    add('vgg-torch bf16 autocast', trainJs(true));
    for (const amp of ['off', 'bf16']) {
      add(`PyTorch ${amp === 'off' ? 'fp32' : 'bf16 autocast'}`, await ask({ op: 'train', batch: BATCH, steps: STEPS, warmup: WARMUP, seed: SEED, amp }));
    }
    process.stderr.write(`training round ${round + 1}/${ROUNDS} done (RSS ${mb(process.memoryUsage().rss)}, live tensors ${memory().tensors})\n`);
  }
  const ips = (label: string) => median(results.get(label)!.map((r) => r.images_per_s));
  console.log(`\nTraining: tutorial VGG, batch ${BATCH}, ${STEPS} timed steps after ${WARMUP} warm-up, ${ROUNDS} rounds, median images/s`);
  console.log('| system | images/s | × vgg-torch fp32 | × PyTorch bf16 autocast | first loss (per round) |\n|---|---:|---:|---:|---|');
  for (const [label, rs] of results) {
    const v = ips(label);
    console.log(
      `| ${label} | ${v.toFixed(1)} | ${(v / ips('vgg-torch fp32')).toFixed(2)} | ${(v / ips('PyTorch bf16 autocast')).toFixed(2)} | ${rs.map((r) => r.first_loss.toFixed(7)).join(', ')} |`,
    );
  }
  console.log(
    `targets: vgg-torch bf16 ≥ 2× vgg-torch fp32: ${(ips('vgg-torch bf16 autocast') / ips('vgg-torch fp32')).toFixed(2)}×; ` +
      `≥ 0.95× PyTorch bf16 autocast: ${(ips('vgg-torch bf16 autocast') / ips('PyTorch bf16 autocast')).toFixed(2)}×`,
  );
}

async function benchInference(name: string): Promise<void> {
  const batch = Number(name.split('-b')[1]);
  manualSeed(0);
  const model = vgg16().eval();
  const x = randn(batch, 3, 224, 224);
  const files = { weights: join(dir, `${name}.pth`), input: join(dir, `${name}-x.pth`), onnx: join(dir, `${name}.onnx`) };
  tidy(() => save(model.stateDict(), files.weights)); // the state dict's handles are freed once written
  save(x, files.input);
  const pyCase = await ask<{ systems: string[]; top1_same: boolean; max_rel: number }>({ op: 'load', case: name, ...files });
  const session = await ort.InferenceSession.create(files.onnx, { intraOpNumThreads: THREADS, interOpNumThreads: 1, executionProviders: ['cpu'] });
  const input = new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape);
  const bf16 = () => autocast('cpu', { dtype: 'bfloat16' }, () => model.predict(x));
  const systems: [string, () => unknown | Promise<unknown>][] = [
    ['vgg-torch compiled fp32', () => model.predict(x).dispose()],
    ['vgg-torch compiled bf16', () => bf16().dispose()],
    ['vgg-torch eager autocast', () => inferenceMode(() => autocast('cpu', { dtype: 'bfloat16' }, () => model(x))).dispose()],
    ['onnxruntime-node fp32', () => session.run({ input })],
  ];
  const pyLabels: Record<string, string> = {
    optimized: 'PyTorch optimized fp32',
    autocast: 'PyTorch autocast',
    'autocast-traced': 'PyTorch autocast traced',
  };
  // How far bf16 moves the answer on this input (vgg-torch's compiled bf16 against its fp32).
  const agreement = tidy(() => {
    const a = model.predict(x);
    const b = bf16().float();
    return {
      top1: a.argmax(1).eq(b.argmax(1)).all().item() as boolean,
      maxRel: (b.sub(a).abs().max().item() as number) / (a.abs().max().item() as number),
      dtype: bf16().dtype,
    };
  });
  const times = new Map<string, number[]>();
  for (const [, run] of systems) for (let i = 0; i < 2; i++) await run();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [label, run] of systems) {
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        await run();
        times.set(label, [...(times.get(label) ?? []), performance.now() - t]);
      }
    }
    for (const s of pyCase.systems) {
      const { ms } = await ask<{ ms: number[] }>({ op: 'time', case: name, system: s, runs: RUNS });
      times.set(pyLabels[s], [...(times.get(pyLabels[s]) ?? []), ...ms]);
    }
  }
  await session.release();
  const ortMs = median(times.get('onnxruntime-node fp32')!);
  const pyBf16 = median(times.get('PyTorch autocast traced') ?? times.get('PyTorch autocast')!);
  console.log(`\nInference: vgg16, batch ${batch}, 224×224, ${ROUNDS} rounds × ${RUNS}, median ms`);
  console.log('| system | ms | × onnxruntime-node fp32 | × PyTorch bf16 (best of its two) |\n|---|---:|---:|---:|');
  for (const [label, ms] of times) {
    const m = median(ms);
    console.log(`| ${label} | ${m.toFixed(1)} | ${(m / ortMs).toFixed(2)} | ${(m / pyBf16).toFixed(2)} |`);
  }
  console.log(
    `bf16 vs fp32 on this input: vgg-torch compiled bf16 gives ${agreement.dtype} logits, top-1 ${agreement.top1 ? 'the same' : 'DIFFERENT'}, ` +
      `largest difference ${(agreement.maxRel * 100).toFixed(2)} % of the largest logit; PyTorch autocast: top-1 ${pyCase.top1_same ? 'the same' : 'DIFFERENT'}, ${(pyCase.max_rel * 100).toFixed(2)} %`,
  );
  if (batch === 1) console.log(`target compiled bf16 b1 ≤ 0.6× onnxruntime-node fp32: ${(median(times.get('vgg-torch compiled bf16')!) / ortMs).toFixed(2)}×`);
  model.dispose();
  x.dispose();
}

const t0 = performance.now();
setNumThreads(THREADS);
const { torch: pyTorch } = await ask<{ torch: string }>({ op: 'threads', n: THREADS });
const bf16 = backends.cpu.bf16Support();
console.log(machine());
console.log(`bench/amp — ${THREADS} threads; libtorch ${version.torch} (vgg-torch), PyTorch ${pyTorch}`);
console.log(`CPU bf16: ${bf16.native ? 'native' : 'not native'} (${bf16.reason}); ATen CPU capability ${backends.cpu.getCpuCapability()}`);
const rss = process.memoryUsage().rss;
try {
  if (TRAIN) await benchTraining();
  for (const c of CASES) await benchInference(c);
} finally {
  py.stdin!.end();
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `\nvgg-torch RSS ${mb(rss)} before, ${mb(process.memoryUsage().rss)} after; live tensors ${memory().tensors}; total ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
