// DDP communication hooks (torch.distributed.algorithms.ddp_comm_hooks.default_hooks): two
// vgg-torch ranks and two PyTorch ranks each run DDP with every hook on the same weights and
// data; the gradients must agree bit for bit, since both run the same libtorch ops in the same
// order (on one thread each). No optimizer step: every run starts from the same weights, so each rank's local
// gradient (without DDP) is known and bounds the rounding of the compressing hooks.
import { describe, expect, it } from 'vitest';
import { distributed, version } from '../lib/index.js';
import { releaseOf } from '../lib/runtime.js';
import { type ChildResult, hasTorchPython, python, requireLiveOracle, runNodeChild } from './helpers.js';
import { freePort, pythonRankEnv } from './distributed-helpers.js';

function result<T>(r: ChildResult): T {
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

const [major, minor] = releaseOf(version.torch);
// Gloo sums bfloat16 from libtorch 2.2 (native/torch_compat.h): before, the hook is refused.
const glooBf16 = major > 2 || (major === 2 && minor >= 2);
const HOOKS = ['none', 'allreduce', 'fp16', ...(glooBf16 ? ['bf16'] : [])];
const STEPS = 2; // the second step runs on the buckets rebuilt after the first

/** grads[hook][step][param], local[step][param]. */
type Grads = Record<string, number[][][]>;
type JsOut = { grads: Grads; local: number[][][]; noSyncGrad: number[][]; afterNoSync: number[][]; errors: Record<string, string> };

const jsRank = (port: number, rank: number): string => `
  const vt = await import(LIB);
  const { nn } = vt;
  const { allreduceHook, fp16CompressHook, bf16CompressHook } = vt.distributed.algorithms.ddpCommHooks.defaultHooks;
  const RANK = ${rank};
  vt.setNumThreads(1); // as the Python ranks: a conv backward sums in another order on more threads
  vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: RANK, worldSize: 2, timeout: 30000 });
  const v = (t) => Array.from(t.contiguous().toTypedArray());
  const makeNet = () => {
    const net = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.Flatten(), new nn.Linear(144, 5));
    vt.manualSeed(3);
    vt.noGrad(() => { for (const p of net.parameters()) p.copy_(vt.randn(p.shape).mul(0.3)); });
    return net;
  };
  const data = (step) => { vt.manualSeed(10 + step + 100 * RANK); return [vt.randn([8, 3, 6, 6]), vt.randint(0, 5, [8])]; };
  const lossOf = (m, step) => { const [x, y] = data(step); return nn.functional.crossEntropy(m(x), y); };
  const hooks = { allreduce: allreduceHook, fp16: fp16CompressHook, bf16: bf16CompressHook };
  const out = { grads: {}, local: [], errors: {} };
  const plain = makeNet();
  for (let s = 0; s < ${STEPS}; s++) {
    for (const p of plain.parameters()) p.grad = null;
    lossOf(plain, s).backward();
    out.local.push([...plain.parameters()].map((p) => v(p.grad)));
  }
  const catchMsg = (f) => { try { f(); return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; } };
  for (const name of ${JSON.stringify(HOOKS)}) {
    const net = makeNet();
    const ddp = new nn.parallel.DistributedDataParallel(net, { bucketCapMb: 0.001 });
    if (name !== 'none') ddp.registerCommHook(null, hooks[name]);
    out.grads[name] = [];
    for (let s = 0; s < ${STEPS}; s++) {
      for (const p of net.parameters()) p.grad = null;
      lossOf(ddp, s).backward();
      out.grads[name].push([...net.parameters()].map((p) => v(p.grad)));
    }
    ddp.dispose();
  }
  if (${!glooBf16}) {
    const ddp = new nn.parallel.DistributedDataParallel(makeNet());
    out.errors.bf16 = catchMsg(() => ddp.registerCommHook(null, bf16CompressHook));
    ddp.dispose();
  }
  // errors: twice, after a forward, not a hook, a bad state
  {
    const ddp = new nn.parallel.DistributedDataParallel(makeNet());
    out.errors.badHookFn = catchMsg(() => ddp.registerCommHook(null, (state, bucket) => bucket));
    out.errors.badHookObj = catchMsg(() => ddp.registerCommHook(null, { name: 'fp16_compress_hook' }));
    out.errors.badState = catchMsg(() => ddp.registerCommHook(5, fp16CompressHook));
    out.errors.first = catchMsg(() => ddp.registerCommHook(undefined, fp16CompressHook));
    out.errors.twice = catchMsg(() => ddp.registerCommHook(null, allreduceHook));
    ddp.dispose();
    const ddp2 = new nn.parallel.DistributedDataParallel(makeNet());
    vt.noGrad(() => ddp2(data(0)[0]));
    out.errors.afterForward = catchMsg(() => ddp2.registerCommHook(null, allreduceHook));
    ddp2.dispose();
  }
  // noSync with a hook: the first backward stays local, the next synced one communicates the sum
  {
    const net = makeNet();
    const ddp = new nn.parallel.DistributedDataParallel(net, { bucketCapMb: 0.001 });
    ddp.registerCommHook(vt.distributed.newGroup([0, 1]), fp16CompressHook); // the native hook on another group
    ddp.noSync(() => lossOf(ddp, 0).backward());
    out.noSyncGrad = [...net.parameters()].map((p) => v(p.grad));
    lossOf(ddp, 1).backward();
    out.afterNoSync = [...net.parameters()].map((p) => v(p.grad));
    ddp.dispose();
  }
  console.log(JSON.stringify(out));
`;

const pyRank = (port: number, rank: number): string => `
import torch, torch.distributed as dist, torch.nn as nn, json, datetime
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks as dh
R = ${rank}
torch.set_num_threads(1)
dist.init_process_group('gloo', init_method='tcp://127.0.0.1:${port}', rank=R, world_size=2, timeout=datetime.timedelta(seconds=30))
hooks = {'allreduce': dh.allreduce_hook, 'fp16': dh.fp16_compress_hook}
out = {}
for name in ${JSON.stringify(HOOKS)}:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(144, 5))
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters(): p.copy_(torch.randn(p.shape).mul(0.3))
    ddp = DDP(net, bucket_cap_mb=0.001)
    if name == 'bf16':
        # PyTorch's DDP refuses bf16_compress_hook by its name without CUDA 11+ and NCCL 2.10+;
        # the same function under another name runs on Gloo (from 2.2, which sums bfloat16)
        ddp.register_comm_hook(None, lambda state, bucket: dh.bf16_compress_hook(state, bucket))
    elif name != 'none':
        ddp.register_comm_hook(None, hooks[name])
    out[name] = []
    for s in range(${STEPS}):
        for p in net.parameters(): p.grad = None
        torch.manual_seed(10 + s + 100 * R)
        x = torch.randn(8, 3, 6, 6); y = torch.randint(0, 5, (8,))
        nn.functional.cross_entropy(ddp(x), y).backward()
        out[name].append([p.grad.flatten().tolist() for p in net.parameters()])
print(json.dumps(out))
`;

/**
 * Rounding of a compressing hook with unit roundoff u (fp16 2^-11, bf16 2^-8) against the
 * float32 average of local gradients a, b: each rank's a/2 is rounded once, their sum once more,
 * so |Δ| ≤ 2u·(|a| + |b|)/2 (to first order; 1.01 covers the second) plus, in fp16, two
 * half-spacings of its subnormals (2^-24 each) for gradients below 2^-14.
 */
function withinRounding(hooked: number[], exact: number[], a: number[], b: number[], u: number, sub: number): void {
  for (let i = 0; i < exact.length; i++) {
    const bound = 1.01 * 2 * u * ((Math.abs(a[i]) + Math.abs(b[i])) / 2) + sub;
    if (!(Math.abs(hooked[i] - exact[i]) <= bound)) expect.fail(`element ${i}: ${hooked[i]} vs ${exact[i]} (bound ${bound})`);
  }
}

describe.skipIf(!distributed.isAvailable())('DDP communication hooks (gloo, 2 ranks on 127.0.0.1)', () => {
  it('allreduce/fp16/bf16 hooks give PyTorch’s gradients; rounding within bounds; errors; noSync', async () => {
    const jsPort = await freePort();
    const runs: Promise<ChildResult>[] = [runNodeChild(jsRank(jsPort, 0), { timeoutMs: 150_000 }), runNodeChild(jsRank(jsPort, 1), { timeoutMs: 150_000 })];
    const withPython = hasTorchPython || requireLiveOracle;
    if (withPython) {
      const pyPort = await freePort();
      for (const r of [0, 1]) runs.push(python(['-c', pyRank(pyPort, r)], { timeoutMs: 150_000, env: pythonRankEnv() }));
    }
    const res = await Promise.all(runs);
    const [r0, r1] = res.slice(0, 2).map((r) => result<JsOut>(r));
    // the ranks end with the same gradients for every hook
    for (const h of HOOKS) expect(r1.grads[h]).toEqual(r0.grads[h]);
    if (withPython) {
      const [p0, p1] = res.slice(2).map((r) => result<Grads>(r));
      for (const h of HOOKS) {
        expect(r0.grads[h], h).toEqual(p0[h]); // bitwise: PyTorch's DDP with the same hook
        expect(p1[h], h).toEqual(p0[h]);
      }
    }
    // allreduce_hook is the default made explicit
    expect(r0.grads.allreduce).toEqual(r0.grads.none);
    const compressed: [string, number, number][] = [['fp16', 2 ** -11, 2 * 2 ** -24]];
    if (glooBf16) compressed.push(['bf16', 2 ** -8, 0]);
    for (const [h, u, sub] of compressed) {
      expect(r0.grads[h]).not.toEqual(r0.grads.none); // it does compress
      for (let s = 0; s < STEPS; s++) r0.grads.none[s].forEach((exact, i) => withinRounding(r0.grads[h][s][i], exact, r0.local[s][i], r1.local[s][i], u, sub));
    }
    if (!glooBf16)
      expect(r0.errors.bf16).toMatch(
        /^Error: DistributedDataParallel\.registerCommHook\(\): bf16CompressHook needs a bfloat16 allreduce, and Gloo in libtorch \d+\.\d+\S* has none/,
      );
    expect(r0.errors.badHookFn).toMatch(
      /^TypeError: DistributedDataParallel\.registerCommHook\(\): hook must be one of distributed\.algorithms\.ddpCommHooks\.defaultHooks .*function.*no JS function can run/,
    );
    expect(r0.errors.badHookObj).toMatch(/^TypeError: DistributedDataParallel\.registerCommHook\(\): hook must be one of/);
    expect(r0.errors.badState).toMatch(/^TypeError: DistributedDataParallel\.registerCommHook\(\): state must be a ProcessGroup or null, got 5/);
    expect(r0.errors.first).toBe('no error');
    expect(r0.errors.twice).toMatch(/^Error: DistributedDataParallel\.registerCommHook\(\): a communication hook \(fp16_compress_hook\) is already registered/);
    expect(r0.errors.afterForward).toMatch(/^Error: DistributedDataParallel\.registerCommHook\(\): must be called before the first forward/);
    // inside noSync the hook did not run: each rank kept its own float32 gradient
    expect(r0.noSyncGrad).toEqual(r0.local[0]);
    expect(r1.noSyncGrad).toEqual(r1.local[0]);
    // then the synced backward communicated the accumulated sum through the fp16 hook
    expect(r1.afterNoSync).toEqual(r0.afterNoSync);
    r0.afterNoSync.forEach((g, i) => {
      const a = r0.local[0][i].map((x, j) => x + r0.local[1][i][j]);
      const b = r1.local[0][i].map((x, j) => x + r1.local[1][i][j]);
      // float32 sums of two local steps each add 2^-24 relative: covered by the fp16 bound
      withinRounding(
        g,
        a.map((x, j) => (x + b[j]) / 2),
        a,
        b,
        2 ** -11,
        2 * 2 ** -24,
      );
    });
  }, 300_000);
});
