// PowerSGD (torch/distributed/algorithms/ddp_comm_hooks/powerSGD_hook.py): two vgg-torch ranks
// and two PyTorch ranks each train a small model (a conv, linears with biases, two weights of
// one shape apart in the bucket) for STEPS SGD steps under DDP with powerSGD_hook in several
// configurations, then a group of one Python and one vgg-torch rank does the same. Gradients,
// weights, the iteration counter and the compression stats must equal PyTorch's bit for bit:
// the hook is deterministic (the same libtorch ops in the same order on one thread, 2-rank Gloo
// sums, the same seeded random Q) except for the order in which its collectives start.
// PyTorch chains them in futures, so two buckets' allreduces may interleave differently on
// each rank; vgg-torch's hook finishes each bucket inside the hook, and the Python ranks wrap
// powerSGD_hook to wait likewise (same function, same numbers, fixed order).
import { describe, expect, it } from 'vitest';
import { distributed } from '../lib/index.js';
import { type ChildResult, hasTorchPython, python, requireLiveOracle, runNodeChild } from './helpers.js';
import { freePort, pythonRankEnv } from './distributed-helpers.js';

function result<T>(r: ChildResult): T {
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

const STEPS = 5;
// DDP's default buckets: the first (the last layers) holds 1 MiB, which the two 20000-wide
// linears fill; the rest (the 16-wide linears, two 16×16 weights apart, and the conv) a second.
// The default: with an explicit bucket_cap_mb, PyTorch 2.x caps the first bucket at it too (1.13 at 1 MiB).
/** PowerSGDState options by name: camelCase for vgg-torch, snake_case for PyTorch. */
const CONFIGS: Record<string, Record<string, number | boolean>> = {
  // PyTorch's defaults but an early start: error feedback and warm start, rank 1
  rank1: { matrixApproximationRank: 1, startPowerSGDIter: 2 },
  // rank 2 (Gram-Schmidt), a new random Q every step, no error feedback
  rank2Plain: { matrixApproximationRank: 2, startPowerSGDIter: 2, useErrorFeedback: false, warmStart: false, randomSeed: 7 },
  // rank 4 (QR), more tensors compressed, an epsilon in the norms, warm start without error feedback
  rank4: {
    matrixApproximationRank: 4,
    startPowerSGDIter: 3,
    minCompressionRate: 1,
    useErrorFeedback: false,
    orthogonalizationEpsilon: 1e-8,
    randomSeed: 12345,
  },
  // compression from the first step (allowed without error feedback and warm start): rank-1 1-D biases too
  fromStart: { matrixApproximationRank: 1, startPowerSGDIter: 0, minCompressionRate: 0.4, useErrorFeedback: false, warmStart: false },
};
const snake = (k: string): string =>
  ({ startPowerSGDIter: 'start_powerSGD_iter', useErrorFeedback: 'use_error_feedback' })[k] ?? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const pyKwargs = (o: Record<string, number | boolean>): string =>
  Object.entries(o)
    .map(([k, v]) => `${snake(k)}=${typeof v === 'boolean' ? (v ? 'True' : 'False') : v}`)
    .join(', ');

/** Per config: grads[step][param], weights after the last step (sha256 of their float32 bytes), iter, compressionStats, a draw of the global RNG after. */
type Run = { grads: string[][]; weights: string[]; iter: number; stats: number[]; rngAfter: number[]; buckets?: number };
type Out = { runs: Record<string, Run>; errors?: Record<string, string> };

const MODEL_JS = `new nn.Sequential(new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.ReLU(), new nn.Flatten(), new nn.Linear(288, 16), new nn.ReLU(),
      new nn.Linear(16, 16), new nn.ReLU(), new nn.Linear(16, 8), new nn.ReLU(), new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 16), new nn.ReLU(), new nn.Linear(16, 20000), new nn.ReLU(), new nn.Linear(20000, 5))`;
const MODEL_PY = `nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(288, 16), nn.ReLU(),
        nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 20000), nn.ReLU(), nn.Linear(20000, 5))`;

const jsRank = (port: number, rank: number, withErrors: boolean): string => `
  const vt = await import(LIB);
  const { nn } = vt;
  const { PowerSGDState, powerSGDHook } = vt.distributed.algorithms.ddpCommHooks.powerSGD;
  const { fp16CompressHook } = vt.distributed.algorithms.ddpCommHooks.defaultHooks;
  const RANK = ${rank};
  vt.setNumThreads(1); // as the Python ranks
  vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: RANK, worldSize: 2, timeout: 30000 });
  const { createHash } = await import('node:crypto');
  const v = (t) => Array.from(t.contiguous().toTypedArray());
  // float32 bytes hashed: bitwise comparison without megabytes of JSON
  const h = (t) => { const a = t.contiguous().toTypedArray(); return createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex'); };
  const makeNet = () => {
    const net = ${MODEL_JS};
    vt.manualSeed(3);
    // scaled by 1/√fan-in (0.1 for biases), so that the 20000-wide layers keep the loss from saturating
    vt.noGrad(() => { for (const p of net.parameters()) p.copy_(vt.randn(p.shape).mul(1 / Math.sqrt(p.dim() > 1 ? p.numel() / p.shape[0] : 100))); });
    return net;
  };
  const out = { runs: {} };
  for (const [name, opts] of Object.entries(${JSON.stringify(CONFIGS)})) {
    const net = makeNet();
    const ddp = new nn.parallel.DistributedDataParallel(net);
    const state = new PowerSGDState(null, opts);
    ddp.registerCommHook(state, powerSGDHook);
    const opt = new vt.optim.SGD(net.parameters(), { lr: 0.05 });
    const run = { grads: [] };
    for (let s = 0; s < ${STEPS}; s++) {
      for (const p of net.parameters()) p.grad = null;
      vt.manualSeed(10 + s + 100 * RANK);
      const x = vt.randn([8, 3, 6, 6]), y = vt.randint(0, 5, [8]);
      nn.functional.crossEntropy(ddp(x), y).backward();
      run.grads.push([...net.parameters()].map((p) => h(p.grad)));
      opt.step();
    }
    run.rngAfter = v(vt.randn([4])); // the hook's random Q left the global generator alone
    run.weights = [...net.parameters()].map((p) => h(p));
    run.iter = state.iter;
    run.stats = state.compressionStats();
    out.runs[name] = run;
    ddp.dispose();
  }
  if (${withErrors}) {
    const catchMsg = (f) => { try { f(); return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; } };
    const e = (out.errors = {});
    e.efEarly = catchMsg(() => new PowerSGDState(null, { startPowerSGDIter: 1 }));
    e.wsEarly = catchMsg(() => new PowerSGDState(null, { startPowerSGDIter: 0, useErrorFeedback: false }));
    e.rank0 = catchMsg(() => new PowerSGDState(null, { matrixApproximationRank: 0 }));
    e.rankFloat = catchMsg(() => new PowerSGDState(null, { matrixApproximationRank: 1.5 }));
    e.seed = catchMsg(() => new PowerSGDState(null, { randomSeed: 2 ** 32 }));
    e.eps = catchMsg(() => new PowerSGDState(null, { orthogonalizationEpsilon: -1 }));
    e.rate = catchMsg(() => new PowerSGDState(null, { minCompressionRate: NaN }));
    e.ef = catchMsg(() => new PowerSGDState(null, { useErrorFeedback: 1 }));
    e.unknown = catchMsg(() => new PowerSGDState(null, { rank: 2 }));
    e.group = catchMsg(() => new PowerSGDState(5));
    const ddp = new nn.parallel.DistributedDataParallel(makeNet());
    e.stateForDefault = catchMsg(() => ddp.registerCommHook(new PowerSGDState(null), fp16CompressHook));
    e.groupForPowerSGD = catchMsg(() => ddp.registerCommHook(null, powerSGDHook));
    e.ok = catchMsg(() => ddp.registerCommHook(new PowerSGDState(vt.distributed.newGroup([0, 1]), { startPowerSGDIter: 2 }), powerSGDHook));
    ddp.dispose();
  }
  console.log(JSON.stringify(out));
`;

const pyRank = (port: number, rank: number): string => `
import torch, torch.distributed as dist, torch.nn as nn, json, datetime, math, hashlib
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd
R = ${rank}
torch.set_num_threads(1)
dist.init_process_group('gloo', init_method='tcp://127.0.0.1:${port}', rank=R, world_size=2, timeout=datetime.timedelta(seconds=30))
buckets = set()
def h(t):  # sha256 of the float32 bytes, as the vgg-torch ranks hash them
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()
def waiting_hook(state, bucket):
    # powerSGD_hook itself, waited for, so that buckets never interleave their collectives
    buckets.add(bucket.index())
    fut = psgd.powerSGD_hook(state, bucket)
    fut.wait()
    return fut
configs = {${Object.entries(CONFIGS)
  .map(([name, o]) => `'${name}': dict(${pyKwargs(o)})`)
  .join(', ')}}
out = {'runs': {}}
for name, kwargs in configs.items():
    net = ${MODEL_PY}
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters(): p.copy_(torch.randn(p.shape).mul(1 / math.sqrt(p[0].numel() if p.dim() > 1 else 100)))
    ddp = DDP(net)
    state = psgd.PowerSGDState(None, **kwargs)
    ddp.register_comm_hook(state, waiting_hook)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    run = {'grads': []}
    for s in range(${STEPS}):
        for p in net.parameters(): p.grad = None
        torch.manual_seed(10 + s + 100 * R)
        x = torch.randn(8, 3, 6, 6); y = torch.randint(0, 5, (8,))
        nn.functional.cross_entropy(ddp(x), y).backward()
        run['grads'].append([h(p.grad) for p in net.parameters()])
        opt.step()
    run['rngAfter'] = torch.randn(4).tolist()
    run['weights'] = [h(p) for p in net.parameters()]
    run['iter'] = state.iter
    run['buckets'] = len(buckets)
    buckets.clear()
    run['stats'] = list(state.compression_stats())
    out['runs'][name] = run
print(json.dumps(out))
`;

describe.skipIf(!distributed.isAvailable())('DDP PowerSGD hook (gloo, 2 ranks on 127.0.0.1)', () => {
  it('equals PyTorch’s powerSGD_hook bit for bit (2 vgg-torch ranks, 2 PyTorch ranks, and one of each); errors', async () => {
    const jsPort = await freePort();
    const runs: Promise<ChildResult>[] = [1, 0].map((r) => runNodeChild(jsRank(jsPort, r, true), { timeoutMs: 150_000 }));
    const withPython = hasTorchPython || requireLiveOracle;
    if (withPython) {
      const pyPort = await freePort();
      const mixedPort = await freePort();
      for (const r of [0, 1]) runs.push(python(['-c', pyRank(pyPort, r)], { timeoutMs: 150_000, env: pythonRankEnv() }));
      // the mixed group: a Python rank 0 and a vgg-torch rank 1 in one DDP
      runs.push(python(['-c', pyRank(mixedPort, 0)], { timeoutMs: 150_000, env: pythonRankEnv() }));
      runs.push(runNodeChild(jsRank(mixedPort, 1, false), { timeoutMs: 150_000 }));
    }
    const res = await Promise.all(runs);
    // every child's failure, not only the first (a rank's error makes its peer fail too)
    const failed = res.map((r, i) => [i, r] as const).filter(([, r]) => r.status !== 0);
    if (failed.length) throw new Error(failed.map(([i, r]) => `child ${i} failed (${r.status ?? r.signal}): ${r.stderr}`).join('\n---\n'));
    const [r1, r0] = res.slice(0, 2).map((r) => result<Out>(r));
    const names = Object.keys(CONFIGS);
    for (const n of names) {
      const a = r0.runs[n];
      // the ranks agree; the counter counts every step; compression happened at rates > 1
      expect(r1.runs[n].grads, n).toEqual(a.grads);
      expect(r1.runs[n].weights, n).toEqual(a.weights);
      expect(a.iter, n).toBe(STEPS);
      expect(a.stats[0], n).toBeGreaterThan(1);
      expect(a.stats[2], n).toBeLessThan(a.stats[1]);
      // plain averaging before the start: steps 0 and 1 the same as rank4's (which starts at 3) on the same weights
      const start = CONFIGS[n].startPowerSGDIter as number;
      for (let s = 0; s < Math.min(start, 2); s++) expect(a.grads[s], `${n} step ${s}`).toEqual(r0.runs.rank4.grads[s]);
      // then compressed: at step 2 the big linear's weight gradient differs from rank4's plain average
      if (start === 2) expect(a.grads[2][2], n).not.toEqual(r0.runs.rank4.grads[2][2]);
    }
    if (withPython) {
      const [p0, p1, m0, m1] = res.slice(2).map((r) => result<Out>(r));
      for (const n of names) {
        expect(p0.runs[n].buckets, n).toBe(2); // several buckets, each with its own P, Q and error
        delete p0.runs[n].buckets;
        delete p1.runs[n].buckets;
        delete m0.runs[n].buckets;
        expect(r0.runs[n], n).toEqual(p0.runs[n]); // bitwise: PyTorch's DDP with powerSGD_hook
        expect(r1.runs[n], n).toEqual(p1.runs[n]);
        expect(m0.runs[n], `mixed ${n}`).toEqual(p0.runs[n]); // the Python rank beside a vgg-torch rank
        expect(m1.runs[n], `mixed ${n}`).toEqual(p1.runs[n]);
      }
    }
    const e = r0.errors as Record<string, string>;
    expect(e.efEarly).toMatch(/^RangeError: PowerSGDState\(\): startPowerSGDIter must be > 1 if useErrorFeedback or warmStart is enabled.*got 1$/);
    expect(e.wsEarly).toMatch(/^RangeError: PowerSGDState\(\): startPowerSGDIter must be > 1 .*got 0$/);
    expect(e.rank0).toMatch(/^RangeError: PowerSGDState\(\): matrixApproximationRank must be .*got 0/);
    expect(e.rankFloat).toMatch(/^RangeError: PowerSGDState\(\): matrixApproximationRank must be .*got 1\.5/);
    expect(e.seed).toMatch(/^RangeError: PowerSGDState\(\): randomSeed must be between 0 and 2\*\*32 - 1/);
    expect(e.eps).toMatch(/^RangeError: PowerSGDState\(\): orthogonalizationEpsilon must be a finite number ≥ 0, got -1/);
    expect(e.rate).toMatch(/^RangeError: PowerSGDState\(\): minCompressionRate must be a finite number/);
    expect(e.ef).toMatch(/^TypeError: PowerSGDState\(\): useErrorFeedback must be a boolean, got 1/);
    expect(e.unknown).toMatch(/^TypeError: PowerSGDState\(\): .*rank/);
    expect(e.group).toMatch(/^TypeError: PowerSGDState\(\): processGroup must be a ProcessGroup or null, got 5/);
    expect(e.stateForDefault).toMatch(/^TypeError: DistributedDataParallel\.registerCommHook\(\): state must be a ProcessGroup or null, got a PowerSGDState/);
    expect(e.groupForPowerSGD).toMatch(/^TypeError: DistributedDataParallel\.registerCommHook\(\): powerSGDHook's state must be a PowerSGDState, got null/);
    expect(e.ok).toBe('no error');
  }, 300_000);
});
