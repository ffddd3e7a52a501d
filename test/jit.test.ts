// jit: libtorch's tracer compiles this package's modules into TorchScript
// graphs; libtorch's passes optimize them; they run on and off the event loop;
// TorchScript files go both ways with Python.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Tensor,
  getNumThreads,
  jit,
  load,
  manualSeed,
  memory,
  nn,
  noGrad,
  optim,
  randn,
  save,
  setNumThreads,
  tidy,
  vgg11,
  vgg11_bn,
  vggTutorial,
} from '../lib/index.js';
import { bytesOf, hasTorchPython, python, requireLiveOracle } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-jit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const one = (t: Tensor | Tensor[]): Tensor => (Array.isArray(t) ? t[0] : t);
const relDiff = (a: Tensor, b: Tensor): number => tidy(() => (a.sub(b).abs().max().item() as number) / Math.max(b.abs().max().item() as number, 1e-30));

function smallNet(): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(true),
    new nn.MaxPool2d(2),
    new nn.Conv2d(8, 16, 3, { padding: 1 }),
    new nn.ReLU(),
    new nn.AdaptiveAvgPool2d([2, 2]),
    new nn.Flatten(),
    new nn.Dropout(0.5),
    new nn.Linear(64, 10),
  );
}

describe('jit.trace', () => {
  it('records the forward of any module into a graph that gives the eager output, bit for bit, at other batch sizes too', () => {
    manualSeed(0);
    for (const [name, model, shape] of [
      ['tutorial VGG', vggTutorial(), [2, 3, 32, 32]],
      ['vgg11 at 32×32', vgg11(), [1, 3, 32, 32]],
      ['a Sequential with BatchNorm and Dropout', smallNet(), [3, 3, 16, 16]],
    ] as const) {
      model.eval();
      tidy(() => {
        const script = jit.trace(model, randn(...shape));
        for (const batch of [shape[0], 5]) {
          const x = randn(batch, ...shape.slice(1));
          const eager = noGrad(() => model(x));
          const compiled = one(script.forward(x));
          expect(compiled.shape, name).toEqual(eager.shape);
          expect(bytesOf(compiled).equals(bytesOf(eager)), `${name}, batch ${batch}`).toBe(true);
        }
        script.dispose();
      });
      model.dispose();
    }
  });

  it('describes its graph: aten ops in order, weights as tensor constants', () => {
    manualSeed(1);
    const model = smallNet().eval();
    const script = jit.trace(model, randn(1, 3, 16, 16));
    tidy(() => {
      const g = script.graph();
      const ops = g.nodes.map((n) => n.kind).filter((k) => k !== 'prim::Constant' && k !== 'prim::ListConstruct');
      expect(ops).toEqual([
        'aten::conv2d',
        'aten::batch_norm',
        'aten::relu_',
        'aten::max_pool2d',
        'aten::conv2d',
        'aten::relu',
        'aten::adaptive_avg_pool2d',
        'aten::flatten',
        'aten::dropout',
        'aten::linear',
      ]);
      expect(g.inputs).toHaveLength(1);
      expect(g.outputs).toHaveLength(1);
      const weights = g.nodes.filter((n) => n.kind === 'prim::Constant' && n.value !== null && typeof n.value === 'object' && !Array.isArray(n.value));
      const conv0 = weights.map((n) => n.value as Tensor).find((t) => t.shape.join() === '8,3,3,3')!;
      expect(conv0.equal((model.at(0) as nn.Conv2d).weight)).toBe(true);
      expect(g.text).toMatch(/aten::conv2d/);
    });
    script.dispose();
    model.dispose();
  });

  it('shares the weights with the model (held once, counted by memory()) until dispose()', () => {
    manualSeed(2);
    const model = vggTutorial().eval();
    const bytes = [...model.parameters(), ...model.buffers()].reduce((s, t) => s + t.numel() * 4, 0);
    const x = randn(1, 3, 32, 32);
    const before = memory();
    const script = jit.trace(model, x);
    expect(memory()).toEqual(before); // no tensor left behind, no weight copied
    expect(script.memory().bytes).toBe(bytes);
    const frozen = jit.optimizeForInference(script);
    // BatchNorm-free VGG: the packed convolution weights are opaque; the linear ones are transposed copies.
    expect(frozen.memory().bytes).toBeLessThan(bytes);
    script.dispose();
    frozen.dispose();
    expect(script.isDisposed && frozen.isDisposed).toBe(true);
    expect(() => script.forward(randn(1, 3, 32, 32))).toThrow(/^ScriptModule\.forward: the module was disposed$/);
    expect(() => script.memory()).toThrow(/disposed/);
    model.dispose();
    x.dispose();
  });

  it('refuses what it cannot compile, with clear errors', () => {
    class Branchy extends nn.Module {
      forward(x: Tensor): Tensor {
        return (x.sum().item() as number) > 0 ? x.relu() : x.neg();
      }
    }
    class Noisy extends nn.Module {
      forward(x: Tensor): Tensor {
        return x.add(randn(...x.shape));
      }
    }
    const x = randn(2, 3, 8, 8);
    const train = smallNet(); // training mode: dropout draws a new mask each run
    const before = memory().tensors;
    expect(() => jit.trace(new Branchy(), x)).toThrow(/^jit\.trace: the forward reads tensor values \(item\(\)\)/);
    expect(() => jit.trace(new Noisy(), x)).toThrow(/^jit\.trace: the compiled module does not reproduce the forward/);
    expect(() => jit.trace((() => 3) as never, x)).toThrow(/^jit\.trace: the forward must return a tensor or an array of tensors, got 3$/);
    expect(() => jit.trace({} as never, x)).toThrow(TypeError);
    expect(() => jit.trace(train, x)).toThrow(/does not reproduce the forward/);
    expect(memory().tensors).toBe(before); // failed traces leave nothing behind
    train.dispose();
    x.dispose();
    // A wrong input shape names the expected one.
    const net = smallNet().eval();
    const script = jit.trace(net, randn(1, 3, 16, 16));
    expect(() => script.forward(randn(1, 3, 17, 16))).toThrow(
      /^ScriptModule\.forward: expected input 0 of shape \[N, 3, 16, 16\] \(any batch size N\), got \[1, 3, 17, 16\]$/,
    );
    expect(() => script.forward(randn(3, 16, 16))).toThrow(RangeError);
    expect(() => script.forward()).toThrow(/expected 1 input\(s\), got 0/);
    script.dispose();
    net.dispose();
  });
});

