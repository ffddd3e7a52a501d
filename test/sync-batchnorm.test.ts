// nn.SyncBatchNorm: 2 ranks × batch 8 normalise as 1 process × batch 16; a Python rank running
// PyTorch's own SyncBatchNorm autograd Function joins the group; convertSyncBatchnorm; errors.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cfgs, distributed, makeLayers, nn, noGrad, randn, tensor } from '../lib/index.js';
import { type ChildResult, hasTorchPython, python, requireLiveOracle, runNodeChild } from './helpers.js';
import { freePort, pythonRankEnv } from './distributed-helpers.js';

function result<T>(r: ChildResult): T {
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/**
 * |a_i − b_i| ≤ rel · max_j |b_j|. The two set-ups reduce in another order: libtorch's CPU batch
 * norm sums 16·25 values per channel in one pass, SyncBatchNorm sums each rank's 8·25 and merges
 * (count, mean, M2) across ranks. Float32 sums of a few hundred terms then differ by one to three
 * ulps of the largest value (measured: ≤ 9e-8 relative on libtorch 1.13, ≤ 2.8e-7 on 2.6, whose
 * kernels vectorise differently); the bound, 2e-6, is 16 ulps. Four momentum-SGD steps of the VGG
 * compound that (measured ≤ 3.7e-7 on 2.6): 4e-6 there.
 */
const close = (a: ArrayLike<number>, b: ArrayLike<number>, rel: number): void => {
  expect(a.length).toBe(b.length);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  expect(worst / scale).toBeLessThanOrEqual(rel);
};

/** WORLD 1: plain BatchNorm2d at batch 16; WORLD 2: SyncBatchNorm, this rank's 8. */
const layerScript = (port: number, rank: number, world: number): string => `
  const vt = await import(LIB);
  const { nn } = vt;
  const RANK = ${rank}, WORLD = ${world};
  if (WORLD > 1) vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: RANK, worldSize: WORLD, timeout: 20000 });
  const v = (t) => Array.from(t.contiguous().toTypedArray());
  const mine = (t) => (WORLD > 1 ? t.narrow(0, RANK * 8, 8) : t);
  vt.manualSeed(0);
  const X = vt.randn([3, 16, 3, 5, 5]).mul(2).add(1);
  const G = vt.randn([3, 16, 3, 5, 5]);
  const out = { steps: [] };
  for (const momentum of [0.1, null]) {
    const bn = WORLD > 1 ? new nn.SyncBatchNorm(3, { momentum }) : new nn.BatchNorm2d(3, { momentum });
    vt.noGrad(() => { bn.weight.copy_(vt.tensor([1.5, 0.5, -1])); bn.bias.copy_(vt.tensor([0.1, 0.2, 0.3])); });
    let before;
    for (let step = 0; step < 3; step++) {
      if (step === 1) before = vt.memory().tensors;
      bn.weight.grad = null; bn.bias.grad = null;
      vt.tidy(() => {
        const x = mine(X.select(0, step)).clone().requiresGrad_();
        const y = bn(x);
        y.backward(mine(G.select(0, step)));
        out.steps.push({ y: v(y), gx: v(x.grad), gw: v(bn.weight.grad), gb: v(bn.bias.grad), rm: v(bn.runningMean), rv: v(bn.runningVar), n: Number(bn.numBatchesTracked.item()) });
      });
    }
    bn.weight.grad = null; bn.bias.grad = null;
    out.leaked = vt.memory().tensors - before;
    // eval mode normalises with the running statistics, without communication
    bn.eval();
    out.steps.push({ evalY: v(vt.noGrad(() => bn(mine(X.select(0, 0))))) });
  }
  const bn = WORLD > 1 ? new nn.SyncBatchNorm(3) : new nn.BatchNorm2d(3);
  // an input that needs no gradient: the weight's and bias's only, and no allReduce in the backward
  vt.tidy(() => {
    bn(mine(X.select(0, 1))).backward(mine(G.select(0, 1)));
    out.noInputGrad = { gw: v(bn.weight.grad), gb: v(bn.bias.grad) };
  });
  // an empty rank: rank 1 brings no rows, so the group normalises rank 0's 16 alone
  bn.weight.grad = null; bn.bias.grad = null;
  vt.tidy(() => {
    const rows = WORLD > 1 && RANK === 1 ? 0 : 16;
    const x = X.select(0, 2).narrow(0, 0, rows).clone().requiresGrad_();
    const y = bn(x);
    y.backward(G.select(0, 2).narrow(0, 0, rows));
    out.empty = { y: v(y), gx: v(x.grad), gw: v(bn.weight.grad), rm: v(bn.runningMean), rv: v(bn.runningVar) };
  });
  console.log(JSON.stringify(out));
`;

/** A small VGG-BN (torchvision's make_layers with BatchNorm, 8×8 input, no dropout), 4 SGD steps. */
const vggScript = (port: number, rank: number, world: number, file: string): string => `
  const vt = await import(LIB);
  const { nn, optim } = vt;
  const RANK = ${rank}, WORLD = ${world};
  if (WORLD > 1) vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: RANK, worldSize: WORLD, timeout: 20000 });
  const v = (t) => Array.from(t.contiguous().toTypedArray());
  vt.manualSeed(7 + 100 * RANK); // rank 1 starts from other weights: DDP copies rank 0's
  const net = new vt.VGG(vt.makeLayers([4, 'M', 8, 'M'], { batchNorm: true }), { numClasses: 3, avgpool: false, inputSize: [8, 8], dropout: 0 });
  const model = WORLD > 1 ? new nn.parallel.DistributedDataParallel(nn.SyncBatchNorm.convertSyncBatchnorm(net)) : net;
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  vt.manualSeed(1);
  const X = vt.randn([4, 16, 3, 8, 8]);
  const Y = vt.randint(0, 3, [4, 16]);
  const mine = (t) => (WORLD > 1 ? t.narrow(0, RANK * 8, 8) : t);
  const losses = [];
  for (let step = 0; step < 4; step++) {
    opt.zeroGrad();
    const loss = vt.nn.functional.crossEntropy(model(mine(X.select(0, step))), mine(Y.select(0, step)));
    loss.backward();
    opt.step();
    losses.push(loss.item());
  }
  const kinds = [...net.modules()].map((m) => m.constructor.name).filter((n) => n.includes('BatchNorm'));
  // the classifier's 4096² weights go through a file: as JSON they would take longer than the training
  const params = [...net.parameters()];
  const { writeFileSync } = await import('node:fs');
  writeFileSync(${JSON.stringify(file)}, vt.cat(params.map((p) => p.detach().reshape(-1))).toTypedArray());
  console.log(JSON.stringify({ losses, kinds, sizes: params.map((p) => p.numel()), buffers: [...net.buffers()].map((b) => v(b.to('float64'))) }));
`;

describe.skipIf(!distributed.isAvailable())('SyncBatchNorm (gloo, 2 ranks on 127.0.0.1)', () => {
  it('2 ranks × batch 8 give the outputs, gradients and running statistics of BatchNorm2d at batch 16', async () => {
    const port = await freePort();
    type Step = { y: number[]; gx: number[]; gw: number[]; gb: number[]; rm: number[]; rv: number[]; n: number; evalY?: number[] };
    type Grads = { gw: number[]; gb: number[] };
    type Empty = { y: number[]; gx: number[]; gw: number[]; rm: number[]; rv: number[] };
    type Out = { steps: Step[]; leaked: number; noInputGrad: Grads; empty: Empty };
    const [ref, r0, r1] = (
      await Promise.all([
        runNodeChild(layerScript(0, 0, 1), { timeoutMs: 120_000 }),
        runNodeChild(layerScript(port, 0, 2), { timeoutMs: 120_000 }),
        runNodeChild(layerScript(port, 1, 2), { timeoutMs: 120_000 }),
      ])
    ).map((r) => result<Out>(r));
    expect(ref.steps.length).toBe(8);
    ref.steps.forEach((s, i) => {
      const [a, b] = [r0.steps[i], r1.steps[i]];
      if (s.evalY) {
        close([...a.evalY!, ...b.evalY!], s.evalY, 2e-6);
        return;
      }
      // each rank holds its half of the batch
      close([...a.y, ...b.y], s.y, 2e-6);
      close([...a.gx, ...b.gx], s.gx, 2e-6);
      // weight and bias gradients are each rank's own sums (DDP adds them up): their sum is batch 16's
      close(
        a.gw.map((g, c) => g + b.gw[c]),
        s.gw,
        2e-6,
      );
      close(
        a.gb.map((g, c) => g + b.gb[c]),
        s.gb,
        2e-6,
      );
      // the running statistics are the whole batch's, identical on both ranks
      expect(b.rm).toEqual(a.rm);
      expect(b.rv).toEqual(a.rv);
      close(a.rm, s.rm, 2e-6);
      close(a.rv, s.rv, 2e-6);
      expect(a.n).toBe(s.n);
    });
    close(
      r0.noInputGrad.gw.map((g, c) => g + r1.noInputGrad.gw[c]),
      ref.noInputGrad.gw,
      2e-6,
    );
    close(
      r0.noInputGrad.gb.map((g, c) => g + r1.noInputGrad.gb[c]),
      ref.noInputGrad.gb,
      2e-6,
    );
    // rank 0 with 16 rows and rank 1 with none normalise as one process with the 16; the empty
    // rank meets both collectives and gets a zero weight gradient (PyTorch's: none)
    close(r0.empty.y, ref.empty.y, 2e-6);
    close(r0.empty.gx, ref.empty.gx, 2e-6);
    close(r0.empty.gw, ref.empty.gw, 2e-6);
    close(r0.empty.rm, ref.empty.rm, 2e-6);
    close(r0.empty.rv, ref.empty.rv, 2e-6);
    expect([r1.empty.y, r1.empty.gx, r1.empty.gw]).toEqual([[], [], [0, 0, 0]]);
    expect([r1.empty.rm, r1.empty.rv]).toEqual([r0.empty.rm, r0.empty.rv]);
    // native memory stays flat: each step frees what it made, the saved statistics included
    expect([ref.leaked, r0.leaked, r1.leaked]).toEqual([0, 0, 0]);
  }, 150_000);

  it('a converted VGG-BN under DDP, 2 ranks × batch 8, trains to the weights of one process at batch 16', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-syncbn-'));
    const files = ['ref', 'r0', 'r1'].map((n) => join(dir, `${n}.f32`));
    type Out = { losses: number[]; kinds: string[]; sizes: number[]; params: Float32Array[]; buffers: number[][] };
    const [ref, r0, r1] = (
      await Promise.all([
        runNodeChild(vggScript(0, 0, 1, files[0]), { timeoutMs: 240_000 }),
        runNodeChild(vggScript(port, 0, 2, files[1]), { timeoutMs: 240_000 }),
        runNodeChild(vggScript(port, 1, 2, files[2]), { timeoutMs: 240_000 }),
      ])
    ).map((r, i) => {
      const out = result<Out>(r);
      const all = new Float32Array(new Uint8Array(readFileSync(files[i])).buffer);
      const starts = out.sizes.map((_, j) => out.sizes.slice(0, j).reduce((a, b) => a + b, 0));
      out.params = out.sizes.map((n, j) => all.subarray(starts[j], starts[j] + n));
      return out;
    });
    rmSync(dir, { recursive: true, force: true });
    expect(ref.params.length).toBe(14); // 2 × (conv weight, bias, BN weight, bias) + 3 Linear × 2
    expect(ref.kinds).toEqual(['BatchNorm2d', 'BatchNorm2d']);
    expect(r0.kinds).toEqual(['SyncBatchNorm', 'SyncBatchNorm']);
    // the ranks agree exactly: the same averaged gradients, the same SGD
    r0.params.forEach((p, i) =>
      expect(Buffer.from(r1.params[i].buffer, r1.params[i].byteOffset, r1.params[i].byteLength).equals(Buffer.from(p.buffer, p.byteOffset, p.byteLength))).toBe(
        true,
      ),
    );
    expect(r1.buffers).toEqual(r0.buffers);
    close(
      r0.losses.map((l, i) => (l + r1.losses[i]) / 2),
      ref.losses,
      2e-6,
    );
    ref.params.forEach((p, i) => {
      // A conv bias followed by BatchNorm has a zero gradient in exact arithmetic (the mean is
      // subtracted): it moves by rounding noise only, ~1e-11, in both set-ups.
      const largest = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      if (largest(p) < 1e-8) expect(largest(r0.params[i])).toBeLessThan(1e-8);
      else close(r0.params[i], p, 4e-6);
    });
    ref.buffers.forEach((b, i) => close(r0.buffers[i], b, 4e-6));
  }, 300_000);

  it('world size 1 and eval mode are plain batch norm; a destroyed group is an error', async () => {
    const port = await freePort();
    const r = await runNodeChild(
      `
      const vt = await import(LIB);
      const { nn } = vt;
      const world = vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: 0, worldSize: 1, timeout: 20000 });
      const v = (t) => Array.from(t.contiguous().toTypedArray());
      vt.manualSeed(3);
      const x = vt.randn([4, 2, 3, 3]);
      const sync = new nn.SyncBatchNorm(2, { processGroup: world }), plain = new nn.BatchNorm2d(2);
      const same = [v(sync(x)), v(plain(x)), v(sync.runningVar), v(plain.runningVar)];
      sync.eval(); plain.eval();
      same.push(v(sync(x)), v(plain(x)));
      vt.distributed.destroyProcessGroup();
      sync.train();
      let error = '';
      try { sync(x); } catch (e) { error = e.message; }
      console.log(JSON.stringify({ same, error }));
    `,
      { timeoutMs: 60_000 },
    );
    const out = result<{ same: number[][]; error: string }>(r);
    expect(out.same[0]).toEqual(out.same[1]);
    expect(out.same[2]).toEqual(out.same[3]);
    expect(out.same[4]).toEqual(out.same[5]);
    expect(out.error).toMatch(/^SyncBatchNorm: its processGroup belongs to a default process group that was destroyed/);
  }, 90_000);
});

