// A long training loop holds flat memory: 20,000 forward/backward steps of a
// small conv net inside tidy, with handle counts and RSS watched.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { F, Tensor, VGG, full, jit, keep, makeLayers, memory, manualSeed, nn, noGrad, optim, quantization, randint, randn, tidy } from '../lib/index.js';

describe('memory in a training loop', () => {
  it('20,000 steps: tensor count returns to the same value every step, RSS flat after warm-up', async () => {
    manualSeed(0);
    // In place: no unreferenced tensor for the garbage collector to free mid-loop, under the baseline.
    const w1 = randn([8, 3, 3, 3]).mul_(0.1).requiresGrad_();
    const b1 = randn([8]).mul_(0.1).requiresGrad_();
    const w2 = randn([10, 8 * 4 * 4])
      .mul_(0.05)
      .requiresGrad_();
    const params = [w1, b1, w2];
    const baseline = memory().tensors;
    // The allocators (glibc's arenas, libtorch's) settle within a few thousand
    // steps (seen: RSS rises ~7 % until step ~4,000, then stays flat to the byte);
    // after that, a leak of 1 KB per step would exceed the 5 % bound.
    const STEPS = 20_000;
    const WARMUP = 5_000;
    let rssAfterWarmup = 0;
    let maxRss = 0;
    let firstLoss = 0;
    let lastLoss = 0;
    for (let step = 0; step < STEPS; step++) {
      // A turn of the event loop now and then: on a busy machine the loop takes minutes, and vitest's
      // worker must answer its RPC within 60 s.
      if (step % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
      const loss = tidy(() => {
        const x = randn(4, 3, 8, 8);
        const target = randint(0, 10, [4]);
        const h = F.maxPool2d(F.relu(F.conv2d(x, w1, b1, 1, 1)), 2);
        const out = F.linear(h.flatten(1), w2);
        const l = F.crossEntropy(out, target);
        l.backward();
        noGrad(() => {
          for (const p of params) {
            const g = p.grad!;
            p.sub_(g, 0.01);
            g.zero_();
          }
        });
        return l.item() as number;
      });
      if (step === 0) firstLoss = loss;
      lastLoss = loss;
      expect(memory().tensors).toBe(baseline);
      if (step === WARMUP) rssAfterWarmup = process.memoryUsage.rss();
      if (step > WARMUP && step % 100 === 0) maxRss = Math.max(maxRss, process.memoryUsage.rss());
    }
    expect(Number.isFinite(firstLoss) && Number.isFinite(lastLoss)).toBe(true);
    expect(maxRss / rssAfterWarmup).toBeLessThan(1.05);
    for (const p of params) p.dispose();
  });
});

// Training and inference without tidy: the caller disposes what it created (x, y,
// out, loss) and Sequential/VGG free the outputs they pass between layers.
describe('memory without tidy', () => {
  const smallNet = (): nn.Sequential =>
    new nn.Sequential(
      new nn.Conv2d(3, 8, 3, { padding: 1 }),
      new nn.BatchNorm2d(8),
      new nn.ReLU(true),
      new nn.MaxPool2d(2),
      new nn.Conv2d(8, 8, 3, { padding: 1 }),
      new nn.ReLU(),
      new nn.Flatten(),
      new nn.Identity(),
      new nn.Linear(8 * 4 * 4, 16),
      new nn.Dropout(0.25),
      new nn.Linear(16, 10),
    );
  // A small VGG: features (conv, bn, relu, pool) and the 4096-wide classifier with dropout.
  const smallVgg = (): VGG =>
    new VGG(makeLayers([8, 'M', 16, 'M'], { batchNorm: true }), {
      numClasses: 10,
      avgpool: false,
      inputSize: [8, 8],
    });
  const paramBytes = (m: nn.Module<any, any>): Buffer[] => [...m.parameters(), ...m.buffers()].map((p) => Buffer.from(p.toTypedArray().buffer.slice(0)));

  // One training step; `scoped` wraps it in tidy (today's way), otherwise it disposes by hand.
  function step(model: nn.Module, opt: optim.SGD, scoped: boolean): number {
    const body = (): number => {
      const x = randn(4, 3, 8, 8);
      const y = randint(0, 10, [4]);
      const out = model(x);
      const loss = F.crossEntropy(out, y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      const value = loss.item() as number;
      if (!scoped) for (const t of [x, y, out, loss]) t.dispose();
      return value;
    };
    return scoped ? tidy(body) : body();
  }

  for (const [name, make, steps] of [
    ['Sequential', smallNet, 200],
    ['VGG', smallVgg, 30],
  ] as const) {
    it(`${name}: ${steps} training steps hold a flat tensor count and match a tidy run bit for bit`, () => {
      const runs = [false, true].map((scoped) => {
        manualSeed(1);
        const model = make();
        const opt = new optim.SGD([...model.parameters()], { lr: 0.05, momentum: 0.9 });
        const losses: number[] = [];
        let afterWarmup = 0;
        for (let i = 1; i <= steps; i++) {
          losses.push(step(model, opt, scoped));
          if (i === 10) afterWarmup = memory().tensors;
        }
        const counts = [afterWarmup, memory().tensors];
        const state = paramBytes(model);
        model.dispose();
        for (const s of opt.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
        return { losses, counts, state };
      });
      const [bare, scoped] = runs;
      expect(bare.counts[1]).toBe(bare.counts[0]);
      expect(bare.losses).toEqual(scoped.losses);
      expect(bare.state.length).toBe(scoped.state.length);
      bare.state.forEach((b, i) => expect(b.equals(scoped.state[i])).toBe(true));
    });
  }

  it('eval forward without tidy (grad on and off) holds a flat tensor count', () => {
    manualSeed(2);
    for (const model of [smallNet(), smallVgg()]) {
      model.eval();
      const counts: number[] = [];
      for (let i = 1; i <= 50; i++) {
        const x = randn(2, 3, 8, 8);
        const out = i % 2 ? noGrad(() => model(x)) : model(x);
        x.dispose();
        out.dispose();
        if (i === 10 || i === 50) counts.push(memory().tensors);
      }
      expect(counts[1]).toBe(counts[0]);
      model.dispose();
    }
  });

  it('leaves alone the input, parameters, kept tensors and what a layer stores; frees on errors', () => {
    class Stash extends nn.Module {
      seen: Tensor | null = null;
      forward(x: Tensor): Tensor {
        this.seen = x;
        return x.mul(2);
      }
    }
    class Weight extends nn.Module {
      constructor(readonly lin: nn.Linear) {
        super();
      }
      forward(): Tensor {
        return this.lin.weight; // a parameter handed to the next layer
      }
    }
    const stash = new Stash();
    const kept: Tensor[] = [];
    const keepOut = new (class extends nn.Module {
      forward(x: Tensor): Tensor {
        const y = x.add(1);
        kept.push(keep(y));
        return y;
      }
    })();
    const lin = new nn.Linear(3, 3);
    const seq = new nn.Sequential(new nn.Identity(), new nn.ReLU(true), keepOut, new nn.ReLU(), stash, new Weight(lin), new nn.ReLU());
    const x = randn(3, 3);
    const base = memory().tensors;
    const out = seq(x);
    expect(x.isDisposed).toBe(false);
    expect(lin.weight.isDisposed).toBe(false);
    expect(kept[0].isDisposed).toBe(false);
    expect(stash.seen!.isDisposed).toBe(false);
    // out, kept[0], stash.seen; the other intermediates (relu, mul) are freed.
    expect(memory().tensors).toBe(base + 3);
    for (const t of [out, kept[0], stash.seen!]) t.dispose();

    // An error inside a layer frees the intermediate it was given.
    const bad = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU(), new nn.Linear(5, 2));
    const img = randn(1, 3, 6, 6);
    const before = memory().tensors;
    expect(() => bad(img)).toThrow();
    expect(memory().tensors).toBe(before);
    expect(img.isDisposed).toBe(false);

    // A VGG with empty features hands the caller's input to flatten: it must survive.
    const passThrough = new VGG(new nn.Sequential(), { avgpool: false, inputSize: [2, 2], inChannels: 1, numClasses: 3 });
    const input = randn(1, 1, 2, 2);
    const logits = passThrough(input);
    expect(input.isDisposed).toBe(false);
    expect(logits.shape).toEqual([1, 3]);
    for (const t of [input, logits, img, x]) t.dispose();
    for (const m of [passThrough, bad, seq]) m.dispose();
  });
});

// Leak loops for compiled inference, int8 models and hooks: the handle table and
// the tensors' bytes return to the same values, and RSS, sampled ten times after
// a warm-up, rises (least-squares slope) by less than a quarter of what one leaked
// output / packed weight / compiled graph per iteration would add: each loop's
// payload is sized so that such a leak stands out of the allocators' noise
// (glibc and libtorch move RSS by ±10 MB without a trend; seen in 20,000-call runs).
describe('memory of compiled inference, int8 models and hooks', () => {
  // V8's garbage (JS arrays, closures) is in RSS too: collected before each reading, what grows is native.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  /** Runs `body` `warmup` times, then `n` times, watching handles, their bytes and RSS (bytes per iteration). */
  async function watch(n: number, warmup: number, body: (i: number) => unknown): Promise<{ tensors: number[]; bytes: number[]; rssPerIter: number }> {
    for (let i = 0; i < warmup; i++) await body(i);
    const before = memory();
    const samples: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      if (i % (n / 10) === 0) {
        gc();
        samples.push([i, process.memoryUsage.rss()]);
      }
      await body(warmup + i);
    }
    const after = memory();
    gc();
    samples.push([n, process.memoryUsage.rss()]);
    const mx = samples.reduce((a, [x]) => a + x, 0) / samples.length;
    const my = samples.reduce((a, [, y]) => a + y, 0) / samples.length;
    const rssPerIter = samples.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / samples.reduce((a, [x]) => a + (x - mx) ** 2, 0);
    return { tensors: [before.tensors, after.tensors], bytes: [before.bytes, after.bytes], rssPerIter };
  }
  const kb = (b: number) => `${(b / 1024).toFixed(2)} KB`;
  /** 3,000 calls of `call` (after 2,000 to warm up), each output disposed: handles, bytes and RSS flat. */
  async function expectFlatCalls(name: string, call: () => Promise<Tensor> | Tensor): Promise<void> {
    // The allocators settle within ~2,000 calls (RSS then flat over 20,000).
    const r = await watch(3000, 2000, async () => {
      const y = await call();
      y.dispose();
    });
    console.log(`${name}: tensors ${r.tensors.join(' → ')}, bytes ${r.bytes.join(' → ')}, RSS ${kb(r.rssPerIter)} per call after warm-up`);
    expect(r.tensors[1], name).toBe(r.tensors[0]);
    expect(r.bytes[1], name).toBe(r.bytes[0]);
    expect(r.rssPerIter, name).toBeLessThan(32 * 1024);
  }

  it('ScriptModule.forwardAsync, Module.predict and Module.forwardAsync, 3,000 calls each, and predict recompiling: flat', async () => {
    manualSeed(3);
    // Its output (16×32×32 per image, 2 images) is 128 KB: a leaked output per call would add ≥ 128 KB.
    const model = new nn.Sequential(new nn.Conv2d(3, 16, 3, { padding: 1 }), new nn.BatchNorm2d(16), new nn.ReLU()).eval();
    const x = randn(2, 3, 32, 32);
    const script = jit.trace(model, x);
    const cases: [string, () => Promise<Tensor> | Tensor][] = [
      ['ScriptModule.forwardAsync', () => script.forwardAsync(x) as Promise<Tensor>],
      ['Module.predict', () => model.predict(x)],
      ['Module.forwardAsync', () => model.forwardAsync(x)],
    ];
    for (const [name, call] of cases) {
      await expectFlatCalls(name, call);
    }
    // A weight changed in place recompiles predict's graph: the superseded graph (its 1 MB of
    // frozen weights) is freed.
    const lin = new nn.Linear(512, 512);
    const v = randn(4, 512);
    const r = await watch(40, 10, () => {
      noGrad(() => lin.bias!.add_(1e-3));
      lin.predict(v).dispose();
    });
    console.log(`predict recompiling every call: tensors ${r.tensors.join(' → ')}, bytes ${r.bytes.join(' → ')}, RSS ${kb(r.rssPerIter)} per recompilation`);
    expect(r.tensors[1]).toBe(r.tensors[0]);
    expect(r.bytes[1]).toBe(r.bytes[0]);
    expect(r.rssPerIter).toBeLessThan(256 * 1024);
    for (const t of [x, v]) t.dispose();
    script.dispose();
    model.dispose();
    lin.dispose();
  }, 120_000);

  it('quantize() + int8 forward + dispose, 100 times: flat (the packed weights are freed)', async () => {
    manualSeed(4);
    // Linear(2048, 2048)'s int8 weights alone are 4 MB per quantized copy: a leaked copy stands out of
    // the arenas' noise (quantize's transient buffers move RSS by up to ~0.5 MB per copy over 100).
    const model = new nn.Sequential(
      new nn.Conv2d(3, 16, 3, { padding: 1 }),
      new nn.BatchNorm2d(16),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Linear(16 * 8 * 8, 2048),
      new nn.ReLU(),
      new nn.Linear(2048, 2048),
    ).eval();
    const calibration = [randn(4, 3, 16, 16), randn(4, 3, 16, 16)];
    const x = randn(2, 3, 16, 16);
    const r = await watch(100, 40, () => {
      const q = quantization.quantize(model, calibration);
      q(x).dispose();
      q.dispose();
    });
    console.log(`quantize + forward + dispose: tensors ${r.tensors.join(' → ')}, bytes ${r.bytes.join(' → ')}, RSS ${kb(r.rssPerIter)} per copy after warm-up`);
    expect(r.tensors[1]).toBe(r.tensors[0]);
    expect(r.bytes[1]).toBe(r.bytes[0]);
    // A quarter of one leaked copy's packed weights (slopes of 45-550 KB per copy seen with 1 MB weights).
    expect(r.rssPerIter).toBeLessThan(1024 * 1024);
    for (const t of [x, ...calibration]) t.dispose();
    model.dispose();
  }, 120_000);

  it('int8 predict and forwardAsync, 3,000 calls each: flat; quantize + predict + dispose, 60 times: the compiled int8 forms are freed', async () => {
    manualSeed(5);
    // Its output (16×32×32 per image, 2 images, float) is 128 KB: a leaked output per call would add ≥ 128 KB.
    const conv = new nn.Sequential(new nn.Conv2d(3, 16, 3, { padding: 1 }), new nn.ReLU()).eval();
    const x = randn(2, 3, 32, 32);
    const q = quantization.quantize(conv, [x]);
    for (const [name, call] of [
      ['int8 predict', () => q.predict(x)],
      ['int8 forwardAsync', () => q.forwardAsync(x)],
    ] as const) {
      await expectFlatCalls(name, call);
    }
    q.dispose();
    conv.dispose();
    // The compiled graph shares the int8 model's packed weights (4 MB for Linear(2048, 2048)): dispose()
    // must drop it. The disposed models stay reachable, so the GC cannot free a graph dispose() forgot.
    const model = new nn.Sequential(new nn.Flatten(), new nn.Linear(3 * 8 * 8, 2048), new nn.ReLU(), new nn.Linear(2048, 2048)).eval();
    const calibration = [randn(4, 3, 8, 8)];
    const v = randn(2, 3, 8, 8);
    const disposed: nn.Module<any, any>[] = [];
    const r = await watch(60, 20, async () => {
      const m = quantization.quantize(model, calibration);
      m.predict(v).dispose();
      (await m.forwardAsync(v)).dispose();
      m.dispose();
      disposed.push(m);
    });
    console.log(
      `quantize + predict + forwardAsync + dispose: tensors ${r.tensors.join(' → ')}, bytes ${r.bytes.join(' → ')}, RSS ${kb(r.rssPerIter)} per copy after warm-up`,
    );
    expect(r.tensors[1]).toBe(r.tensors[0]);
    expect(r.bytes[1]).toBe(r.bytes[0]);
    // A quarter of one leaked copy's packed weights.
    expect(r.rssPerIter).toBeLessThan(1024 * 1024);
    for (const t of [x, v, ...calibration]) t.dispose();
    model.dispose();
  }, 180_000);

  it('what a tensor hook returns is freed after backward, and an output a forward hook replaced is freed, unless passed to keep()', () => {
    const w = randn([3], { requiresGrad: true });
    const made: Tensor[] = [];
    for (const kept of [false, true]) {
      const h = w.registerHook((g: Tensor) => {
        const r = g.mul(2);
        made.push(kept ? keep(r) : r);
        return r;
      });
      const loss = w.sum();
      loss.backward();
      loss.dispose();
      h.remove();
    }
    expect(made.map((t) => t.isDisposed)).toEqual([true, false]);
    // A tensor made before the hook and returned by it stays the caller's.
    const fixed = full([3], 2, { dtype: 'float32' });
    const h = w.registerHook(() => fixed);
    for (let i = 0; i < 2; i++) {
      const loss = w.sum();
      loss.backward();
      loss.dispose();
    }
    h.remove();
    expect(fixed.isDisposed).toBe(false);
    fixed.dispose();
    const grad = w.grad!;
    expect(Array.from(grad.toTypedArray() as Float32Array)).toEqual([8, 8, 8]); // every replacement reached autograd
    const lin = new nn.Linear(3, 3);
    const outs: Tensor[] = [];
    for (const kept of [false, true]) {
      const h = lin.registerForwardHook((_m, _in, out: Tensor) => {
        outs.push(kept ? keep(out) : out);
        return out.relu();
      });
      lin(w).dispose();
      h.remove();
    }
    expect(outs.map((t) => t.isDisposed)).toEqual([true, false]);
    for (const t of [w, grad, made[1], outs[1]]) t.dispose();
    lin.dispose();
  });

  it('module hooks registered and removed, and tensor hooks replacing gradients, over 3,000 backward passes: flat', async () => {
    manualSeed(5);
    // Linear(256, 256): a leaked gradient or replaced output per pass would add ≥ 16 KB.
    const [first, last] = [new nn.Linear(256, 256), new nn.Linear(256, 8)];
    const model = new nn.Sequential(first, new nn.ReLU(), last);
    const x = randn(16, 256);
    let fired = 0;
    const r = await watch(3000, 1000, (i) => {
      const handles = [
        first.registerForwardPreHook(() => {
          fired++;
        }),
        first.registerForwardHook((_m, _in, out: Tensor) => out.mul(1)), // a replaced output
        last.registerFullBackwardHook(() => {
          fired++;
        }),
        // Tensor hooks that rewrite the gradient (their result, a new tensor, goes to autograd).
        first.weight.registerHook((g: Tensor) => g.mul(0.5)),
        ...(i % 2 ? [last.weight.registerHook((g: Tensor) => g)] : []),
      ];
      const out = model(x);
      const sq = out.pow(2);
      const loss = sq.mean();
      loss.backward();
      for (const t of [out, sq, loss]) t.dispose();
      for (const h of handles) h.remove();
      model.zeroGrad();
    });
    console.log(`hooks over backward passes: tensors ${r.tensors.join(' → ')}, bytes ${r.bytes.join(' → ')}, RSS ${kb(r.rssPerIter)} per pass after warm-up`);
    expect(fired).toBe(2 * 4000);
    expect(r.tensors[1]).toBe(r.tensors[0]);
    expect(r.bytes[1]).toBe(r.bytes[0]);
    expect(r.rssPerIter).toBeLessThan(4 * 1024);
    x.dispose();
    model.dispose();
  }, 120_000);
});