describe('jit.freeze and jit.optimizeForInference', () => {
  it('fold BatchNorm, drop dropout, run oneDNN convolutions, and stay within 1e-4 of eager (vgg11_bn at 224)', () => {
    manualSeed(3);
    const model = vgg11_bn().eval();
    // Non-trivial running statistics, as a trained model has.
    noGrad(() => {
      for (const b of model.buffers()) if (b.dtype === 'float32') b.copy_(b.add(randn(...b.shape).mul(0.1)).abs());
    });
    const x = randn(1, 3, 224, 224);
    const eager = noGrad(() => model(x));
    const traced = jit.trace(model, x);
    const frozen = jit.freeze(traced);
    const optimized = jit.optimizeForInference(traced);
    tidy(() => {
      const kinds = (s: jit.ScriptModule) => new Set(s.graph().nodes.map((n) => n.kind));
      expect(kinds(frozen).has('aten::batch_norm')).toBe(false);
      expect(kinds(frozen).has('aten::dropout')).toBe(false);
      expect(kinds(optimized).has('prim::mkldnn_convolution')).toBe(true);
      expect(relDiff(one(frozen.forward(x)), eager)).toBeLessThan(1e-4);
      expect(relDiff(one(optimized.forward(x)), eager)).toBeLessThan(1e-4);
    });
    for (const s of [traced, frozen, optimized]) s.dispose();
    eager.dispose();
    model.dispose();
  });
});