// PyTorch's SyncBatchNorm refuses CPU input and its five kernels are CUDA-only, in 1.13 and 2.x
// alike. The Python rank therefore runs PyTorch's own autograd Function
// (torch.nn.modules._functions.SyncBatchNorm: its all_gather, mask, counts, all_reduce and
// gradient plumbing) with those five torch.* names bound to CPU stand-ins that compute each CUDA
// kernel's formula (and 1.13's CUDA-graph probe answered for a CPU-only build). What this checks: the collectives' layout and order (a Python rank and a
// vgg-torch rank meet in every collective), the Function's logic, and the numbers, bitwise.
const pyRank = (port: number, rank: number): string => `
import torch, torch.distributed as dist, json, datetime
from torch.nn.modules._functions import SyncBatchNorm as SyncBNFunction
dist.init_process_group('gloo', init_method='tcp://127.0.0.1:${port}', rank=${rank}, world_size=2, timeout=datetime.timedelta(seconds=20))
def dims(x): return [d for d in range(x.dim()) if d != 1]
def ch(v, x): return v.view([s if i == 1 else 1 for i, s in enumerate(x.shape)])
def stats(x, eps):
    var, mean = torch.var_mean(x, dims(x), unbiased=False)
    return mean, torch.rsqrt(var + eps)
def gather(x, mean_all, invstd_all, rm, rv, momentum, eps, counts):
    c = counts.to(mean_all.dtype).view(-1, 1)
    n = c.sum()
    mean = (mean_all * c).sum(0) / n
    std = torch.reciprocal(invstd_all)
    d = mean_all - mean
    m2 = ((std * std - eps) + d * d).mul(c).sum(0)
    if rm is not None: rm.mul_(1 - momentum).add_(mean * momentum)
    if rv is not None: rv.mul_(1 - momentum).add_(m2 / (n - 1) * momentum)
    return mean, torch.rsqrt(m2 / n + eps)
def elemt(x, w, b, mean, invstd, eps):
    out = (x - ch(mean, x)) * ch(invstd, x)
    if w is not None: out = out * ch(w, x)
    if b is not None: out = out + ch(b, x)
    return out
def reduce(dy, x, mean, invstd, w, ig, wg, bg):
    sum_dy = dy.sum(dims(x)); sum_dy_xmu = (dy * (x - ch(mean, x))).sum(dims(x))
    return (sum_dy if ig else None, sum_dy_xmu if ig else None, sum_dy_xmu * invstd if wg else None, sum_dy if bg else None)
def belemt(dy, x, mean, invstd, w, sum_dy, sum_dy_xmu, count):
    norm = torch.reciprocal(count.sum().to(sum_dy.dtype))
    f1 = invstd * invstd * sum_dy_xmu * norm
    f2 = invstd * w if w is not None else invstd
    return (dy - ch(sum_dy * norm, x) - (x - ch(mean, x)) * ch(f1, x)) * ch(f2, dy)
torch.batch_norm_stats, torch.batch_norm_gather_stats_with_counts, torch.batch_norm_elemt = stats, gather, elemt
torch.batch_norm_backward_reduce, torch.batch_norm_backward_elemt = reduce, belemt
torch.cuda.is_current_stream_capturing = lambda: False   # 1.13 asks even a CPU-only build (which then raises)
torch.manual_seed(0)
X = torch.randn(2, 16, 3, 5, 5) * 2 + 1
G = torch.randn(2, 16, 3, 5, 5)
bn = torch.nn.SyncBatchNorm(3)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.5, 0.5, -1])); bn.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
v = lambda t: t.detach().flatten().tolist()
steps = []
for step in range(2):
    bn.weight.grad = None; bn.bias.grad = None
    x = X[step].narrow(0, ${rank} * 8, 8).clone().requires_grad_()
    bn.num_batches_tracked.add_(1)   # SyncBatchNorm.forward's bookkeeping before the Function
    y = SyncBNFunction.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps, bn.momentum, dist.group.WORLD, 2)
    y.backward(G[step].narrow(0, ${rank} * 8, 8))
    steps.append(dict(y=v(y), gx=v(x.grad), gw=v(bn.weight.grad), gb=v(bn.bias.grad), rm=v(bn.running_mean), rv=v(bn.running_var), n=int(bn.num_batches_tracked)))
print(json.dumps(steps))
`;

