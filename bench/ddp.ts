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
// LINK=1gbit: instead, two hosts in network namespaces joined by a veth pair shaped to that rate
// (test/netns.ts: tbf, plus netem's delay where the kernel has it; needs root), one rank on each, and
// for each comm hook (plain allreduce, fp16 and bf16 compression, PowerSGD rank POWERSGD_RANK) the
// median step time and the bytes each host sent per step (its interface's counters), vgg-torch and
// PyTorch side by side; then (ACCURACY=1, the default) the accuracy cost of each hook on the main
// job's recipe (examples/fashion-mnist.ts: tutorial VGG with BN, Fashion-MNIST) trained by 2 ranks on
// loopback. A hook this libtorch cannot run (bf16 on Gloo before 2.2) is reported, not measured.
//
// Run: npm run bench:ddp            LINK=1gbit npm run bench:ddp   (as root)
// Env: THREADS (default: all usable cores), NPROC (2), BATCH (global, 64), STEPS (8), WARMUP (3),
//      PYTHON (/usr/bin/python3; 'none' skips the PyTorch side); with LINK: HOOKS
//      (allreduce,fp16,bf16,powersgd), POWERSGD_RANK (4), ACCURACY (1), EPOCHS (2), TRAIN_IMAGES (3072).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  DataLoader,
  DistributedSampler,
  FashionMNIST,
  Subset,
  type Tensor,
  distributed,
  getNumThreads,
  manualSeed,
  nn,
  optim,
  randint,
  randn,
  setNumThreads,
  tidy,
  train,
  transforms,
  version,
  vggTutorial,
  zeros,
} from '../lib/index.js';
import { type Host, makeHosts, netnsUnavailable } from '../test/netns.js';
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
  /** Bytes this rank's host sent over the timed steps (on the shaped link), else null. */
  txBytes: number | null;
}

type Hook = 'allreduce' | 'fp16' | 'bf16' | 'powersgd';

/** Bytes this host has sent on its interface (inside its namespace), or null off the shaped link. */
function txBytes(): number | null {
  const iface = process.env.GLOO_SOCKET_IFNAME;
  return iface ? Number(readFileSync(`/sys/class/net/${iface}/statistics/tx_bytes`, 'utf8')) : null;
}

/** Registers HOOK on a DDP model, as bench/ddp.py registers PyTorch's own. */
function registerHook(model: nn.parallel.DistributedDataParallel, hook: Hook): void {
  const hooks = distributed.algorithms.ddpCommHooks;
  if (hook === 'fp16') model.registerCommHook(null, hooks.defaultHooks.fp16CompressHook);
  else if (hook === 'bf16') model.registerCommHook(null, hooks.defaultHooks.bf16CompressHook);
  else if (hook === 'powersgd') {
    const state = new hooks.powerSGD.PowerSGDState(null, { matrixApproximationRank: Number(process.env.POWERSGD_RANK), startPowerSGDIter: 2 });
    model.registerCommHook(state, hooks.powerSGD.powerSGDHook);
  } else if (hook !== 'allreduce') throw new Error(`unknown HOOK ${hook}`);
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
  if (model instanceof nn.parallel.DistributedDataParallel) registerHook(model, (process.env.HOOK ?? 'allreduce') as Hook);
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
  const sent = txBytes();
  const t0 = performance.now();
  const stepMs: number[] = [];
  for (let i = WARMUP; i < data.length; i++) {
    const a = performance.now();
    step(data[i]);
    stepMs.push(performance.now() - a);
  }
  if (world > 1) distributed.barrier();
  const seconds = (performance.now() - t0) / 1000;
  const after = txBytes();
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
  const out: WorkerResult = {
    rank,
    seconds,
    images: batch * STEPS,
    allreduceMs,
    params,
    stepMs,
    txBytes: sent === null || after === null ? null : after - sent,
  };
  console.log(JSON.stringify(out));
}

/**
 * `world` ranks of vgg-torch (this file) or of PyTorch (bench/ddp.py); on `hosts` (one rank each,
 * rendezvous at the first host's address) when given, else on 127.0.0.1.
 */
