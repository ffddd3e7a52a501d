// Compiled inference under autocast: Module.predict / forwardAsync inside autocast('cpu', …) trace
// under that state, so the graph holds autocast's casts and freezing folds the weights' casts into
// bfloat16 constants. The frozen graph runs eager autocast's kernels, so it must give eager
// autocast's bits (which test/amp.test.ts holds to PyTorch's); forwardAsync, on a worker thread
// that libtorch gives its own autocast state, must give predict's. Each kind of model predict
// takes: an fp32 module, a ScriptModule, an int8 model, a DDP-wrapped module. Also: PyTorch's own
// trace + freeze under torch.autocast (live oracle), agreement with float32 on Fashion-MNIST,
// memory, float16 (libtorch ≥ 2.1), the built package and `vgg-torch predict --amp`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as source from '../lib/index.js';
import {
  save,
  type Tensor,
  autocast,
  backends,
  distributed,
  isAutocastEnabled,
  jit,
  makeLayers,
  manualSeed,
  memory,
  nn,
  noGrad,
  optim,
  quantization,
  randn,
  tidy,
  vgg11,
  vggTutorial,
} from '../lib/index.js';
import { ampRulesNow } from '../lib/amp/releases.js';
import { freePort } from './distributed-helpers.js';
import { bytesOf, hasTorchPython, python, requireLiveOracle, runCli as cli, runNodeFile, trainFashionMnistNet } from './helpers.js';

const cpuHalfAllowed = ampRulesNow.cpuAutocastHalf;

const same = (a: Tensor, b: Tensor): boolean => a.dtype === b.dtype && a.shape.join() === b.shape.join() && bytesOf(a).equals(bytesOf(b));
const one = (t: Tensor | Tensor[]): Tensor => (Array.isArray(t) ? t[0] : t);

/** The eval-mode call under autocast, the module's mode left as it was: what the compiled graph must reproduce. */
function eagerAutocast(m: nn.Module<any, any>, x: Tensor, dtype: 'bfloat16' | 'float16' = 'bfloat16'): Tensor {
  const training = m.training;
  m.eval();
  try {
    return noGrad(() => autocast('cpu', { dtype }, () => m(x))) as Tensor;
  } finally {
    m.train(training);
  }
}

/** Moves every weight off its initial value (random init leaves linear biases at 0, where a rounding difference in adding them would not show). */
function perturb(m: nn.Module<any, any>, seed: number): void {
  manualSeed(seed);
  noGrad(() => {
    for (const p of m.parameters()) tidy(() => p.add_(randn(p.shape).mul(0.02)));
  });
}