const jsRank = (port: number, rank: number): string => `
  const vt = await import(LIB);
  vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: ${rank}, worldSize: 2, timeout: 20000 });
  const v = (t) => Array.from(t.contiguous().toTypedArray());
  vt.manualSeed(0);
  const X = vt.randn([2, 16, 3, 5, 5]).mul(2).add(1);
  const G = vt.randn([2, 16, 3, 5, 5]);
  const bn = new vt.nn.SyncBatchNorm(3);
  vt.noGrad(() => { bn.weight.copy_(vt.tensor([1.5, 0.5, -1])); bn.bias.copy_(vt.tensor([0.1, 0.2, 0.3])); });
  const steps = [];
  for (let step = 0; step < 2; step++) {
    bn.weight.grad = null; bn.bias.grad = null;
    const x = X.select(0, step).narrow(0, ${rank} * 8, 8).clone().requiresGrad_();
    const y = bn(x);
    y.backward(G.select(0, step).narrow(0, ${rank} * 8, 8));
    steps.push({ y: v(y), gx: v(x.grad), gw: v(bn.weight.grad), gb: v(bn.bias.grad), rm: v(bn.runningMean), rv: v(bn.runningVar), n: Number(bn.numBatchesTracked.item()) });
  }
  console.log(JSON.stringify(steps));
`;