function run(
  side: 'vgg-torch' | 'pytorch',
  world: number,
  threads: number,
  port: number,
  hosts: Host[] | null = null,
  extra: Record<string, string> = {},
): Promise<WorkerResult[]> {
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
            MASTER_ADDR: hosts ? hosts[0].addr : '127.0.0.1',
            MASTER_PORT: String(port),
            BENCH_THREADS: String(threads),
            OMP_NUM_THREADS: String(threads),
            BATCH: String(BATCH),
            STEPS: String(STEPS),
            WARMUP: String(WARMUP),
            ...extra,
          };
          const opts = { env, stdio: ['ignore', 'pipe', 'inherit'] as ('ignore' | 'pipe' | 'inherit')[] };
          const child = hosts ? hosts[rank].spawn(cmd, args, opts) : spawn(cmd, args, opts);
          let out = '';
          child.stdout!.on('data', (d) => (out += d));
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

const LINK = process.env.LINK;
const HOOKS = (process.env.HOOKS ?? 'allreduce,fp16,bf16,powersgd').split(',') as Hook[];
const POWERSGD_RANK = process.env.POWERSGD_RANK ?? '4';

/** Why this libtorch cannot run `hook` over Gloo, or null. */
function cannotRun(hook: Hook): string | null {
  const [major, minor] = version.torch.split('.').map(Number);
  return hook === 'bf16' && major * 100 + minor < 202 ? `Gloo reduces bfloat16 from libtorch 2.2; this is ${version.torch}` : null;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Each hook on the shaped link: the slowest rank's median step and the bytes both hosts sent per step. */
async function linkBench(port: number) {
  const why = netnsUnavailable();
  if (why) throw new Error(`LINK=${LINK} needs network namespaces: ${why}`);
  const net = makeHosts(2, { rate: LINK });
  const per = Math.max(1, Math.floor(THREADS / 2));
  const python = PYTHON !== 'none' && existsSync(PYTHON);
  const rows: Record<string, unknown>[] = [];
  const summary = (ranks: WorkerResult[]) => ({
    step_ms: Math.round(Math.max(...ranks.map((r) => median(r.stepMs)))),
    mb_sent_per_step: +(ranks.reduce((n, r) => n + (r.txBytes ?? 0), 0) / STEPS / 1e6).toFixed(2),
  });
  try {
    for (const hook of HOOKS) {
      const why = cannotRun(hook);
      if (why) {
        rows.push({ hook, skipped: why });
        continue;
      }
      const extra = { HOOK: hook, POWERSGD_RANK };
      // A side that fails (PyTorch's powerSGD_hook issues its allreduces from future callbacks, and
      // Gloo needs every rank to issue collectives in one order) is reported with its error.
      const side = async (which: 'vgg-torch' | 'pytorch') => {
        try {
          return summary(await run(which, 2, per, port++, net.hosts, extra));
        } catch (e) {
          return { failed: (e as Error).message };
        }
      };
      const ours = await side('vgg-torch');
      const theirs = python ? await side('pytorch') : null;
      rows.push({ hook: hook === 'powersgd' ? `powersgd rank ${POWERSGD_RANK}` : hook, 'vgg-torch': ours, pytorch: theirs });
      console.error(`bench:ddp link: ${JSON.stringify(rows.at(-1))}`);
    }
  } finally {
    net.destroy();
  }
  // Ratios against plain allreduce (bytes, step time) and against PyTorch with the same hook.
  type Summary = ReturnType<typeof summary>;
  const measured = (x: unknown): x is Summary => typeof x === 'object' && x !== null && 'step_ms' in x;
  const plain = rows.find((r) => r.hook === 'allreduce')?.['vgg-torch'];
  for (const r of rows) {
    const [ours, theirs] = [r['vgg-torch'], r.pytorch];
    if (!measured(ours)) continue;
    if (measured(plain)) {
      r.bytes_vs_allreduce = +(ours.mb_sent_per_step / plain.mb_sent_per_step).toFixed(3);
      r.step_vs_allreduce = +(ours.step_ms / plain.step_ms).toFixed(3);
    }
    if (measured(theirs)) r['step_vgg-torch_over_pytorch'] = +(ours.step_ms / theirs.step_ms).toFixed(3);
  }
  return { link: `${net.shaping}, one rank per host, ${per} thread${per > 1 ? 's' : ''} each`, rows };
}

/** One rank of the main job's recipe under DDP with HOOK (loopback); rank 0 prints the test accuracy. */
async function accuracyWorker(): Promise<void> {
  const rank = Number(process.env.RANK);
  setNumThreads(Number(process.env.BENCH_THREADS));
  distributed.initProcessGroup({ timeout: 300_000 });
  const images = Number(process.env.TRAIN_IMAGES ?? 3072);
  manualSeed(777);
  const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])]);
  const first = (n: number) => Array.from({ length: n }, (_, i) => i);
  const trainSet = new Subset(new FashionMNIST({ train: true, transform }), first(images));
  const testSet = new Subset(new FashionMNIST({ train: false, transform }), first(1000));
  const net = vggTutorial({ batchNorm: true, inChannels: 1, inputSize: [28, 28] });
  const model = new nn.parallel.DistributedDataParallel(net);
  registerHook(model, process.env.HOOK as Hook);
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const result = await train.fit({
    model,
    optimizer,
    scheduler: new optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 }),
    trainLoader: new DataLoader(trainSet, { batchSize: 32, sampler: new DistributedSampler(trainSet, { seed: 777 }) }),
    testLoader: new DataLoader(testSet, { batchSize: 250 }),
    epochs: Number(process.env.EPOCHS ?? 2),
    stream: { write: () => true } as unknown as NodeJS.WritableStream,
    handleSignals: false,
  });
  if (rank === 0) console.log(JSON.stringify({ accuracy: result.evaluation!.accuracy }));
  distributed.destroyProcessGroup();
}

