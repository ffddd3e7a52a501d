// Post-training static int8 quantization on libtorch's quantized kernels:
// against PyTorch's eager-mode quantization (live oracle: same observers, same
// qparams, same int8 weights, same outputs), agreement with fp32 measured on
// real data (Fashion-MNIST, Debian's dataset-fashion-mnist), and clear errors.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataLoader, Subset, type Tensor, backends, jit, load, save, manualSeed, nn, noGrad, quantization, randn, tidy, vgg11 } from '../lib/index.js';
import { type Handle, type ObjectHandle, native, op } from '../lib/native.js';
import { wrap } from '../lib/tensor/tensor.js';
import { type EncodedTensor, bitwiseDiff, bytesOf, decode, hasTorchPython, python, requireLiveOracle, trainFashionMnistNet } from './helpers.js';

// PyTorch eager mode, configured to our observers: MinMaxObserver quint8
// activations (reduce_range on fbgemm/x86), PerChannelMinMaxObserver symmetric
// qint8 weights; conv+bn(+relu), conv+relu and linear+relu fused. The float
// model (seeded, BatchNorm statistics randomized so that folding matters) is
// written to argv[1]; the calibration batches, test inputs, every quantized
// layer's qparams, int8 weights and biases, and the int8 outputs go to argv[3].
const ORACLE = String.raw`
import base64, copy, json, sys, torch, torch.nn as nn, torch.ao.quantization as tq
enc = lambda t: {'dtype': str(t.dtype).replace('torch.', ''), 'shape': list(t.shape), 'data': base64.b64encode(t.detach().contiguous().numpy().tobytes()).decode()}
path, engine = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
f = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
    nn.Conv2d(16, 16, 3, padding=1, stride=2), nn.ReLU(inplace=True),
    nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(1),
    nn.Linear(64, 32), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(32, 10))
with torch.no_grad():
    for bn in (f[1], f[5]):
        bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.normal_(0, 0.5); bn.running_var.uniform_(0.5, 2)
f.eval()
torch.save(f.state_dict(), path)
calib = [torch.randn(4, 3, 16, 16) for _ in range(3)]
# Some test inputs well outside the calibrated range: saturation must match too.
x = torch.cat([torch.randn(3, 3, 16, 16), 3 * torch.randn(2, 3, 16, 16)])
torch.backends.quantized.engine = engine
m = copy.deepcopy(f)
tq.fuse_modules(m, [['0', '1', '2'], ['4', '5'], ['6', '7'], ['10', '11']], inplace=True)
q = nn.Sequential(tq.QuantStub(), m, tq.DeQuantStub()).eval()
q.qconfig = tq.QConfig(activation=tq.MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=engine in ('fbgemm', 'x86')),
                       weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
tq.prepare(q, inplace=True)
with torch.no_grad():
    for c in calib: q(c)
tq.convert(q, inplace=True)
layers = []
for name, mod in q.named_modules():
    if hasattr(mod, 'scale'):
        e = {'type': type(mod).__name__, 'scale': float(mod.scale), 'zeroPoint': int(mod.zero_point)}
        if callable(getattr(mod, 'weight', None)):
            w = mod.weight()
            e.update(wScales=enc(w.q_per_channel_scales()), wZeroPoints=w.q_per_channel_zero_points().tolist(), wInt=enc(w.int_repr()), bias=enc(mod.bias()))
        layers.append(e)
with torch.no_grad():
    y = q(x)
json.dump({'calib': [enc(c) for c in calib], 'x': enc(x), 'y': enc(y), 'layers': layers}, open(sys.argv[3], 'w'))
`;

interface OracleLayer {
  type: string;
  scale: number;
  zeroPoint: number;
  wScales?: EncodedTensor;
  wZeroPoints?: number[];
  wInt?: EncodedTensor;
  bias?: EncodedTensor;
}
interface Oracle {
  calib: EncodedTensor[];
  x: EncodedTensor;
  y: EncodedTensor;
  layers: OracleLayer[];
}