describe('Module.predict / forwardAsync under autocast: an fp32 module', () => {
  for (const [name, make] of [
    ['the tutorial VGG', () => vggTutorial()],
    ['vgg11 (random init)', () => vgg11()],
  ] as const) {
    it(`${name}: the compiled bfloat16 graph gives eager autocast's bits and dtype; forwardAsync gives predict's`, async () => {
      manualSeed(1);
      const model = make();
      perturb(model, 2);
      const x = randn(3, 3, 32, 32);
      const eager = eagerAutocast(model, x);
      expect(eager.dtype).toBe('bfloat16');
      const p = autocast('cpu', { dtype: 'bfloat16' }, () => model.predict(x));
      // The default dtype of CPU autocast is bfloat16: the same compiled graph.
      const a = await autocast('cpu', () => model.forwardAsync(x));
      expect(p.dtype).toBe('bfloat16');
      expect(same(p, eager)).toBe(true);
      expect(same(a, p)).toBe(true);
      // Another batch size: the same compiled graph, still eager's bits.
      const x1 = x.narrow(0, 0, 1);
      const p1 = autocast('cpu', () => model.predict(x1));
      const e1 = eagerAutocast(model, x1);
      expect(same(p1, e1)).toBe(true);
      expect(model.training).toBe(true); // its mode is left as it was
      expect(isAutocastEnabled('cpu')).toBe(false);
      for (const t of [x, eager, p, a, x1, p1, e1]) t.dispose();
      model.dispose();
    }, 120_000);
  }

  it('a bad input is a TypeError naming the method and the input, inside autocast or not (a rejected promise for forwardAsync)', async () => {
    const model = vggTutorial();
    for (const bad of [null, 5, 'x']) {
      expect(() => model.predict(bad as never)).toThrow(/^argument 'VGG\.predict: input 0' must be a Tensor, got /);
      expect(() => autocast('cpu', () => model.predict(bad as never))).toThrow(/^argument 'VGG\.predict: input 0' must be a Tensor, got /);
      await expect(autocast('cpu', () => model.forwardAsync(bad as never))).rejects.toThrow(/^argument 'VGG\.forwardAsync: input 0' must be a Tensor, got /);
    }
    model.dispose();
  });

  it('concurrent runs on worker threads, one started outside autocast and one inside: float32 and bfloat16', async () => {
    manualSeed(3);
    const model = vggTutorial().eval();
    const x = randn(2, 3, 32, 32);
    // (autocast keeps its region open until an async fn's promise settles, so the float32 call starts first.)
    const outside = model.forwardAsync(x);
    const pending = autocast('cpu', () => model.forwardAsync(x));
    const [bf, fp] = await Promise.all([pending, outside]);
    expect(bf.dtype).toBe('bfloat16');
    expect(fp.dtype).toBe('float32');
    const ref = model.predict(x);
    expect(same(fp, ref)).toBe(true);
    for (const t of [x, bf, fp, ref]) t.dispose();
    model.dispose();
  }, 120_000);

  it('fp32 predict is unchanged by a bfloat16 compile (cached apart), and a weight change recompiles both', async () => {
    manualSeed(4);
    const model = vggTutorial();
    perturb(model, 5);
    const x = randn(4, 3, 32, 32);
    const fp0 = model.predict(x);
    const bf0 = autocast('cpu', () => model.predict(x));
    const fp1 = model.predict(x);
    const fpAsync = await model.forwardAsync(x);
    expect(fp1.dtype).toBe('float32');
    expect(same(fp1, fp0)).toBe(true);
    expect(same(fpAsync, fp0)).toBe(true);
    const bfAgain = autocast('cpu', () => model.predict(x));
    expect(same(bfAgain, bf0)).toBe(true);
    bfAgain.dispose();
    // One SGD step changes the weights in place: both compiled forms follow.
    const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
    tidy(() => {
      model(x).pow(2).mean().backward();
      opt.step();
    });
    const bf1 = autocast('cpu', () => model.predict(x));
    const eager1 = eagerAutocast(model, x);
    expect(same(bf1, eager1)).toBe(true);
    expect(same(bf1, bf0)).toBe(false);
    const fp2 = model.predict(x);
    const fpEager = noGrad(() => {
      model.eval();
      const y = model(x);
      model.train();
      return y;
    });
    expect(fp2.dtype).toBe('float32');
    expect(fp2.sub(fpEager).abs().max().item() as number).toBeLessThan(1e-5 * (fpEager.abs().max().item() as number));
    expect(same(fp2, fp0)).toBe(false);
    // A state dict loaded: recompiled too.
    const other = vggTutorial();
    model.loadStateDict(other.stateDict());
    const bf2 = autocast('cpu', () => model.predict(x));
    const eager2 = eagerAutocast(model, x);
    expect(same(bf2, eager2)).toBe(true);
    for (const t of [x, fp0, bf0, fp1, fpAsync, bf1, eager1, fp2, fpEager, bf2, eager2]) t.dispose();
    other.dispose();
    model.dispose();
  }, 120_000);

  it('BatchNorm folded into the convolutions: within 2 bfloat16 ulps of eager autocast (relative to the largest logit)', () => {
    // freeze folds BatchNorm into the preceding convolution's constants (as in the float32
    // graph, where that costs ~1e-7): the convolution then rounds its output to bfloat16 once
    // after the folded scale instead of before BatchNorm, so a logit may move by an ulp or so.
    manualSeed(6);
    const model = new nn.Sequential(
      ...makeLayers([16, 'M', 32, 'M'], { batchNorm: true, inChannels: 3 }).children(),
      new nn.Flatten(),
      new nn.Linear(32 * 8 * 8, 10),
    );
    perturb(model, 7);
    const x = randn(8, 3, 32, 32);
    const eager = eagerAutocast(model, x);
    const p = autocast('cpu', () => model.predict(x));
    expect(p.dtype).toBe('bfloat16');
    const scale = eager.float().abs().max().item() as number;
    const diff = p.float().sub(eager.float()).abs().max().item() as number;
    console.log(`BatchNorm net, compiled bfloat16 vs eager autocast: max |diff| ${diff} at scale ${scale}`);
    expect(diff).toBeLessThanOrEqual(2 * 2 ** -7 * scale);
    for (const t of [x, eager, p]) t.dispose();
    model.dispose();
  });

  it('compiled bfloat16 agrees with compiled float32 on ≥ 99 % of 1,000 Fashion-MNIST test images (top-1), a model trained here', async () => {
    const { model, testBatches, dispose } = await trainFashionMnistNet(4096);
    let agree = 0;
    let correct = [0, 0];
    let n = 0;
    for (const [x, y] of testBatches()) {
      const fp = model.predict(x);
      const bf = await autocast('cpu', () => model.forwardAsync(x));
      tidy(() => {
        expect(bf.dtype).toBe('bfloat16');
        const [a, b] = [fp.argmax(1), bf.argmax(1)];
        agree += b.eq(a).sum().item() as number;
        correct = [correct[0] + (a.eq(y).sum().item() as number), correct[1] + (b.eq(y).sum().item() as number)];
        n += x.shape[0];
      });
      for (const t of [x, y, fp, bf]) t.dispose();
    }
    console.log(
      `compiled bfloat16 vs compiled float32 on ${n} Fashion-MNIST test images: top-1 agreement ${((agree / n) * 100).toFixed(1)} %; ` +
        `accuracy float32 ${((correct[0] / n) * 100).toFixed(1)} %, bfloat16 ${((correct[1] / n) * 100).toFixed(1)} %`,
    );
    expect(n).toBe(1000);
    expect(correct[0] / n).toBeGreaterThan(0.7); // the model did learn
    expect(agree / n).toBeGreaterThanOrEqual(0.99);
    dispose();
  }, 600_000);

  it('memory: 1,500 bfloat16 predict and forwardAsync calls leave the handle table and the bytes flat', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    manualSeed(8);
    // Output 16×32×32 bfloat16 per image, 4 images: 64 KB; a leaked output per call would add ≥ 96 MB over 1,500.
    const model = new nn.Sequential(new nn.Conv2d(3, 16, 3, { padding: 1 }), new nn.BatchNorm2d(16), new nn.ReLU()).eval();
    const x = randn(4, 3, 32, 32);
    const call = async (i: number) => {
      const y = await autocast('cpu', () => (i % 2 === 0 ? model.predict(x) : model.forwardAsync(x)));
      y.dispose();
    };
    // Collected and finalized before each reading: handles other tests left to the FinalizationRegistry are not ours.
    const settle = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 100));
      gc();
    };
    for (let i = 0; i < 500; i++) await call(i);
    await settle();
    const before = memory();
    const rss0 = process.memoryUsage.rss();
    for (let i = 0; i < 1500; i++) await call(i);
    await settle();
    const after = memory();
    const rssGrowth = process.memoryUsage.rss() - rss0;
    console.log(
      `bfloat16 predict/forwardAsync × 1,500: tensors ${before.tensors} → ${after.tensors}, bytes ${before.bytes} → ${after.bytes}, RSS ${(rssGrowth / 2 ** 20).toFixed(1)} MB`,
    );
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
    // A quarter of what one leaked output per call would add; the allocators' own drift is a few MB.
    expect(rssGrowth).toBeLessThan(24 * 2 ** 20);
    x.dispose();
    model.dispose();
  }, 300_000);
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('against PyTorch (live oracle)', () => {
  it('the tutorial VGG: predict inside autocast gives the bits of PyTorch tracing and freezing it under torch.autocast(cache_enabled=False)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-amp-oracle-'));
    try {
      manualSeed(16);
      const model = vggTutorial().eval();
      perturb(model, 17);
      const x = randn(2, 3, 32, 32);
      const p = autocast('cpu', () => model.predict(x));
      save(model.stateDict(), join(dir, 'weights.pth'));
      save(x, join(dir, 'x.pth'));
      const r = await python([
        '-c',
        `
import base64, json, sys, torch
sys.path.insert(0, 'scripts/fixtures')
from amp import VGG, TUTORIAL_CFG
from torchvision.models.vgg import make_layers
m = VGG(make_layers(TUTORIAL_CFG)).eval()
m.load_state_dict(torch.load(sys.argv[1] + '/weights.pth'))
x = torch.load(sys.argv[1] + '/x.pth')
with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, cache_enabled=False):
    frozen = torch.jit.freeze(torch.jit.trace(m, x))
with torch.no_grad():
    y = frozen(x)
print(json.dumps({'dtype': str(y.dtype), 'data': base64.b64encode(y.float().numpy().tobytes()).decode()}))
`,
        dir,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const want = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { dtype: string; data: string };
      expect(want.dtype).toBe('torch.bfloat16');
      expect(p.dtype).toBe('bfloat16');
      const widened = p.float();
      expect(Buffer.from(want.data, 'base64').equals(bytesOf(widened))).toBe(true);
      for (const t of [x, p, widened]) t.dispose();
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

describe('the other kinds of model', () => {
  it("ScriptModule (traced, frozen, optimized): forwardAsync runs under the caller's autocast, as forward does", async () => {
    manualSeed(9);
    const model = vggTutorial().eval();
    perturb(model, 10);
    const x = randn(2, 3, 32, 32);
    const traced = jit.trace(model, x);
    const frozen = jit.freeze(traced);
    const optimized = jit.optimizeForInference(traced);
    const eager = eagerAutocast(model, x);
    // The traced graph's ops pass autocast's kernels at run time, as eager ones do: eager's bits.
    const sync = one(autocast('cpu', () => traced.forward(x)));
    const async = one(await autocast('cpu', () => traced.forwardAsync(x)));
    expect(sync.dtype).toBe('bfloat16');
    expect(same(sync, eager)).toBe(true);
    expect(same(async, sync)).toBe(true);
    for (const s of [frozen, optimized]) {
      const a = one(autocast('cpu', () => s.forward(x)));
      const b = one(await autocast('cpu', () => s.forwardAsync(x)));
      expect(same(b, a), s.toString()).toBe(true);
      for (const t of [a, b]) t.dispose();
    }
    // The worker thread's own state is put back: outside the region, float32 again.
    const after = one(await traced.forwardAsync(x));
    const ref = one(traced.forward(x));
    expect(after.dtype).toBe('float32');
    expect(same(after, ref)).toBe(true);
    for (const t of [x, eager, sync, async, after, ref]) t.dispose();
    for (const s of [traced, frozen, optimized]) s.dispose();
    model.dispose();
  }, 120_000);

  it("int8 (quantization.quantize): libtorch's quantized kernels are not on autocast's lists, so under autocast it gives its float32 output, as when called", async () => {
    manualSeed(11);
    const model = new nn.Sequential(
      ...makeLayers([8, 'M', 16, 'M'], { batchNorm: true, inChannels: 3 }).children(),
      new nn.Flatten(),
      new nn.Linear(16 * 4 * 4, 10),
    ).eval();
    const q = quantization.quantize(model, [randn(4, 3, 16, 16), randn(4, 3, 16, 16)]);
    const x = randn(3, 3, 16, 16);
    const eager = noGrad(() => autocast('cpu', () => q(x)));
    const plain = noGrad(() => q(x));
    const p = autocast('cpu', () => q.predict(x));
    const a = await autocast('cpu', () => q.forwardAsync(x));
    expect(eager.dtype).toBe('float32');
    expect(same(eager, plain)).toBe(true);
    expect(same(p, eager)).toBe(true);
    expect(same(a, p)).toBe(true);
    for (const t of [x, eager, plain, p, a]) t.dispose();
    q.dispose();
    model.dispose();
  }, 120_000);

  it.skipIf(!distributed.isAvailable())(
    'DDP-wrapped (world size 1): predict and forwardAsync under autocast give the wrapped module’s eager autocast bits',
    async () => {
      const port = await freePort();
      distributed.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeout: 20000 });
      try {
        manualSeed(12);
        const net = vggTutorial();
        perturb(net, 13);
        const ddp = new nn.parallel.DistributedDataParallel(net);
        const x = randn(2, 3, 32, 32);
        const eager = eagerAutocast(net, x);
        const p = autocast('cpu', () => ddp.predict(x));
        const a = await autocast('cpu', () => ddp.forwardAsync(x));
        const fp = ddp.predict(x);
        expect(p.dtype).toBe('bfloat16');
        expect(same(p, eager)).toBe(true);
        expect(same(a, p)).toBe(true);
        expect(fp.dtype).toBe('float32');
        for (const t of [x, eager, p, a, fp]) t.dispose();
        ddp.dispose();
      } finally {
        distributed.destroyProcessGroup();
      }
    },
    120_000,
  );
});

describe('float16', () => {
  it.skipIf(!cpuHalfAllowed)(
    "CPU float16 autocast (PyTorch ≥ 2.1): the compiled float16 graph gives eager's bits; on libtorch 1.13 CPU autocast takes bfloat16 only",
    async () => {
      manualSeed(14);
      const model = vggTutorial();
      perturb(model, 15);
      const x = randn(2, 3, 32, 32);
      const eager = eagerAutocast(model, x, 'float16');
      const p = autocast('cpu', { dtype: 'float16' }, () => model.predict(x));
      const a = await autocast('cpu', { dtype: 'float16' }, () => model.forwardAsync(x));
      const bf = autocast('cpu', { dtype: 'bfloat16' }, () => model.predict(x));
      expect(eager.dtype).toBe('float16');
      expect(same(p, eager)).toBe(true);
      expect(same(a, p)).toBe(true);
      expect(bf.dtype).toBe('bfloat16'); // cached apart from the float16 graph
      for (const t of [x, eager, p, a, bf]) t.dispose();
      model.dispose();
    },
    120_000,
  );

  it.skipIf(cpuHalfAllowed)('libtorch 1.13: float16 CPU autocast is refused before anything is compiled', () => {
    const model = vggTutorial();
    const x = randn(1, 3, 32, 32);
    expect(() => autocast('cpu', { dtype: 'float16' }, () => model.predict(x))).toThrow(
      /option 'dtype' must be 'bfloat16' for 'cpu' autocast in libtorch 1\.13/,
    );
    x.dispose();
    model.dispose();
  });
});

describe('the built package (dist/)', () => {
  const work = resolve('tmp', 'amp-inference-test'); // inside the package, so that it imports itself by name
  mkdirSync(work, { recursive: true });
  const dir = mkdtempSync(join(work, 'run-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Run on the sources here and on dist/ in a child (sent as text: it uses nothing but `vt`). */
  async function probe(vt: typeof source): Promise<Record<string, unknown>> {
    vt.manualSeed(0);
    const model = vt.vggTutorial();
    const x = vt.randn(2, 3, 32, 32);
    const p = vt.autocast('cpu', { dtype: 'bfloat16' }, () => model.predict(x));
    const a = await vt.autocast('cpu', () => model.forwardAsync(x));
    const f = model.predict(x);
    const out = {
      dtypes: [p.dtype, a.dtype, f.dtype],
      bits: Array.from(p.toTypedArray() as Float32Array),
      asyncBits: Array.from(a.toTypedArray() as Float32Array),
    };
    for (const t of [x, p, a, f]) t.dispose();
    model.dispose();
    return { ...out, leaked: vt.memory().tensors };
  }

  it("ESM and CJS: compiled autocast inference from dist/ gives the sources' bits", async () => {
    // The handles left here are the other tests' business: only the child's must be 0.
    const { leaked: _, ...expected } = await probe(source);
    expect(expected).toMatchObject({ dtypes: ['bfloat16', 'bfloat16', 'float32'] });
    expect(expected.asyncBits).toEqual(expected.bits);
    for (const format of ['esm', 'cjs'] as const) {
      const file = join(dir, format === 'esm' ? 'probe.mjs' : 'probe.cjs');
      const head = format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n";
      writeFileSync(file, `${head}const probe = ${probe.toString()};\nprobe(vt).then((r) => process.stdout.write(JSON.stringify(r)));\n`);
      const r = await runNodeFile(file, dir);
      if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
      expect(JSON.parse(r.stdout), format).toEqual({ ...expected, leaked: 0 });
    }
  }, 240_000);
});

describe('vgg-torch predict --amp', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-amp-cli-'));
  const png = join(dir, 'shoe.png');
  const checkpoint = join(dir, 'run', 'checkpoint.pth');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeAll(async () => {
    await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: 200, g: 180, b: 160 } } })
      .png()
      .toFile(png);
    // A tiny real checkpoint: the tutorial VGG, 64 Fashion-MNIST images, one epoch.
    const args = ['train', '--dataset', 'fashion-mnist', '--arch', 'tutorial', '--epochs', '1', '--limit', '64', '--test-limit', '32', '--batch-size', '32'];
    const r = await cli([...args, '--out', join(dir, 'run')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }, 600_000);

  const top10 = (out: string) =>
    out
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => {
        const [, p, c] = /^ +([\d.]+) % {2}(.+)$/.exec(l)!;
        return [Number(p), c] as const;
      });

  it('bf16 classifies with the compiled bfloat16 graph: all ten classes, probabilities of bfloat16 logits', async () => {
    const fp32 = await cli(['predict', png, '--checkpoint', checkpoint, '--topk', '10']);
    const bf16 = await cli(['predict', png, '--checkpoint', checkpoint, '--topk', '10', '--amp', 'bf16']);
    const off = await cli(['predict', png, '--checkpoint', checkpoint, '--topk', '10', '--amp', 'off']);
    for (const r of [fp32, bf16, off]) expect([r.code, r.stderr]).toEqual([0, '']);
    expect(off.stdout).toBe(fp32.stdout); // off is the default
    const [a, b] = [top10(fp32.stdout), top10(bf16.stdout)];
    expect(b.map(([, c]) => c).sort()).toEqual(a.map(([, c]) => c).sort());
    expect(Math.abs(b.reduce((s, [p]) => s + p, 0) - 100)).toBeLessThan(0.1);
    // bfloat16 logits (8 significant bits) move the printed probabilities, by little.
    expect(bf16.stdout).not.toBe(fp32.stdout);
    const fpOf = new Map(a.map(([p, c]) => [c, p]));
    for (const [p, c] of b) expect(Math.abs(p - fpOf.get(c)!), c).toBeLessThan(5);
  }, 300_000);

  it('auto is bf16 on a CPU with native bf16, else fp32, and says which and why on stderr', async () => {
    const bf16 = backends.cpu.bf16Support();
    const auto = await cli(['predict', png, '--checkpoint', checkpoint, '--topk', '10', '--amp', 'auto']);
    const same = await cli(['predict', png, '--checkpoint', checkpoint, '--topk', '10', ...(bf16.native ? ['--amp', 'bf16'] : [])]);
    expect(auto.code).toBe(0);
    expect(auto.stderr).toBe(`Precision: ${bf16.native ? 'bf16 autocast' : 'fp32'} (--amp auto: ${bf16.reason})\n`);
    expect(auto.stdout).toBe(same.stdout);
  }, 300_000);

  it.skipIf(!cpuHalfAllowed)(
    'fp16 on the CPU (libtorch ≥ 2.1) classifies too',
    async () => {
      const r = await cli(['predict', png, '--checkpoint', checkpoint, '--topk', '10', '--amp', 'fp16']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(top10(r.stdout)).toHaveLength(10);
    },
    300_000,
  );

  it('refuses --amp with --int8, an unknown precision and (before libtorch 2.1) fp16 on the CPU, in one line', async () => {
    const cases: [string[], RegExp][] = [
      [['--amp', 'bf16', '--int8'], /^vgg-torch: --amp and --int8 exclude each other: libtorch's int8 kernels are not on autocast's lists$/],
      [['--amp', 'fp17'], /^vgg-torch: unknown --amp precision 'fp17' \(choose from auto, bf16, fp16, off\)$/],
      [['--amp'], /^vgg-torch: --amp needs a value/],
    ];
    if (!cpuHalfAllowed)
      cases.push([['--amp', 'fp16'], /^vgg-torch: --amp fp16 on the CPU needs libtorch 2\.1 or later \(this is 1\.13\.\d+\); use --amp bf16$/]);
    for (const [extra, message] of cases) {
      const r = await cli(['predict', png, '--checkpoint', checkpoint, '--device', 'cpu', ...extra]);
      expect({ extra, code: r.code }).toEqual({ extra, code: 2 });
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  }, 300_000);
});
