// bench/data: the CIFAR-10 tutorial's training input pipeline, vgg-torch against
// torchvision on the same synthetic CIFAR-10-format files, on one core:
//   CIFAR10 + RandomCrop(32, padding 4) + RandomHorizontalFlip + ToTensor +
//   Normalize, DataLoader(batch 512, shuffle). Reports images/s of both and the ratio.
// With --vgg it also trains the tutorial VGG for a few steps with and without the
// loader (all cores), to show what the loader adds to a training step.
//
// Run: npx tsx bench/data.ts [--vgg]   (torchvision's side needs /usr/bin/python3 with torchvision)
// Env: IMAGES (default 10000), EPOCHS (best of, default 3), STEPS and ROUNDS (--vgg, default 4 and 3).
// The whole run is pinned to CPU 0 with taskset when taskset exists.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { F, getNumThreads, manualSeed, randint, randn, setNumThreads, tidy, vggTutorial } from '../lib/index.js';
import { CIFAR10, DataLoader } from '../lib/data/index.js';
import * as T from '../lib/transforms/index.js';
import { machine } from './machine.js';

const IMAGES = Number(process.env.IMAGES ?? 10_000);
const EPOCHS = Number(process.env.EPOCHS ?? 3);
const STEPS = Number(process.env.STEPS ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const VGG = process.argv.includes('--vgg');
const here = fileURLToPath(new URL('.', import.meta.url));
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

// One core for the loader comparison: re-run this script under taskset (the VGG part runs unpinned afterwards).
if (hasTaskset && !process.env.VGG_TORCH_BENCH_PINNED && !VGG) {
  const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, VGG_TORCH_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

/** CIFAR-10 binary layout, pseudo-random pixels: root/cifar-10-batches-bin/test_batch.bin. */
function writeData(root: string, n: number): void {
  mkdirSync(join(root, 'cifar-10-batches-bin'), { recursive: true });
  const buf = Buffer.alloc(n * 3073);
  let s = 12345;
  for (let i = 0; i < buf.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    buf[i] = i % 3073 === 0 ? (i / 3073) % 10 : s >>> 24;
  }
  writeFileSync(join(root, 'cifar-10-batches-bin', 'test_batch.bin'), buf);
}

const transform = () =>
  new T.Compose([
    new T.RandomCrop(32, { padding: 4 }),
    new T.RandomHorizontalFlip(),
    new T.ToTensor(),
    new T.Normalize([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]),
  ]);

/** Best-of-EPOCHS images/s of one loader configuration. */
function throughput(ds: CIFAR10, numWorkers: number): number {
  const loader = new DataLoader(ds, { batchSize: 512, shuffle: true, numWorkers });
  manualSeed(0);
  for (const [x, y] of loader) {
    // warm-up (and the worker's start)
    x.dispose();
    y.dispose();
  }
  let best = Infinity;
  for (let e = 0; e < EPOCHS; e++) {
    const t = performance.now();
    for (const [x, y] of loader) {
      x.dispose();
      y.dispose();
    }
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  return ds.length / best;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US').padStart(9);
}

const root = mkdtempSync(join(tmpdir(), 'vgg-torch-bench-data-'));
try {
  writeData(root, IMAGES);
  const ds = new CIFAR10({ root, train: false, transform: transform() });
  if (!VGG) {
    setNumThreads(1);
    console.log(machine());
    console.log(`CIFAR-10 format, ${IMAGES} images, RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, batch 512, shuffled`);
    console.log(`one core${hasTaskset ? ' (taskset -c 0)' : ' (taskset not found: not pinned)'}, 1 intra-op thread; best of ${EPOCHS} epochs\n`);
    const here0 = throughput(ds, 0);
    const worker = throughput(ds, 1);
    let tv: { imagesPerSecond: number; torchvision: string } | null = null;
    if (existsSync('/usr/bin/python3')) {
      const r = spawnSync('/usr/bin/python3', [join(here, 'data.py'), root, String(EPOCHS)], { encoding: 'utf8' });
      if (r.status === 0) tv = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      else console.log(`torchvision side failed: ${r.stderr.trim().split('\n').at(-1)}`);
    }
    console.log(`vgg-torch DataLoader, this thread (numWorkers 0)  ${fmt(here0)} images/s`);
    console.log(`vgg-torch DataLoader, worker thread (numWorkers 1)${fmt(worker)} images/s`);
    if (tv) {
      console.log(`torchvision ${tv.torchvision} DataLoader (num_workers=0)  ${fmt(tv.imagesPerSecond)} images/s`);
      console.log(
        `\nratio vgg-torch / torchvision: ${(here0 / tv.imagesPerSecond).toFixed(1)}× (this thread), ${(worker / tv.imagesPerSecond).toFixed(1)}× (worker)`,
      );
    }
  } else {
    // What the loader adds to training: the tutorial VGG, batch 128.
    const threads = getNumThreads();
    const model = vggTutorial();
    model.train();
    const batch = 128;
    const step = (x: import('../lib/index.js').Tensor, y: import('../lib/index.js').Tensor) =>
      tidy(() => {
        model.zeroGrad({ setToNone: true });
        F.crossEntropy(model(x), y).backward();
      });
    manualSeed(0);
    const x0 = randn(batch, 3, 32, 32);
    const y0 = randint(0, 10, [batch]);
    step(x0, y0); // warm-up
    // Rounds alternate STEPS steps on in-memory tensors with STEPS steps fed by the
    // loader (which prepares the next batches meanwhile), so machine drift hits both.
    const loader = new DataLoader(ds, { batchSize: batch, shuffle: true });
    const bareTimes: number[] = [];
    const loaderTimes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let t = performance.now();
      for (let i = 0; i < STEPS; i++) step(x0, y0);
      bareTimes.push((performance.now() - t) / STEPS);
      t = performance.now();
      let n = 0;
      for (const [x, y] of loader) {
        step(x, y);
        x.dispose();
        y.dispose();
        if (++n === STEPS) break;
      }
      loaderTimes.push((performance.now() - t) / STEPS);
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const bare = median(bareTimes);
    const withLoader = median(loaderTimes);
    console.log(
      `tutorial VGG training step (forward + backward), batch ${batch}, ${threads} intra-op threads, ${ROUNDS} alternating rounds of ${STEPS} steps, medians`,
    );
    console.log(`  tensors already in memory:      ${bare.toFixed(0).padStart(6)} ms/step`);
    console.log(`  from the augmenting DataLoader: ${withLoader.toFixed(0).padStart(6)} ms/step`);
    console.log(`  loader overhead: ${(((withLoader - bare) / bare) * 100).toFixed(1)} %`);
    x0.dispose();
    y0.dispose();
    model.dispose();
  }
  ds.dispose();
} finally {
  rmSync(root, { recursive: true, force: true });
}