describe('forwardAsync', () => {
  it('ten concurrent runs give what ten sequential runs give', async () => {
    manualSeed(4);
    const model = vggTutorial().eval();
    const script = jit.trace(model, randn(2, 3, 32, 32));
    const inputs = Array.from({ length: 10 }, () => randn(2, 3, 32, 32));
    const sequential = inputs.map((x) => one(script.forward(x)));
    const concurrent = (await Promise.all(inputs.map((x) => script.forwardAsync(x)))).map(one);
    concurrent.forEach((c, i) => expect(bytesOf(c).equals(bytesOf(sequential[i]))).toBe(true));
    // Disposed under a running call: the call ends with the weights it started with.
    const running = script.forwardAsync(inputs[0]);
    script.dispose();
    expect(bytesOf(one(await running)).equals(bytesOf(sequential[0]))).toBe(true);
    await expect(script.forwardAsync(inputs[0])).rejects.toThrow(/disposed/);
    for (const t of [...inputs, ...sequential, ...concurrent]) t.dispose();
    model.dispose();
  });

  it('rejects with a clear error', async () => {
    const model = smallNet().eval();
    const script = jit.trace(model, randn(1, 3, 16, 16));
    await expect(script.forwardAsync(randn(1, 4, 16, 16))).rejects.toThrow(/expected input 0 of shape \[N, 3, 16, 16\]/);
    const loaded = (() => {
      const file = join(dir, 'small.pt');
      script.save(file);
      return jit.load(file); // a loaded module has no recorded shape: libtorch's own error comes back
    })();
    await expect(loaded.forwardAsync(randn(1, 4, 16, 16))).rejects.toThrow(/expected input\[1, 4, 16, 16\] to have 3 channels, but got 4 channels instead/);
    script.dispose();
    loaded.dispose();
    model.dispose();
  });

  it('keeps the event loop free while vgg11 runs (the sync forward blocks it for the whole run)', async () => {
    const threads = getNumThreads();
    setNumThreads(1); // the other core stays with the event loop, as on a loaded server
    try {
      manualSeed(5);
      const model = vgg11().eval();
      const x = randn(1, 3, 160, 160);
      const script = jit.trace(model, x, { checkTrace: false });
      const measure = async (run: () => Promise<unknown> | unknown) => {
        const h = monitorEventLoopDelay({ resolution: 5 });
        h.enable();
        await new Promise((r) => setTimeout(r, 30)); // the histogram's timer is running
        const t0 = performance.now();
        // A timer must tick through the run for the histogram to see the loop.
        const ticker = setInterval(() => {}, 5);
        await run();
        await new Promise((r) => setTimeout(r, 20));
        clearInterval(ticker);
        h.disable();
        return { p99: h.percentile(99) / 1e6, max: h.max / 1e6, ms: performance.now() - t0 };
      };
      const sync = await measure(() => dispose(script.forward(x)));
      const async = await measure(async () => dispose(await script.forwardAsync(x)));
      // The sync run holds the loop for about its whole duration; the async one hardly at all.
      expect(sync.max).toBeGreaterThan(0.5 * sync.ms - 40);
      expect(async.p99).toBeLessThan(Math.min(50, sync.max / 4));
      script.dispose();
      model.dispose();
      x.dispose();
    } finally {
      setNumThreads(threads);
    }
  });
});

function dispose(t: Tensor | Tensor[]): void {
  for (const x of Array.isArray(t) ? t : [t]) x.dispose();
}