describe.skipIf(!distributed.isAvailable() || (!hasTorchPython && !requireLiveOracle))('SyncBatchNorm with a Python rank', () => {
  it("a vgg-torch rank and PyTorch's SyncBatchNorm Function in one group compute the same numbers, bitwise", async () => {
    // Each half of the batch is computed once by each side: group A has JS rank 0 and Python
    // rank 1, group B Python rank 0 and JS rank 1.
    const [portA, portB] = [await freePort(), await freePort()];
    const env = pythonRankEnv();
    const runs = await Promise.all([
      runNodeChild(jsRank(portA, 0), { timeoutMs: 90_000 }),
      python(['-c', pyRank(portA, 1)], { timeoutMs: 90_000, env }),
      python(['-c', pyRank(portB, 0)], { timeoutMs: 90_000, env }),
      runNodeChild(jsRank(portB, 1), { timeoutMs: 90_000 }),
    ]);
    type Step = { y: number[]; gx: number[]; gw: number[]; gb: number[]; rm: number[]; rv: number[]; n: number };
    const [js0, py1, py0, js1] = runs.map((r) => result<Step[]>(r));
    expect(js0.length).toBe(2);
    expect(js0).toEqual(py0);
    expect(js1).toEqual(py1);
    // and each group agrees on the running statistics
    expect(js0.map((s) => [s.rm, s.rv])).toEqual(py1.map((s) => [s.rm, s.rv]));
  }, 120_000);
});