/** The main job's test accuracy after training with each hook (2 ranks, loopback, fp32). */
async function accuracyBench(port: number) {
  const self = fileURLToPath(import.meta.url);
  const out: Record<string, number | string> = {};
  for (const hook of HOOKS) {
    const why = cannotRun(hook);
    if (why) {
      out[hook] = `skipped: ${why}`;
      continue;
    }
    const started = performance.now();
    const outputs = await Promise.all(
      [0, 1].map(
        (rank) =>
          new Promise<string>((resolve, reject) => {
            const env = {
              ...process.env,
              DDP_ACCURACY_WORKER: '1',
              HOOK: hook,
              POWERSGD_RANK,
              RANK: String(rank),
              WORLD_SIZE: '2',
              MASTER_ADDR: '127.0.0.1',
              MASTER_PORT: String(port),
              BENCH_THREADS: String(Math.max(1, Math.floor(THREADS / 2))),
            };
            const child = spawn(process.execPath, ['--import', 'tsx', self], { env, stdio: ['ignore', 'pipe', 'inherit'] });
            let text = '';
            child.stdout.on('data', (d) => (text += d));
            child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`accuracy rank ${rank} (${hook}) exited with ${code}`))));
          }),
      ),
    );
    port++;
    const { accuracy } = JSON.parse(outputs[0].trim().split('\n').pop()!) as { accuracy: number };
    out[hook === 'powersgd' ? `powersgd rank ${POWERSGD_RANK}` : hook] = +accuracy.toFixed(1);
    console.error(`bench:ddp accuracy: ${hook} ${accuracy.toFixed(1)} % (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  return out;
}

async function mainLink(): Promise<void> {
  const port = 29000 + Math.floor(Math.random() * 1000);
  const link = await linkBench(port);
  const accuracy = process.env.ACCURACY === '0' ? null : await accuracyBench(port + 100);
  console.log(
    JSON.stringify(
      {
        machine: machine(),
        model: 'vggTutorial',
        per_rank_batch: BATCH / 2,
        steps: STEPS,
        ...link,
        main_job_accuracy_percent: accuracy && {
          recipe: `examples/fashion-mnist.ts (tutorial VGG with BN, ${process.env.TRAIN_IMAGES ?? 3072} images, ${process.env.EPOCHS ?? 2} epochs, global batch 64, fp32), 2 ranks on loopback, 1000 test images`,
          ...accuracy,
        },
      },
      null,
      2,
    ),
  );
}

if (process.env.DDP_BENCH_WORKER) worker();
else if (process.env.DDP_ACCURACY_WORKER) await accuracyWorker();
else if (LINK) await mainLink();
else await main();