describe('nn.Module.predict and forwardAsync', () => {
  it('compile on first use, cache per input shape, recompile when the weights change, and match eval().forward', async () => {
    manualSeed(6);
    const model = smallNet();
    const x = randn(4, 3, 16, 16);
    const eager = () =>
      noGrad(() => {
        model.eval();
        const y = model(x);
        model.train();
        return y;
      });
    const y0 = eager();
    const p0 = model.predict(x);
    expect(relDiff(p0, y0)).toBeLessThan(1e-5);
    expect(model.training).toBe(true); // its mode is left as it was
    // Another batch size: the same compiled module.
    const p1 = await model.forwardAsync(x.narrow(0, 0, 2));
    expect(relDiff(p1, p0.narrow(0, 0, 2))).toBeLessThan(1e-6);
    // One SGD step changes the weights in place: predict follows.
    const opt = new optim.SGD(model.parameters(), { lr: 0.5 });
    tidy(() => {
      model(x).pow(2).mean().backward();
      opt.step();
    });
    const y1 = eager();
    expect(relDiff(model.predict(x), y1)).toBeLessThan(1e-5);
    expect(relDiff(y1, y0)).toBeGreaterThan(1e-3);
    // A state dict loaded: the same.
    const other = smallNet();
    model.loadStateDict(other.stateDict());
    expect(relDiff(model.predict(x), eager())).toBeLessThan(1e-5);
    other.dispose();
    model.dispose();
  });
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('TorchScript files, both ways with Python (live oracle)', () => {
  it("jit.save: Python's torch.jit.load gives the same outputs, bit for bit", async () => {
    manualSeed(7);
    const model = vgg11_bn().eval();
    const x = randn(2, 3, 32, 32);
    const traced = jit.trace(model, x);
    const frozen = jit.freeze(traced);
    const files = { traced: join(dir, 'traced.pt'), frozen: join(dir, 'frozen.pt'), input: join(dir, 'input.pth') };
    jit.save(traced, files.traced);
    jit.save(frozen, files.frozen);
    save(x, files.input);
    expect(() => jit.save(jit.optimizeForInference(traced), join(dir, 'no.pt'))).toThrow(/pre-packed oneDNN weights/);
    const r = await python([
      '-c',
      `
import torch, sys, base64, json
x = torch.load(sys.argv[3])
out = {}
for k, f in (('traced', sys.argv[1]), ('frozen', sys.argv[2])):
    m = torch.jit.load(f)
    with torch.no_grad():
        out[k] = base64.b64encode(m(x).numpy().tobytes()).decode()
print(json.dumps(out))
`,
      files.traced,
      files.frozen,
      files.input,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const fromPython = JSON.parse(r.stdout) as Record<string, string>;
    expect(Buffer.from(fromPython.traced, 'base64').equals(bytesOf(one(traced.forward(x))))).toBe(true);
    expect(Buffer.from(fromPython.frozen, 'base64').equals(bytesOf(one(frozen.forward(x))))).toBe(true);
    traced.dispose();
    frozen.dispose();
    model.dispose();
  });

  it("jit.load: torchvision's vgg11 scripted and traced by Python runs here, sync and async, with Python's outputs", async () => {
    const r = await python([
      '-c',
      `
import torch, torchvision, sys
torch.manual_seed(0)
m = torchvision.models.vgg11().eval()
x = torch.randn(2, 3, 32, 32)
torch.jit.script(m).save(sys.argv[1] + '/scripted.pt')
torch.jit.trace(m, x).save(sys.argv[1] + '/pytraced.pt')
with torch.no_grad():
    y = m(x)
torch.save({'x': x, 'y': y}, sys.argv[1] + '/io.pth')
`,
      dir,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const io = load(join(dir, 'io.pth')) as Map<string, Tensor>;
    const [x, y] = [io.get('x')!, io.get('y')!];
    for (const name of ['scripted', 'pytraced']) {
      const m = jit.load(join(dir, `${name}.pt`));
      expect(m.inputShapes).toBeNull();
      const sync = one(m.forward(x));
      const async = one(await m.forwardAsync(x));
      expect(relDiff(sync, y), name).toBeLessThan(1e-6);
      expect(bytesOf(async).equals(bytesOf(sync)), name).toBe(true);
      m.dispose();
    }
  });

  it('jit.load refuses a missing or corrupt file with a clear error', () => {
    expect(() => jit.load(join(dir, 'missing.pt'))).toThrow(/^jit\.load: no such file: /);
    const bad = join(dir, 'bad.pt');
    writeFileSync(bad, readFileSync(join(dir, 'traced.pt')).subarray(0, 1000));
    expect(() => jit.load(bad)).toThrow(/^jit\.load: .*bad\.pt is not a TorchScript file libtorch can read: /);
    expect(() => jit.load(5 as never)).toThrow(TypeError);
  });
});
