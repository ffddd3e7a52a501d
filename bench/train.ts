// bench/train: training throughput of the CIFAR-10 tutorial's VGG, vgg-torch against
// PyTorch on the same libtorch, in one run. The step is the tutorial's (zeroGrad,
// forward, CrossEntropyLoss, backward, SGD(lr 0.005, momentum 0.9) step, loss.item()),
// timed over a few steps after 2 warm-up steps, at batch 128 and batch 512.
//
// Data: synthetic CIFAR-shaped tensors generated in memory before timing (manualSeed(777),
// then the model, then per batch randn(batch, 3, 32, 32) and randint(0, 10, [batch])),
// already split in batches: data loading is NOT measured (bench/data.ts measures it).
// bench/train.py is the same script in PyTorch (the tutorial's VGG class written out in
// torch.nn, the same torchvision-style init), run by /usr/bin/python3 as a child process
// with torch.set_num_threads equal to the thread count used here. Both sides clear the
// gradients to None (vgg-torch's default; PyTorch 1.13's zero_grad() zeroes them in place).
// Rounds alternate (vgg-torch, PyTorch, …) so machine drift hits both; medians are reported.
// Same seed, same init, same data: the first step's loss should match on both sides.
//
// Run: npx tsx bench/train.ts   (needs /usr/bin/python3 with torch)
// Env: THREADS (default: vgg-torch's getNumThreads()), ROUNDS (3), STEPS128 (4), STEPS512 (1), WARMUP (2).
// A step is slow on a small CPU (about 2.6 s at batch 128 and 12 s at batch 512 on 2 cores), and the
// first two steps are slower still on both sides (first allocations and first-use set-up), so the defaults time
// 512 images per batch size and round: about 5.5 minutes on a quiet 2-core machine (8 when it is busy).
// Raise STEPS128/STEPS512 on a bigger machine.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Tensor, getNumThreads, manualSeed, memory, nn, optim, randint, randn, setNumThreads, tidy, vggTutorial } from '../lib/index.js';
import { machine } from './machine.js';

const THREADS = Number(process.env.THREADS ?? getNumThreads());
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WARMUP = Number(process.env.WARMUP ?? 2);
const SEED = 777;
/** [batch, timed steps] */
const CONFIGS: [number, number][] = [
  [128, Number(process.env.STEPS128 ?? 4)],
  [512, Number(process.env.STEPS512 ?? 1)],
];

interface Result {
  batch: number;
  steps: number;
  seconds: number;
  images_per_s: number;
  first_loss: number;
  last_loss: number;
}

function train(batch: number, steps: number): Result {
  manualSeed(SEED);
  const model = vggTutorial();
  model.train();
  const criterion = new nn.CrossEntropyLoss();
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.005, momentum: 0.9 });
  const data: [Tensor, Tensor][] = Array.from({ length: WARMUP + steps }, () => [randn(batch, 3, 32, 32), randint(0, 10, [batch])]);
  const step = ([inputs, labels]: [Tensor, Tensor]): number =>
    tidy(() => {
      optimizer.zeroGrad();
      const outputs = model(inputs);
      const loss = criterion(outputs, labels);
      loss.backward();
      optimizer.step();
      return loss.item() as number;
    });
  try {
    const losses: number[] = [];
    for (let i = 0; i < WARMUP; i++) losses.push(step(data[i]));
    const t = performance.now();
    for (let i = WARMUP; i < WARMUP + steps; i++) losses.push(step(data[i]));
    const seconds = (performance.now() - t) / 1000;
    return { batch, steps, seconds, images_per_s: (batch * steps) / seconds, first_loss: losses[0], last_loss: losses.at(-1)! };
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

function python(): { torch: string; threads: number; results: Result[] } {
  const script = fileURLToPath(new URL('./train.py', import.meta.url));
  const spec = JSON.stringify({ threads: THREADS, seed: SEED, warmup: WARMUP, configs: CONFIGS });
  const r = spawnSync('/usr/bin/python3', [script, spec], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch side failed (is python3-torch installed?):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

const t0 = performance.now();
setNumThreads(THREADS);
const rssBefore = process.memoryUsage().rss;
const tensorsBefore = memory().tensors;
const js: Result[][] = CONFIGS.map(() => []);
const py: Result[][] = CONFIGS.map(() => []);
let torchVersion = '';
let pyThreads = 0;
for (let round = 0; round < ROUNDS; round++) {
  CONFIGS.forEach(([b, k], i) => js[i].push(train(b, k)));
  const p = python();
  torchVersion = p.torch;
  pyThreads = p.threads;
  p.results.forEach((r, i) => py[i].push(r));
  process.stderr.write(
    `round ${round + 1}/${ROUNDS} done (${((performance.now() - t0) / 1000).toFixed(0)} s, vgg-torch RSS ${mb(process.memoryUsage().rss)}, live tensors ${memory().tensors})\n`,
  );
}
const rssAfter = process.memoryUsage().rss;

console.log(machine());
console.log(`bench/train — CIFAR-10 tutorial VGG, one training step = zeroGrad + forward + CrossEntropyLoss + backward + SGD(momentum 0.9) step + loss.item()`);
console.log(
  `synthetic in-memory data (no data loading), ${WARMUP} warm-up steps, ${ROUNDS} interleaved rounds, medians; ` +
    `threads: vgg-torch ${getNumThreads()}, PyTorch ${torchVersion} ${pyThreads}`,
);
console.log(
  'ratio = vgg-torch / PyTorch images/s (higher is better, target ≥ 1.0); medians over rounds, and the best round of each side (less sensitive to load from other processes)\n',
);
console.log(
  '| batch | timed steps | vgg-torch (images/s) | PyTorch (images/s) | ratio | vgg-torch ms/step | PyTorch ms/step | best round: vgg-torch | best round: PyTorch | best ratio |',
);
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
CONFIGS.forEach(([b, k], i) => {
  const a = median(js[i].map((r) => r.images_per_s));
  const p = median(py[i].map((r) => r.images_per_s));
  const ab = Math.max(...js[i].map((r) => r.images_per_s));
  const pb = Math.max(...py[i].map((r) => r.images_per_s));
  console.log(
    `| ${b} | ${k} | ${a.toFixed(1)} | ${p.toFixed(1)} | ${(a / p).toFixed(3)} | ${((b / a) * 1000).toFixed(0)} | ${((b / p) * 1000).toFixed(0)} | ` +
      `${ab.toFixed(1)} | ${pb.toFixed(1)} | ${(ab / pb).toFixed(3)} |`,
  );
});
console.log('');
CONFIGS.forEach(([b], i) => {
  const f = (rs: Result[], key: 'first_loss' | 'last_loss') => rs.map((r) => r[key].toFixed(7)).join(', ');
  console.log(
    `loss, batch ${b}: first step vgg-torch [${f(js[i], 'first_loss')}] PyTorch [${f(py[i], 'first_loss')}]; ` +
      `last step vgg-torch [${f(js[i], 'last_loss')}] PyTorch [${f(py[i], 'last_loss')}] (one per round)`,
  );
});
CONFIGS.forEach(([b], i) => {
  const f = (rs: Result[]) => rs.map((r) => r.images_per_s.toFixed(1)).join(', ');
  console.log(`images/s per round, batch ${b}: vgg-torch [${f(js[i])}] PyTorch [${f(py[i])}]`);
});
console.log(`vgg-torch RSS: ${mb(rssBefore)} before, ${mb(rssAfter)} after; live tensors ${tensorsBefore} before, ${memory().tensors} after`);
console.log(`total run time ${((performance.now() - t0) / 1000).toFixed(1)} s`);
