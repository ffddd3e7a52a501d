// bench/ddp: DistributedDataParallel throughput of the CIFAR-10 tutorial's VGG on one machine,
// vgg-torch and PyTorch (bench/ddp.py, /usr/bin/python3, the same libtorch) side by side:
//   1 process × T threads, global batch B (plain model, no DDP)   against
//   N processes × floor(T / N) threads, batch B / N each (DDP over Gloo on 127.0.0.1),
// the same global batch, so the images/s are directly comparable. Each rank also times
// an allReduce of one float32 tensor as large as the tutorial VGG's parameters (the
// gradient volume DDP reduces per step). Synthetic data in memory (no loading measured);
// WARMUP steps are not timed (the first DDP iterations also rebuild the buckets).
// Prints the ratios: N × T/N over 1 × T (target >= 0.95) for each, and vgg-torch over PyTorch, from
// the whole timed run and from the median step (steps vary by ±30 % on a 2-core machine).
//
// Run: npm run bench:ddp
// Env: THREADS (default: all usable cores), NPROC (2), BATCH (global, 64), STEPS (8), WARMUP (3),
//      PYTHON (/usr/bin/python3; 'none' skips the PyTorch side).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Tensor, distributed, getNumThreads, manualSeed, nn, optim, randint, randn, setNumThreads, tidy, vggTutorial, zeros } from '../lib/index.js';
import { machine } from './machine.js';

const THREADS = Number(process.env.THREADS ?? getNumThreads());
const NPROC = Number(process.env.NPROC ?? 2);
const BATCH = Number(process.env.BATCH ?? 64);
const STEPS = Number(process.env.STEPS ?? 8);
const WARMUP = Number(process.env.WARMUP ?? 3);
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';

interface WorkerResult {
  rank: number;
  seconds: number;
  images: number;
  allreduceMs: number | null;
  params: number;
  stepMs: number[];
}

/** One rank (or the single process): prints a WorkerResult. */
function worker(): void {
  const rank = Number(process.env.RANK ?? 0);
  const world = Number(process.env.WORLD_SIZE ?? 1);
  setNumThreads(Number(process.env.BENCH_THREADS));
  if (world > 1) distributed.initProcessGroup({ timeout: 120_000 });
  manualSeed(777);
  const net = vggTutorial();
  const params = [...net.parameters()].reduce((n, p) => n + p.numel(), 0);
  const model = world > 1 ? new nn.parallel.DistributedDataParallel(net) : net;
  const criterion = new nn.CrossEntropyLoss();
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.005, momentum: 0.9 });
  const batch = BATCH / world;
  manualSeed(1000 + rank);
  const data: [Tensor, Tensor][] = Array.from({ length: WARMUP + STEPS }, () => [randn(batch, 3, 32, 32), randint(0, 10, [batch])]);
  const step = ([x, y]: [Tensor, Tensor]): void =>
    tidy(() => {
      optimizer.zeroGrad();
      const loss = criterion(model(x), y);
      loss.backward();
      optimizer.step();
      loss.item();
    });
  for (let i = 0; i < WARMUP; i++) step(data[i]);
  if (world > 1) distributed.barrier();
  const t0 = performance.now();
  const stepMs: number[] = [];
  for (let i = WARMUP; i < data.length; i++) {
    const a = performance.now();
    step(data[i]);
    stepMs.push(performance.now() - a);
  }
  if (world > 1) distributed.barrier();
  const seconds = (performance.now() - t0) / 1000;
  let allreduceMs: number | null = null;
  if (world > 1) {
    const flat = zeros([params]);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      distributed.barrier();
      const a = performance.now();
      distributed.allReduce(flat);
      times.push(performance.now() - a);
    }
    allreduceMs = times.sort((a, b) => a - b)[1];
    distributed.destroyProcessGroup();
  }
  const out: WorkerResult = { rank, seconds, images: batch * STEPS, allreduceMs, params, stepMs };
  console.log(JSON.stringify(out));
}

/** `world` ranks of vgg-torch (this file) or of PyTorch (bench/ddp.py). */
function run(side: 'vgg-torch' | 'pytorch', world: number, threads: number, port: number): Promise<WorkerResult[]> {
  const self = fileURLToPath(import.meta.url);
  const [cmd, args] = side === 'vgg-torch' ? [process.execPath, ['--import', 'tsx', self]] : [PYTHON, [fileURLToPath(new URL('ddp.py', import.meta.url))]];
  return Promise.all(
    Array.from(
      { length: world },
      (_, rank) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const env = {
            ...process.env,
            DDP_BENCH_WORKER: '1',
            RANK: String(rank),
            LOCAL_RANK: String(rank),
            WORLD_SIZE: String(world),
            MASTER_ADDR: '127.0.0.1',
            MASTER_PORT: String(port),
            BENCH_THREADS: String(threads),
            OMP_NUM_THREADS: String(threads),
            BATCH: String(BATCH),
            STEPS: String(STEPS),
            WARMUP: String(WARMUP),
          };
          const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.on('close', (code) =>
            code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`rank ${rank} exited with ${code}`)),
          );
        }),
    ),
  );
}

/** One side's two layouts: images/s of each, the allreduce times, and N × T/N over 1 × T. */
async function measure(side: 'vgg-torch' | 'pytorch', port: number) {
  const per = Math.max(1, Math.floor(THREADS / NPROC));
  const single = (await run(side, 1, THREADS, port))[0];
  const ranks = await run(side, NPROC, per, port + 1);
  const ips1 = single.images / single.seconds;
  const ipsN = ranks.reduce((n, r) => n + r.images, 0) / Math.max(...ranks.map((r) => r.seconds));
  // From the median step: the slowest rank's median sets the pace.
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const med1 = (1000 * BATCH) / median(single.stepMs);
  const medN = (1000 * BATCH) / Math.max(...ranks.map((r) => median(r.stepMs)));
  return {
    params: single.params,
    single: { processes: 1, threads: THREADS, images_per_s: +ips1.toFixed(2), median_step_images_per_s: +med1.toFixed(2) },
    ddp: {
      processes: NPROC,
      threads_each: per,
      images_per_s: +ipsN.toFixed(2),
      median_step_images_per_s: +medN.toFixed(2),
      allreduce_ms: ranks.map((r) => Math.round(r.allreduceMs ?? 0)),
    },
    ddp_over_single: +(ipsN / ips1).toFixed(3),
    ddp_over_single_median_step: +(medN / med1).toFixed(3),
  };
}

async function main(): Promise<void> {
  const port = 29000 + Math.floor(Math.random() * 1000);
  const ours = await measure('vgg-torch', port);
  const theirs = PYTHON !== 'none' && existsSync(PYTHON) ? await measure('pytorch', port + 2) : null;
  console.log(
    JSON.stringify(
      {
        machine: machine(),
        model: 'vggTutorial',
        params: ours.params,
        global_batch: BATCH,
        steps: STEPS,
        'vgg-torch': ours,
        pytorch: theirs,
        'vgg-torch_over_pytorch': theirs && {
          single: +(ours.single.images_per_s / theirs.single.images_per_s).toFixed(3),
          ddp: +(ours.ddp.images_per_s / theirs.ddp.images_per_s).toFixed(3),
          ddp_median_step: +(ours.ddp.median_step_images_per_s / theirs.ddp.median_step_images_per_s).toFixed(3),
        },
      },
      null,
      2,
    ),
  );
}

if (process.env.DDP_BENCH_WORKER) worker();
else await main();