describe('SyncBatchNorm without a process group', () => {
  it('trains as BatchNorm2d (as PyTorch, before initProcessGroup) and prints as PyTorch', () => {
    const sync = new nn.SyncBatchNorm(3, 1e-3, 0.2);
    const plain = new nn.BatchNorm2d(3, 1e-3, 0.2);
    const x = randn([4, 3, 2, 2]);
    expect(sync(x).toTypedArray()).toEqual(plain(x).toTypedArray());
    expect(sync.runningMean!.toTypedArray()).toEqual(plain.runningMean!.toTypedArray());
    // any rank from 2 (BatchNorm1d's (N, C) here)
    expect(sync(randn([5, 3])).shape).toEqual([5, 3]);
    expect(sync.toString()).toBe('SyncBatchNorm(3, eps=0.001, momentum=0.2, affine=True, track_running_stats=True)');
  });

  it('throws clear errors for bad arguments and inputs', () => {
    const bn = new nn.SyncBatchNorm(3);
    expect(() => bn(randn([3]))).toThrow('SyncBatchNorm: expected at least 2D input (got 1D input)');
    expect(() => bn(randn([2, 0, 4]))).toThrow('SyncBatchNorm: number of input channels should be non-zero');
    expect(() => bn(randn([2, 4, 4]))).toThrow('SyncBatchNorm: input has 4 channels (dimension 1), but numFeatures is 3');
    expect(() => bn([1, 2] as never)).toThrow(/^SyncBatchNorm: input must be a Tensor, got/);
    expect(() => new nn.SyncBatchNorm(0)).toThrow(/SyncBatchNorm.*numFeatures/);
    expect(() => new nn.SyncBatchNorm(3, { eps: -1 })).toThrow('SyncBatchNorm: eps must be a positive number, got -1');
    expect(() => new nn.SyncBatchNorm(3, { processGroup: 'world' as never })).toThrow(/^SyncBatchNorm: processGroup must be a ProcessGroup, got/);
    expect(() => new nn.SyncBatchNorm(3, { group: 1 } as never)).toThrow(/SyncBatchNorm.*group/);
    const convert = nn.SyncBatchNorm.convertSyncBatchnorm;
    expect(() => convert({} as never)).toThrow(/^SyncBatchNorm.convertSyncBatchnorm\(\): module must be an nn.Module, got/);
    expect(() => convert(new nn.ReLU(), 3 as never)).toThrow(/^SyncBatchNorm.convertSyncBatchnorm\(\): processGroup must be a ProcessGroup, got/);
  });
});