/** A quantized tensor's per-channel scales and zero points, and its integers (`q_per_channel_scales`, …, `int_repr`). */
function qweight(w: Tensor): { scales: Tensor; zeroPoints: Tensor; ints: Tensor } {
  const call = (name: string) => wrap(native.call(op(name), w._h) as Handle);
  return { scales: call('aten::q_per_channel_scales'), zeroPoints: call('aten::q_per_channel_zero_points'), ints: call('aten::int_repr') };
}

const liveEngines = backends.quantized.supportedEngines.filter((e) => ['onednn', 'qnnpack', 'fbgemm', 'x86'].includes(e));

describe.skipIf(!hasTorchPython && !requireLiveOracle)('quantization.quantize against torch.ao.quantization (live oracle)', () => {
  it.each(liveEngines)('%s: the same activation qparams, per-channel weight scales, int8 weights, biases and int8 outputs', async (engine) => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-quant-'));
    const saved = backends.quantized.engine;
    try {
      const file = join(dir, 'float.pth');
      const r = await python(['-c', ORACLE, file, engine, join(dir, 'out.json')]);
      expect(r.status, r.stderr).toBe(0); // Python's warnings on stderr are not failures
      const o = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as Oracle;
      tidy(() => {
        // The same model, built here (a small VGG: makeLayers' conv-bn-relu, pooling, classifier) with PyTorch's weights.
        const model = new nn.Sequential(
          new nn.Conv2d(3, 8, 3, { padding: 1 }),
          new nn.BatchNorm2d(8),
          new nn.ReLU(true),
          new nn.MaxPool2d(2),
          new nn.Conv2d(8, 16, 3, { padding: 1, bias: false }),
          new nn.BatchNorm2d(16),
          new nn.Conv2d(16, 16, 3, { padding: 1, stride: 2 }),
          new nn.ReLU(true),
          new nn.AdaptiveAvgPool2d([2, 2]),
          new nn.Flatten(1),
          new nn.Linear(64, 32),
          new nn.ReLU(true),
          new nn.Dropout(),
          new nn.Linear(32, 10),
        );
        model.loadStateDict(load<Map<string, Tensor>>(file));
        model.eval();
        const q = quantization.quantize(model, o.calib.map(decode), { engine });
        // Our Sequential has no quantized Dropout (PyTorch's passes its input through) and no Identity placeholders.
        expect([...q.children()].map((m) => m.typeName())).toEqual([
          'Quantize',
          'QuantizedConvReLU2d',
          'MaxPool2d',
          'QuantizedConv2d',
          'QuantizedConvReLU2d',
          'AdaptiveAvgPool2d',
          'Flatten',
          'QuantizedLinearReLU',
          'QuantizedLinear',
          'DeQuantize',
        ]);
        const ours = [...q.children()].filter(
          (m) => m instanceof quantization.Quantize || m instanceof quantization.QuantizedConv2d || m instanceof quantization.QuantizedLinear,
        );
        expect(ours.map((m) => m.typeName().replace(/^Quantized/, ''))).toEqual(o.layers.map((l) => l.type));
        ours.forEach((m, i) => {
          const want = o.layers[i];
          const what = `layer ${i} (${want.type})`;
          if (m instanceof quantization.Quantize) {
            expect({ scale: m.scale, zeroPoint: m.zeroPoint }, what).toEqual({ scale: want.scale, zeroPoint: want.zeroPoint });
            return;
          }
          const layer = m as quantization.QuantizedConv2d | quantization.QuantizedLinear;
          // Scales bit for bit: PyTorch's are float32 tensors, ours float32-rounded numbers.
          expect(layer.output, what).toEqual({ scale: want.scale, zeroPoint: want.zeroPoint });
          const { scales, zeroPoints, ints } = qweight(layer.weight());
          expect(bitwiseDiff(scales, want.wScales!), `${what} weight scales`).toBeNull();
          expect(zeroPoints.tolist(), what).toEqual(want.wZeroPoints);
          expect(bitwiseDiff(ints, want.wInt!), `${what} int8 weights`).toBeNull();
          expect(bitwiseDiff(layer.bias()!, want.bias!), `${what} folded bias`).toBeNull();
        });
        const y = noGrad(() => q(decode(o.x)));
        const diff = bitwiseDiff(y, o.y);
        if (diff) {
          const outScale = (ours.at(-1) as quantization.QuantizedLinear).output.scale;
          console.log(`${engine}: int8 outputs differ from PyTorch's: ${diff} (one quantization step is ${outScale})`);
        }
        expect(diff).toBeNull();
        q.dispose();
        model.dispose();
      });
    } finally {
      backends.quantized.engine = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quantization.quantize', () => {
  it('an int8 copy of a model trained on Fashion-MNIST agrees with fp32 on ≥ 99 % of 1,000 test images (top-1), ≥ 99.5 % (top-5)', async () => {
    const { model, trainSet, testBatches, dispose } = await trainFashionMnistNet(2048);
    // Calibration: 256 training images the model was not evaluated on.
    const calibration = [
      ...new DataLoader(
        new Subset(
          trainSet,
          Array.from({ length: 256 }, (_, i) => 10_000 + i),
        ),
        { batchSize: 64 },
      ),
    ].map(([x, y]) => {
      y.dispose();
      return x;
    });
    const q = quantization.quantize(model, calibration);
    let top1 = 0;
    let top5 = 0;
    let correct = [0, 0];
    let n = 0;
    for (const [x, y] of testBatches()) {
      tidy(() => {
        const [a, b] = noGrad(() => [model(x), q(x)]);
        const ref = a.argmax(1);
        top1 += b.argmax(1).eq(ref).sum().item() as number;
        const [, b5] = b.topk(5);
        top5 += b5.eq(ref.unsqueeze(1)).sum().item() as number; // at most one match per row
        correct = [correct[0] + (ref.eq(y).sum().item() as number), correct[1] + (b.argmax(1).eq(y).sum().item() as number)];
        n += x.shape[0];
      });
      x.dispose();
      y.dispose();
    }
    console.log(
      `int8 vs fp32 on ${n} Fashion-MNIST test images: top-1 agreement ${((top1 / n) * 100).toFixed(1)} %, top-5 ${((top5 / n) * 100).toFixed(1)} %; ` +
        `accuracy fp32 ${((correct[0] / n) * 100).toFixed(1)} %, int8 ${((correct[1] / n) * 100).toFixed(1)} % (engine ${backends.quantized.engine})`,
    );
    expect(n).toBe(1000);
    expect(correct[0] / n).toBeGreaterThan(0.7); // the model did learn
    expect(top1 / n).toBeGreaterThanOrEqual(0.99);
    expect(top5 / n).toBeGreaterThanOrEqual(0.995);
    q.dispose();
    for (const c of calibration) c.dispose();
    dispose();
  });

  it('leaves the float model as it was, folds BatchNorm, drops dropout, and prints quantized layers', () => {
    manualSeed(1);
    const model = new nn.Sequential(
      new nn.Conv2d(3, 4, 3),
      new nn.BatchNorm2d(4),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Dropout(),
      new nn.Linear(4 * 3 * 3, 5),
      new nn.ReLU(),
      new nn.Linear(5, 2),
    );
    const before = [...model.stateDict()].map(([k, t]) => [k, t.clone()] as const);
    model.train();
    const q = quantization.quantize(model, [randn(8, 3, 8, 8), randn(8, 3, 8, 8)]);
    expect(model.training).toBe(true);
    for (const [k, t] of before) expect(model.stateDict().get(k)!.equal(t), k).toBe(true);
    expect(q.toString()).toMatch(
      /^Sequential\(\n {2}\(0\): Quantize\(scale=[\d.e-]+, zero_point=\d+, dtype=torch\.quint8\)\n {2}\(1\): QuantizedConvReLU2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\), scale=/,
    );
    expect([...q.children()].map((m) => m.typeName())).toEqual([
      'Quantize',
      'QuantizedConvReLU2d',
      'MaxPool2d',
      'Flatten',
      'QuantizedLinearReLU',
      'QuantizedLinear',
      'DeQuantize',
    ]);
    const x = randn(4, 3, 8, 8);
    tidy(() => {
      model.eval();
      const [a, b] = noGrad(() => [model(x), q(x)]);
      expect(b.dtype).toBe('float32');
      expect(b.sub(a).abs().max().item() as number).toBeLessThan(0.1 * (a.abs().max().item() as number) + 1e-3);
    });
    q.dispose();
    expect(() => q(x)).toThrow(/QuantizedConvReLU2d: disposed/);
    model.dispose();
  });

  it('refuses what it cannot quantize, with clear errors', () => {
    const model = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU());
    expect(() => quantization.quantize(model, [])).toThrow(/^quantize: the calibration set is empty$/);
    expect(() => quantization.quantize(model, [5 as unknown as Tensor])).toThrow(/^quantize: calibration batches must be tensors, got 5$/);
    class Custom extends nn.Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    expect(() => quantization.quantize(new Custom(), [randn(1, 3, 4, 4)])).toThrow(/^quantize: cannot quantize a Custom: supported are VGG, Sequential/);
    expect(() => quantization.quantize(model, [randn(1, 3, 4, 4)], { engine: 'tpu' })).toThrow(/^quantized engine 'tpu' is not in this libtorch \(it has: /);
    expect(() => quantization.quantize(model, [randn(1, 3, 4, 4)], { bits: 4 } as never)).toThrow(TypeError);
    model.dispose();
  });
});

// Compiled int8 inference: jit.trace records the packed weights as attributes of
// the TorchScript module (prim::GetAttr), so predict/forwardAsync, jit.save and
// jit.load work on int8 models as on float ones.
describe('int8 models compiled (predict, forwardAsync, jit.save/load)', () => {
  /** An int8 VGG11 for 32×32 input (no avgpool: the classifier reads 512×1×1), calibrated on random batches. */
  function int8Vgg11(): { float: nn.Module<any, any>; q: nn.Sequential } {
    manualSeed(5);
    const float = vgg11({ avgpool: false, inputSize: [32, 32], numClasses: 10 }).eval();
    const calibration = [randn(4, 3, 32, 32), randn(4, 3, 32, 32)];
    const q = quantization.quantize(float, calibration);
    for (const c of calibration) c.dispose();
    return { float, q };
  }

  it("vgg11: predict and forwardAsync give forward's bits, on a worker thread while the event loop runs; dispose frees the compiled forms", async () => {
    const { float, q } = int8Vgg11();
    const x = randn(8, 3, 32, 32);
    const x1 = randn(1, 3, 32, 32);
    const want = noGrad(() => q.forward(x));
    const want1 = noGrad(() => q.forward(x1));
    const p = q.predict(x);
    expect(bytesOf(p).equals(bytesOf(want))).toBe(true);
    // Another batch size: the same compiled graph (cached per shape, the batch aside).
    const p1 = q.predict(x1);
    expect(bytesOf(p1).equals(bytesOf(want1))).toBe(true);
    // The loop must turn while the int8 graph runs: an immediate queued after the call runs before it
    // resolves, and an interval ticks (a forward run on this thread would allow neither).
    let ticks = 0;
    let turned = false;
    const timer = setInterval(() => ticks++, 1);
    const pending = [q.forwardAsync(x), q.forwardAsync(x), q.forwardAsync(x1)];
    setImmediate(() => (turned = true));
    const [a, b, c] = await Promise.all(pending);
    const turnedBefore = turned;
    clearInterval(timer);
    expect(turnedBefore).toBe(true);
    expect(ticks).toBeGreaterThan(0);
    for (const y of [a, b]) expect(bytesOf(y).equals(bytesOf(want))).toBe(true);
    expect(bytesOf(c).equals(bytesOf(want1))).toBe(true);
    // The graph reads the packed weights through self, and runs libtorch's int8 kernels.
    const traced = jit.trace(q, x1);
    tidy(() => {
      const kinds = traced.graph().nodes.map((n) => n.kind);
      expect(kinds).toContain('prim::GetAttr');
      expect(kinds).toContain('quantized::conv2d_relu');
      expect(kinds).toContain('quantized::linear_relu');
      expect(kinds.filter((k) => k.startsWith('quantized::conv2d')).length).toBe(8);
    });
    traced.dispose();
    for (const t of [p, p1, a, b, c, want, want1]) t.dispose();
    q.dispose();
    // dispose() released the cached graphs: they no longer run on the freed weights.
    expect(() => q.predict(x)).toThrow(/^QuantizedConvReLU2d: disposed$/);
    await expect(q.forwardAsync(x)).rejects.toThrow(/^QuantizedConvReLU2d: disposed$/);
    for (const t of [x, x1]) t.dispose();
    float.dispose();
  }, 120_000);

  it('bad inputs to compiled int8 models are JS errors', async () => {
    manualSeed(6);
    const model = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(), new nn.Linear(4 * 4 * 4, 5));
    const q = quantization.quantize(model.eval(), [randn(4, 3, 8, 8)]);
    const x = randn(2, 3, 8, 8);
    const script = jit.trace(q, x);
    // The traced shapes are checked before the worker is involved.
    await expect(script.forwardAsync(randn(2, 5, 8, 8))).rejects.toThrow(/expected input 0 of shape \[N, 3, 8, 8\]/);
    // A shape the graph cannot run: libtorch's error, raised on the worker, rejects the promise.
    await expect(q.forwardAsync(randn(2, 5, 8, 8))).rejects.toThrow(Error);
    // libtorch's own message (it varies with the engine: onednn's 'could not create a descriptor for a matmul
    // primitive'), without its C++ backtrace.
    expect(() => q.predict(randn(2, 3, 4, 4))).toThrow(/^(?![\s\S]*Exception raised from)[\s\S]*(matmul|mat1|multiplied|size)/);
    await expect(q.forwardAsync('x' as never)).rejects.toThrow(TypeError);
    // jit.trace's objects argument: names must be identifiers, objects live packed weights.
    const [conv] = [...q.children()].filter((m) => m instanceof quantization.QuantizedConv2d) as quantization.QuantizedConv2d[];
    const packed = (conv as unknown as { packed: ObjectHandle }).packed;
    const fn = (h: Handle[]) => h[0];
    expect(() => native.jitTrace(fn, [x._h], [], [['1x', packed]])).toThrow(/^jitTrace: object name '1x' is not an identifier$/);
    expect(() =>
      native.jitTrace(
        fn,
        [x._h],
        [],
        [
          ['a', packed],
          ['a', packed],
        ],
      ),
    ).toThrow(/^jitTrace: two objects are named 'a'$/);
    expect(() => native.jitTrace(fn, [x._h], [], [['a', x._h as never]])).toThrow(/^jitTrace: object 'a' must be an object handle, got /);
    expect(() => native.jitTrace(fn, [x._h], [], 5 as never)).toThrow(TypeError);
    // A function (not a module) calling an int8 layer: its packed weights are no attributes of anything traced.
    expect(() => jit.trace((t: Tensor) => q.forward(t), x)).toThrow(/not part of the active trace/);
    script.dispose();
    q.dispose();
    model.dispose();
    x.dispose();
  });
});

// PyTorch's side of jit.save/jit.load for int8 models: argv[1] 'run' loads our
// TorchScript file (argv[3]) and runs it on the input torch.save'd at argv[4];
// 'make' quantizes a small model eagerly (PyTorch's own modules), traces it and
// saves it to argv[3], with its input and output. Results go to argv[5] / argv[4].
const JIT_ORACLE = String.raw`
import base64, json, sys, torch, torch.nn as nn, torch.ao.quantization as tq
enc = lambda t: {'dtype': str(t.dtype).replace('torch.', ''), 'shape': list(t.shape), 'data': base64.b64encode(t.detach().contiguous().numpy().tobytes()).decode()}
mode, engine = sys.argv[1], sys.argv[2]
torch.backends.quantized.engine = engine
if mode == 'run':
    m = torch.jit.load(sys.argv[3])
    with torch.no_grad():
        y = m(torch.load(sys.argv[4]))
    json.dump({'y': enc(y)}, open(sys.argv[5], 'w'))
else:
    torch.manual_seed(0)
    f = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                      nn.AdaptiveAvgPool2d(2), nn.Flatten(1), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    tq.fuse_modules(f, [['0', '1'], ['6', '7']], inplace=True)
    q = nn.Sequential(tq.QuantStub(), f, tq.DeQuantStub()).eval()
    q.qconfig = tq.QConfig(activation=tq.MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=engine in ('fbgemm', 'x86')),
                           weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    tq.prepare(q, inplace=True)
    with torch.no_grad():
        for _ in range(3): q(torch.randn(4, 3, 16, 16))
    tq.convert(q, inplace=True)
    x = torch.cat([torch.randn(3, 3, 16, 16), 3 * torch.randn(2, 3, 16, 16)])
    with torch.no_grad():
        traced = torch.jit.trace(q, x)
        torch.jit.save(traced, sys.argv[3])
        y = traced(x)
    json.dump({'x': enc(x), 'y': enc(y)}, open(sys.argv[4], 'w'))
`;

describe.skipIf(!hasTorchPython && !requireLiveOracle)('int8 TorchScript files and PyTorch (live oracle)', () => {
  it("jit.save of an int8 vgg11, traced and frozen: torch.jit.load runs it to forward's bits", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-int8-jit-'));
    const engine = backends.quantized.engine;
    manualSeed(7);
    const float = vgg11({ avgpool: false, inputSize: [32, 32], numClasses: 10 }).eval();
    const calibration = [randn(4, 3, 32, 32), randn(4, 3, 32, 32)];
    const q = quantization.quantize(float, calibration);
    const x = randn(3, 3, 32, 32).mul(2);
    try {
      const want = noGrad(() => q.forward(x));
      const traced = jit.trace(q, x);
      const frozen = jit.freeze(traced);
      save(x, join(dir, 'x.pt'));
      for (const [name, script] of [
        ['traced', traced],
        ['frozen', frozen],
      ] as const) {
        const file = join(dir, `${name}.pt`);
        jit.save(script, file);
        const r = await python(['-c', JIT_ORACLE, 'run', engine, file, join(dir, 'x.pt'), join(dir, `${name}.json`)]);
        expect(r.status, r.stderr).toBe(0);
        const o = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { y: EncodedTensor };
        expect(bitwiseDiff(want, o.y), `${name}: Python's output`).toBeNull();
        // And back here.
        const loaded = jit.load(file);
        tidy(() => expect(bitwiseDiff(loaded.forward(x) as Tensor, o.y), `${name}: reloaded here`).toBeNull());
        loaded.dispose();
      }
      for (const t of [want, traced, frozen]) t.dispose();
    } finally {
      q.dispose();
      float.dispose();
      for (const t of [x, ...calibration]) t.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('an int8 model traced and saved by PyTorch loads here and gives its output (forward, forwardAsync, frozen)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-int8-jit-'));
    const engine = backends.quantized.engine;
    try {
      const file = join(dir, 'q.pt');
      const r = await python(['-c', JIT_ORACLE, 'make', engine, file, join(dir, 'out.json')]);
      expect(r.status, r.stderr).toBe(0);
      const o = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { x: EncodedTensor; y: EncodedTensor };
      const x = decode(o.x);
      const loaded = jit.load(file);
      const frozen = jit.freeze(loaded);
      tidy(() => {
        expect(bitwiseDiff(loaded.forward(x) as Tensor, o.y), 'forward').toBeNull();
        expect(bitwiseDiff(frozen.forward(x) as Tensor, o.y), 'frozen').toBeNull();
      });
      const y = (await loaded.forwardAsync(x)) as Tensor;
      expect(bitwiseDiff(y, o.y), 'forwardAsync').toBeNull();
      // A wrong input is libtorch's error, on the worker thread, as a rejected promise.
      const bad = randn(1, 5, 16, 16);
      await expect(loaded.forwardAsync(bad)).rejects.toThrow(Error);
      expect(() => frozen.forward(bad)).toThrow(Error);
      for (const t of [x, y, bad]) t.dispose();
      loaded.dispose();
      frozen.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
