// nn.parallel.DistributedDataParallel: 2 ranks × batch 32 equal 1 process × batch 64.
// The model is a small conv net without dropout or BatchNorm (both would make the
// two set-ups differ by design): Conv2d(3,4,3) → ReLU → MaxPool2d(2) → Flatten → Linear(64,10).
import { describe, expect, it } from 'vitest';
import { distributed } from '../lib/index.js';
import { type ChildResult, hasTorchPython, python, requireLiveOracle, runNodeChild } from './helpers.js';
import { freePort, pythonRankEnv } from './distributed-helpers.js';

function result<T>(r: ChildResult): T {
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** WORLD 1: the single-process reference; WORLD 2: one DDP rank. */
const script = (port: number, rank: number, world: number): string => `
  const vt = await import(LIB);
  const { nn, optim } = vt;
  const RANK = ${rank}, WORLD = ${world};
  if (WORLD > 1) vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: RANK, worldSize: WORLD, timeout: 20000 });
  const v = (t) => Array.from(t.contiguous().toTypedArray());
  vt.manualSeed(1 + 100 * RANK); // rank 1 starts from other weights: DDP must copy rank 0's
  const net = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Linear(64, 10));
  // tiny buckets: several allreduces per backward
  const model = WORLD > 1 ? new nn.parallel.DistributedDataParallel(net, { bucketCapMb: 0.0005 }) : net;
  vt.manualSeed(0);
  const X = vt.randn([6, 64, 3, 8, 8]);
  const Y = vt.randint(0, 10, [6, 64]);
  const mine = (t) => (WORLD > 1 ? t.narrow(0, RANK * 32, 32) : t);
  const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const lossFn = new nn.CrossEntropyLoss();
  const out = { losses: [] };
  for (let step = 0; step < 5; step++) {
    opt.zeroGrad();
    const loss = lossFn(model(mine(X.select(0, step))), mine(Y.select(0, step)));
    loss.backward();
    opt.step();
    out.losses.push(loss.item());
  }
  out.params = [...net.parameters()].map(v);
  // gradient accumulation: the first half without communication, the second synced
  opt.zeroGrad();
  const x5 = mine(X.select(0, 5)), y5 = mine(Y.select(0, 5));
  if (WORLD > 1) {
    model.noSync(() => lossFn(model(x5.narrow(0, 0, 16)), y5.narrow(0, 0, 16)).mul(0.5).backward());
    out.localGrad = v(net.at(4).weight.grad);
    lossFn(model(x5.narrow(0, 16, 16)), y5.narrow(0, 16, 16)).mul(0.5).backward();
  } else {
    lossFn(model(x5), y5).backward();
  }
  out.grads = [...net.parameters()].map((p) => v(p.grad));
  out.keys = [...model.stateDict().keys()];
  if (WORLD > 1) {
    // buffers: rank 0's BatchNorm statistics are copied to every rank before each forward
    vt.manualSeed(5 + RANK);
    const bn = new nn.Sequential(new nn.Conv2d(3, 2, 3), new nn.BatchNorm2d(2), new nn.Flatten(), new nn.Linear(72, 3));
    const ddp = new nn.parallel.DistributedDataParallel(bn);
    const xb = vt.randn([4, 3, 8, 8]).add(RANK * 3); // different data per rank
    ddp(xb).sum().backward();
    out.meanAfterTrain = v(bn.at(1).runningMean);
    ddp.eval();
    vt.noGrad(() => ddp(xb));
    out.meanAfterEvalForward = v(bn.at(1).runningMean);
  }
  console.log(JSON.stringify(out));
`;

/**
 * Equal to `rel` relative to the tensor's scale: |a_i − b_i| ≤ rel · max_j |b_j|. Per element
 * it cannot be: batch 64 and 2 × 32 sum in another order, and five momentum steps carry a few
 * float32 ulps (1e-6 of the largest weight) into weights 100× smaller than the largest.
 */
const close = (a: number[], b: number[], rel: number): void => {
  expect(a.length).toBe(b.length);
  const scale = Math.max(...b.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  expect(worst / scale).toBeLessThanOrEqual(rel);
};

describe.skipIf(!distributed.isAvailable())('DistributedDataParallel (gloo, 2 ranks on 127.0.0.1)', () => {
  it('2 ranks × batch 32 give the weights of 1 process × batch 64 after 5 SGD steps; noSync accumulates; buffers follow rank 0', async () => {
    const port = await freePort();
    type Out = {
      losses: number[];
      params: number[][];
      grads: number[][];
      keys: string[];
      localGrad?: number[];
      meanAfterTrain?: number[];
      meanAfterEvalForward?: number[];
    };
    const [ref, r0, r1] = (
      await Promise.all([
        runNodeChild(script(0, 0, 1), { timeoutMs: 90_000 }),
        runNodeChild(script(port, 0, 2), { timeoutMs: 90_000 }),
        runNodeChild(script(port, 1, 2), { timeoutMs: 90_000 }),
      ])
    ).map((r) => result<Out>(r));
    // the ranks agree exactly: the same averaged gradients, the same SGD
    expect(r1.params).toEqual(r0.params);
    expect(r1.grads).toEqual(r0.grads);
    // and equal the single process: loss of 64 = mean of the ranks' losses of 32
    close(
      r0.losses.map((l, i) => (l + r1.losses[i]) / 2),
      ref.losses,
      1e-6,
    );
    ref.params.forEach((p, i) => close(r0.params[i], p, 1e-6));
    ref.grads.forEach((g, i) => close(r0.grads[i], g, 1e-5));
    // inside noSync each rank kept its own gradient
    expect(r0.localGrad).not.toEqual(r1.localGrad);
    expect(r0.keys).toEqual(ref.keys.map((k) => `module.${k}`));
    expect(r0.meanAfterTrain).not.toEqual(r1.meanAfterTrain);
    expect(r1.meanAfterEvalForward).toEqual(r0.meanAfterEvalForward);
    expect(r0.meanAfterEvalForward).toEqual(r0.meanAfterTrain);
  }, 120_000);
});

describe.skipIf(!distributed.isAvailable() || (!hasTorchPython && !requireLiveOracle))('DistributedDataParallel with a Python rank', () => {
  it('a vgg-torch DDP rank and a torch DDP rank train to the same weights', async () => {
    const port = await freePort();
    // Same architecture in both languages; the Python rank's own initial weights are
    // overwritten by rank 0's (vgg-torch) at construction.
    const js = runNodeChild(
      `
      const vt = await import(LIB);
      const { nn, optim } = vt;
      vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: 0, worldSize: 2, timeout: 20000 });
      vt.manualSeed(3);
      const net = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.Flatten(), new nn.Linear(4 * 6 * 6, 5));
      const ddp = new nn.parallel.DistributedDataParallel(net, { bucketCapMb: 0.001 });
      const opt = new optim.SGD(ddp.parameters(), { lr: 0.05 });
      for (let step = 0; step < 3; step++) {
        vt.manualSeed(10 + step);
        const x = vt.randn([8, 3, 6, 6]); const y = vt.randint(0, 5, [8]);
        opt.zeroGrad();
        vt.nn.functional.crossEntropy(ddp(x), y).backward();
        opt.step();
      }
      console.log(JSON.stringify([...net.parameters()].map((p) => Array.from(p.contiguous().toTypedArray()))));
    `,
      { timeoutMs: 60_000 },
    );
    const py = python(
      [
        '-c',
        `
import torch, torch.distributed as dist, torch.nn as nn, json, datetime
from torch.nn.parallel import DistributedDataParallel as DDP
dist.init_process_group('gloo', init_method='tcp://127.0.0.1:${port}', rank=1, world_size=2, timeout=datetime.timedelta(seconds=20))
torch.manual_seed(99)
net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
ddp = DDP(net, bucket_cap_mb=0.001)
opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
for step in range(3):
    torch.manual_seed(20 + step)
    x = torch.randn(8, 3, 6, 6); y = torch.randint(0, 5, (8,))
    opt.zero_grad()
    nn.functional.cross_entropy(ddp(x), y).backward()
    opt.step()
print(json.dumps([p.detach().flatten().tolist() for p in net.parameters()]))
`,
      ],
      { timeoutMs: 60_000, env: pythonRankEnv() },
    );
    const [a, b] = await Promise.all([js, py]);
    const wa = result<number[][]>(a);
    const wb = result<number[][]>(b);
    expect(wa.length).toBe(4);
    expect(wa).toEqual(wb); // the same averaged gradients and the same SGD on both sides: bitwise
  }, 90_000);
});