describe('SyncBatchNorm.convertSyncBatchnorm', () => {
  const build = () =>
    new nn.Sequential(
      new nn.Conv2d(3, 4, 3),
      new nn.BatchNorm2d(4),
      new nn.Sequential(new nn.BatchNorm2d(4, { affine: false }), new nn.ReLU()),
      new nn.BatchNorm2d(4, { trackRunningStats: false, momentum: null }),
    );

  it('replaces every BatchNorm2d in place, keeping its tensors, requiresGrad and training mode', () => {
    const model = build();
    const bn = model.at(1) as nn.BatchNorm2d;
    noGrad(() => bn.weight!.copy_(tensor([1, 2, 3, 4])));
    bn.bias!.requiresGrad_(false);
    (model.at(2) as nn.Sequential).at(0).eval();
    const [weight, runningVar, count] = [bn.weight, bn.runningVar, bn.numBatchesTracked];
    const keys = [...model.stateDict().keys()];
    const out = nn.SyncBatchNorm.convertSyncBatchnorm(model);
    expect(out).toBe(model);
    const names = [...model.modules()].map((m) => m.constructor.name);
    expect(names).toEqual(['Sequential', 'Conv2d', 'SyncBatchNorm', 'Sequential', 'SyncBatchNorm', 'ReLU', 'SyncBatchNorm']);
    const sync = model.at(1) as nn.SyncBatchNorm;
    expect(sync.weight).toBe(weight);
    expect(sync.runningVar).toBe(runningVar);
    expect(sync.numBatchesTracked).toBe(count);
    expect(Array.from(sync.weight!.toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(sync.bias!.requiresGrad).toBe(false);
    expect(sync.processGroup).toBeNull();
    expect((model.at(2) as nn.Sequential).at(0).training).toBe(false);
    const last = model.at(3) as nn.SyncBatchNorm;
    expect([last.trackRunningStats, last.momentum, last.runningMean]).toEqual([false, null, null]);
    expect([...model.stateDict().keys()]).toEqual(keys);
    // vgg11_bn's features (torchvision's make_layers of configuration A with BatchNorm): 8 layers
    const features = makeLayers(cfgs.A, { batchNorm: true });
    const featureKeys = [...features.stateDict().keys()];
    nn.SyncBatchNorm.convertSyncBatchnorm(features);
    expect([...features.modules()].filter((m) => m instanceof nn.SyncBatchNorm).length).toBe(8);
    expect([...features.modules()].some((m) => m instanceof nn.BatchNorm2d)).toBe(false);
    expect([...features.stateDict().keys()]).toEqual(featureKeys);
    features.dispose();
    // a BatchNorm2d itself comes back as a new SyncBatchNorm
    const lone = new nn.BatchNorm2d(5, { eps: 1e-3 });
    const converted = nn.SyncBatchNorm.convertSyncBatchnorm(lone);
    expect(converted).toBeInstanceOf(nn.SyncBatchNorm);
    expect((converted as nn.SyncBatchNorm).eps).toBe(1e-3);
    expect((converted as nn.SyncBatchNorm).runningMean).toBe(lone.runningMean);
  });

  it.skipIf(!hasTorchPython && !requireLiveOracle)(
    "gives PyTorch's state-dict keys and module types",
    async () => {
      const r = await python([
        '-c',
        `
import torch.nn as nn, json
m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4, affine=False), nn.ReLU()), nn.BatchNorm2d(4, track_running_stats=False, momentum=None))
m = nn.SyncBatchNorm.convert_sync_batchnorm(m)
print(json.dumps([list(m.state_dict().keys()), [type(x).__name__ for x in m.modules()], repr(m)]))
`,
      ]);
      const [keys, types, repr] = result<[string[], string[], string]>(r);
      const model = nn.SyncBatchNorm.convertSyncBatchnorm(build());
      expect([...model.stateDict().keys()]).toEqual(keys);
      expect(keys).toContain('1.num_batches_tracked');
      expect([...model.modules()].map((m) => m.constructor.name)).toEqual(types);
      expect(model.toString()).toBe(repr);
    },
    60_000,
  );
});
