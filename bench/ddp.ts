// bench/ddp: DistributedDataParallel throughput of the CIFAR-10 tutorial's VGG on one machine.
//   1 process × T threads, global batch B (plain model, no DDP)   against
//   N processes × floor(T / N) threads, batch B / N each (DDP over Gloo on 127.0.0.1),
// the same global batch, so the images/s are directly comparable. Each rank also times
// an allReduce of one float32 tensor as large as the tutorial VGG's parameters (the
// gradient volume DDP reduces per step). Synthetic data in memory (no loading measured);
// WARMUP steps are not timed (the first DDP iterations also rebuild the buckets).
//
// Run: npx tsx bench/ddp.ts
// Env: THREADS (default: all usable cores), NPROC (2), BATCH (global, 64), STEPS (4), WARMUP (2).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type Tensor, distributed, getNumThreads, manualSeed, nn, optim, randint, randn, setNumThreads, tidy, vggTutorial, zeros,
} from '../lib/index.js';

const THREADS = Number(process.env.THREADS ?? getNumThreads());
const NPROC = Number(process.env.NPROC ?? 2);
const BATCH = Number(process.env.BATCH ?? 64);
const STEPS = Number(process.env.STEPS ?? 4);
const WARMUP = Number(process.env.WARMUP ?? 2);

interface WorkerResult { rank: number; seconds: number; images: number; allreduceMs: number | null; params: number }

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
  const step = ([x, y]: [Tensor, Tensor]): void => tidy(() => {
    optimizer.zeroGrad();
    const loss = criterion.forward(model.forward(x), y);
    loss.backward();
    optimizer.step();
    loss.item();
  });
  for (let i = 0; i < WARMUP; i++) step(data[i]);
  if (world > 1) distributed.barrier();
  const t0 = performance.now();
  for (let i = WARMUP; i < data.length; i++) step(data[i]);
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
  const out: WorkerResult = { rank, seconds, images: batch * STEPS, allreduceMs, params };
  console.log(JSON.stringify(out));
}

function run(world: number, threads: number, port: number): Promise<WorkerResult[]> {
  const self = fileURLToPath(import.meta.url);
  return Promise.all(Array.from({ length: world }, (_, rank) => new Promise<WorkerResult>((resolve, reject) => {
    const env = {
      ...process.env, DDP_BENCH_WORKER: '1', RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(world),
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), BENCH_THREADS: String(threads), OMP_NUM_THREADS: String(threads),
    };
    const child = spawn(process.execPath, ['--import', 'tsx', self], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`rank ${rank} exited with ${code}`))));
  })));
}

async function main(): Promise<void> {
  const per = Math.max(1, Math.floor(THREADS / NPROC));
  const port = 29000 + Math.floor(Math.random() * 1000);
  const single = (await run(1, THREADS, port))[0];
  const ranks = await run(NPROC, per, port + 1);
  const ips1 = single.images / single.seconds;
  const ipsN = ranks.reduce((n, r) => n + r.images, 0) / Math.max(...ranks.map((r) => r.seconds));
  console.log(JSON.stringify({
    model: 'vggTutorial', params: single.params, global_batch: BATCH, steps: STEPS,
    single: { processes: 1, threads: THREADS, images_per_s: +ips1.toFixed(2) },
    ddp: { processes: NPROC, threads_each: per, images_per_s: +ipsN.toFixed(2), allreduce_ms: ranks.map((r) => r.allreduceMs) },
    ratio: +(ipsN / ips1).toFixed(3),
  }, null, 2));
}

if (process.env.DDP_BENCH_WORKER) worker();
else await main();
