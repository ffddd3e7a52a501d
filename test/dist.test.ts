// The built package: what `import 'vgg-torch'` and `require('vgg-torch')` load
// (dist/, built by tsup; test/global-setup.ts rebuilds it when stale), not the
// TypeScript sources the other tests import. A child process imports the package
// by its own name, ESM and CommonJS, runs the public surface, and its answers
// must equal the sources' and torchvision's.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as source from '../lib/index.js';
import { freePort } from './distributed-helpers.js';
import { readFixture, runNodeFile } from './helpers.js';

const FACTORIES = ['vgg11', 'vgg11_bn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_bn', 'vgg19', 'vgg19_bn'] as const;

/**
 * The probe, run against a module `vt`: the same code runs on the sources in this
 * process (it is sent to the child as text, so it uses nothing but `vt`, `dir` and FACTORIES).
 */
function probe(vt: typeof source, dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = { reprs: {}, keys: {} };
  for (const name of FACTORIES) {
    const m = vt[name]({ initWeights: false });
    (out.reprs as Record<string, string>)[name] = m.toString();
    (out.keys as Record<string, string[]>)[name] = vt.tidy(() => [...m.stateDict().keys()]);
    m.dispose();
  }
  vt.manualSeed(777);
  const model = vt.vggTutorial().eval();
  out.tutorial = model.toString();
  vt.tidy(() => {
    vt.manualSeed(1);
    const y = vt.noGrad(() => model(vt.randn(2, 3, 32, 32)));
    out.forward = Array.from(y.toTypedArray() as Float32Array);
    const file = `${dir}/tutorial-${Math.random().toString(36).slice(2)}.pth`;
    vt.save(model.stateDict(), file);
    const loaded = vt.load(file) as Map<string, source.Tensor>;
    out.saveLoad = [...model.stateDict()].every(([k, t]) => loaded.get(k)?.equal(t));
    const t = vt.fromBuffer(new Float32Array([1, 2, 3, 4.5]).buffer, { dtype: 'float32', shape: [2, 2] });
    out.fromBuffer = [t.shape, t.sum().item()];
    out.optimizer = new vt.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }).toString();
    out.transforms = new vt.transforms.Compose([new vt.transforms.Resize(32), new vt.transforms.CenterCrop(32)]).toString();
  });
  model.dispose();
  try {
    vt.load(`${dir}/missing.pth`);
  } catch (e) {
    out.error = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  out.leaked = vt.memory().tensors;
  return out;
}

/**
 * The newer public surface, run against `vt` like {@link probe} (sent as text: it uses nothing
 * but `vt`, `dir` and `port`): jit (trace, forward/forwardAsync, save/load), Module.predict and
 * forwardAsync (through the inference compiler the package entry registers),
 * quantization, onnx.export, distributed (DistributedDataParallel on a one-rank gloo group when
 * this libtorch has c10d), module and tensor hooks, feature extraction and LBFGS, with the
 * class names users see printed.
 */
async function probeNew(vt: typeof source, dir: string, port: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const nn = vt.nn;
  const maxDiff = (a: source.Tensor, b: source.Tensor) => vt.tidy(() => a.sub(b).abs().max().item() as number);
  const file = (ext: string) => `${dir}/new-${Math.random().toString(36).slice(2)}.${ext}`;
  vt.manualSeed(5);
  const model = new nn.Sequential(
    new nn.Conv2d(3, 4, 3, { padding: 1 }),
    new nn.BatchNorm2d(4),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Flatten(),
    new nn.Linear(4 * 4 * 4, 3),
  ).eval();
  const x = vt.randn(2, 3, 8, 8);
  const ref = vt.noGrad(() => model(x));
  out.forward = Array.from(ref.toTypedArray() as Float32Array);

  // jit: trace, forward, forwardAsync, save and load.
  const script = vt.jit.trace(model, x);
  const path = file('pt');
  vt.jit.save(script, path);
  const loaded = vt.jit.load(path);
  const [s1, s2, s3] = [script.forward(x) as source.Tensor, (await script.forwardAsync(x)) as source.Tensor, loaded.forward(x) as source.Tensor];
  out.jit = { names: [script.constructor.name, loaded.constructor.name], forward: maxDiff(s1, ref) < 1e-5, async: s2.equal(s1), loaded: s3.equal(s1) };
  vt.dispose([s1, s2, s3]);
  script.dispose();
  loaded.dispose();

  // Module.predict / forwardAsync through the compiler predict.ts registers.
  const p1 = model.predict(x);
  const p2 = await model.forwardAsync(x);
  out.predict = { predict: maxDiff(p1, ref) < 1e-4, async: p2.equal(p1) };
  vt.dispose([p1, p2]);

  // quantization: the int8 copy, its printed layers and its outputs.
  const calibration = [x.clone(), vt.randn(4, 3, 8, 8)];
  const q = vt.quantization.quantize(model, calibration);
  const qy = q(x);
  out.quantized = {
    names: [...q.children()].map((m) => `${m.constructor.name}/${m.typeName()}`),
    classes: [vt.quantization.Quantize, vt.quantization.DeQuantize, vt.quantization.QuantizedConv2d, vt.quantization.QuantizedLinear].map((c) => c.name),
    repr: q.toString(),
    forward: Array.from(qy.toTypedArray() as Float32Array),
    close: maxDiff(qy, ref) < 0.1 * vt.tidy(() => ref.abs().max().item() as number) + 1e-3,
  };
  // int8 off the event loop: predict and forwardAsync give the call's bits.
  const [qp, qa] = [q.predict(x), await q.forwardAsync(x)];
  out.int8Compiled = { predict: qp.equal(qy), async: qa.equal(qy) };
  vt.dispose([qy, qp, qa, ...calibration]);
  q.dispose();

  // onnx.export: the model file, its weights inside.
  const onnx = vt.onnx.export(model, x, file('onnx'));
  out.onnx = { external: onnx.dataPath, bytes: onnx.bytes };

  // Hooks: a forward hook fires until removed; a tensor hook rewrites the gradient until removed.
  const shapes: number[][] = [];
  const handle = [...model.children()][0].registerForwardHook((_m: unknown, _i: unknown, o: source.Tensor) => {
    shapes.push(o.shape);
  });
  vt.dispose(vt.noGrad(() => model(x)));
  handle.remove();
  vt.dispose(vt.noGrad(() => model(x)));
  const w = vt.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
  const th = w.registerHook((g: source.Tensor) => g.mul(10));
  const grads: number[][] = [];
  for (let i = 0; i < 2; i++) {
    vt.tidy(() => w.mul(w).sum().backward());
    grads.push(vt.tidy(() => Array.from(w.grad!.toTypedArray() as Float32Array)));
    w.grad = null;
    th.remove();
  }
  out.hooks = { shapes, handle: handle.constructor.name, grads };
  w.dispose();

  // Feature extraction: the intermediate nodes asked for.
  const fx = vt.createFeatureExtractor(model, { returnNodes: { '2': 'relu', '5': 'logits' } });
  const feats = vt.noGrad(() => fx(x));
  out.features = { name: fx.constructor.name, nodes: vt.getGraphNodeNames(model), keys: [...feats.keys()], logits: feats.get('logits')!.equal(ref) };
  vt.dispose([...feats.values()]);

  // LBFGS on Rosenbrock from (-1.5, 2).
  const z = vt.tensor([-1.5, 2], { requiresGrad: true });
  const lbfgs = new vt.optim.LBFGS([z], { maxIter: 50, lineSearchFn: 'strong_wolfe' });
  for (let i = 0; i < 3; i++) {
    const first = lbfgs.step(() => {
      lbfgs.zeroGrad();
      const l = vt.tidy(() => {
        const [a, b] = [z.select(0, 0), z.select(0, 1)];
        return a
          .neg()
          .add(1)
          .pow(2)
          .add(b.sub(a.pow(2)).pow(2).mul(100));
      });
      l.backward();
      return l;
    });
    first!.dispose();
  }
  out.lbfgs = { name: lbfgs.constructor.name, repr: lbfgs.toString().split('\n')[0], z: Array.from(z.toTypedArray() as Float32Array) };
  lbfgs.dispose();
  z.dispose();

  // distributed: DDP on a one-rank group (its gradients are the module's own), or just the class name.
  out.distributed = { available: vt.distributed.isAvailable(), ddp: vt.nn.parallel.DistributedDataParallel.name };
  if (vt.distributed.isAvailable()) {
    vt.distributed.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeout: 20000 });
    try {
      vt.manualSeed(6);
      const lin = new nn.Linear(4, 2);
      const ddp = new vt.nn.parallel.DistributedDataParallel(lin);
      const inp = vt.randn(3, 4);
      vt.tidy(() => ddp(inp).sum().backward());
      const bias = vt.tidy(() => Array.from(lin.bias!.grad!.toTypedArray() as Float32Array));
      out.ddp = { name: ddp.constructor.name, repr: ddp.toString(), biasGrad: bias, world: vt.distributed.getWorldSize() };
      inp.dispose();
      ddp.dispose();
    } finally {
      vt.distributed.destroyProcessGroup();
    }
  }
  vt.dispose([x, ref]);
  model.dispose();
  out.leaked = vt.memory().tensors;
  return out;
}

/**
 * Wave 3's public surface, run against `vt` like {@link probe} (sent as text: it uses nothing but
 * `vt` and `port`): the generated Tensor API (methods, `torch.*` functions, `ops.aten`, the
 * overload error), autocast and GradScaler, backends.cpu, fit({ amp }), SyncBatchNorm and a DDP
 * comm hook on a one-rank group, gradCam() and serve().
 */
async function probeWave3(vt: typeof source, port: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const nn = vt.nn;
  const values = (t: source.Tensor) => Array.from(t.toTypedArray() as Float32Array);
  // The generated Tensor API.
  vt.tidy(() => {
    const x = vt.arange(6, { dtype: 'float32' }).reshape([2, 3]).sub(2.5);
    const idx = vt.tensor(
      [
        [0, 0],
        [1, 2],
      ],
      { dtype: 'int64' },
    );
    let error = '';
    try {
      (x.maskedFill as (...a: unknown[]) => unknown)(1, 'a');
    } catch (e) {
      error = `${(e as Error).constructor.name}: ${(e as Error).message.split('\n')[0]}`;
    }
    out.tensorApi = {
      sin: values(x.sin()),
      maskedFill: values(x.maskedFill(x.gt(0), 0)),
      cumsum: [x.cumsum(1, { dtype: 'float64' }).dtype, values(x.cumsum(1).float())],
      gather: values(x.gather(1, idx)),
      inPlace: (() => {
        const c = x.clone();
        return c.sin_() === c;
      })(),
      einsum: values(vt.einsum('ij,kj->ik', x, x)),
      logsumexp: values(vt.logsumexp(x, [1])),
      aten: values(vt.ops.aten.add.Tensor(x, x, { alpha: 2 })),
      error,
    };
  });
  // autocast and GradScaler; the CPU's kernel level and bf16 support.
  vt.manualSeed(11);
  const lin = new nn.Linear(8, 4);
  const inp = vt.randn(3, 8);
  out.autocast = vt.tidy(() => {
    const y = vt.autocast('cpu', () => lin(inp));
    return { dtype: y.dtype, enabledInside: vt.autocast('cpu', () => vt.isAutocastEnabled('cpu')), after: vt.isAutocastEnabled('cpu') };
  });
  const scaler = new vt.amp.GradScaler('cpu', { enabled: false });
  out.scaler = { name: scaler.constructor.name, enabled: scaler.isEnabled() };
  out.cpu = { capability: typeof vt.backends.cpu.getCpuCapability(), bf16: Object.keys(vt.backends.cpu.bf16Support()).sort() };
  // fit({ amp: 'bf16' }) on 16 random images: one epoch, its precision recorded.
  vt.manualSeed(12);
  const small = new nn.Sequential(new nn.Flatten(), new nn.Linear(16, 3));
  const data = new vt.TensorDataset(vt.randn(16, 1, 4, 4), vt.randint(0, 3, [16]));
  const lines: string[] = [];
  const stream = { write: (s: string) => lines.push(s), columns: 80, isTTY: false };
  const fitted = await vt.train.fit({
    model: small,
    optimizer: new vt.optim.SGD(small.parameters(), { lr: 0.1 }),
    trainLoader: new vt.DataLoader(data, { batchSize: 8 }),
    epochs: 1,
    amp: 'bf16',
    stream: stream as never,
    handleSignals: false,
  });
  const epochs = fitted.metrics.filter((m: { kind?: string }) => m.kind === 'epoch') as { precision?: string }[];
  out.fit = { precision: epochs.map((e) => e.precision), first: lines.join('').split('\n')[0].replace(/\(.*/, '') };
  // SyncBatchNorm and a comm hook on a one-rank group.
  out.distributed = vt.distributed.isAvailable();
  if (vt.distributed.isAvailable()) {
    vt.distributed.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeout: 20000 });
    try {
      vt.manualSeed(13);
      const model = new nn.Sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm2d(3), new nn.ReLU());
      const synced = nn.SyncBatchNorm.convertSyncBatchnorm(model);
      const ddp = new nn.parallel.DistributedDataParallel(synced);
      ddp.registerCommHook(null, vt.distributed.algorithms.ddpCommHooks.defaultHooks.fp16CompressHook);
      const x = vt.randn(4, 2, 5, 5);
      vt.tidy(() => ddp(x).sum().backward());
      const bn = [...synced.children()][1] as source.nn.SyncBatchNorm;
      out.sync = {
        name: bn.constructor.name,
        repr: synced.toString().split('\n')[2].trim(),
        runningMean: values(bn.runningMean!).every((v: number) => Number.isFinite(v) && v !== 0),
        grad: vt.tidy(() => Number.isFinite([...synced.parameters()][0].grad!.abs().sum().item() as number)),
      };
      x.dispose();
      ddp.dispose();
    } finally {
      vt.distributed.destroyProcessGroup();
    }
  }
  // gradCam() and serve() (Fastify, the batcher, the page) from the package's own entry.
  vt.manualSeed(14);
  const tiny = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU(), new nn.AdaptiveAvgPool2d(1), new nn.Flatten(), new nn.Linear(4, 3)).eval();
  out.gradCam = vt.tidy(() => {
    const cam = vt.gradCam(tiny, vt.randn(1, 3, 6, 6), { targetLayer: '1' });
    return {
      shape: cam.heatmap.shape,
      inRange: (cam.heatmap.min().item() as number) >= 0 && (cam.heatmap.max().item() as number) <= 1,
      classIndex: typeof cam.classIndex,
    };
  });
  const server = await vt.serve({
    model: tiny,
    classes: ['a', 'b', 'c'],
    preprocess: (img: source.Tensor) => img.float().div(255),
    port: 0,
    topk: 2,
    warmup: false,
  });
  try {
    const ping = await fetch(`${server.url}/ping`);
    const bad = await fetch(`${server.url}/predictions/model`, { method: 'POST', body: 'not an image', headers: { 'content-type': 'image/png' } });
    const page = await fetch(`${server.url}/`);
    out.serve = {
      ping: [ping.status, await ping.json()],
      bad: [bad.status, ((await bad.json()) as { type: string }).type],
      page: [page.status, page.headers.get('content-type')],
    };
  } finally {
    await server.close();
  }
  tiny.dispose();
  vt.dispose([inp]);
  lin.dispose();
  small.dispose();
  vt.dispose([...data.tensors]);
  out.leaked = vt.memory().tensors;
  return out;
}

const work = resolve('tmp', 'dist-test'); // inside the package, so that it can import itself by name
mkdirSync(work, { recursive: true });
const dir = mkdtempSync(join(work, 'run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A CIFAR-10 test batch of 100 made-up images (what the loader tests read), once. */
function fakeCifar(): string {
  const root = join(dir, 'cifar');
  if (existsSync(root)) return root;
  mkdirSync(join(root, 'cifar-10-batches-bin'), { recursive: true });
  const bytes = Buffer.alloc(100 * 3073);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 3073 === 0 ? (i / 3073) % 10 : Math.imul(i, 2654435761) >>> 24;
  writeFileSync(join(root, 'cifar-10-batches-bin', 'test_batch.bin'), bytes);
  return root;
}

function runBuilt(format: 'esm' | 'cjs'): Record<string, unknown> {
  const body = `const FACTORIES = ${JSON.stringify(FACTORIES)};\nconst probe = ${probe.toString()};\nprocess.stdout.write(JSON.stringify(probe(vt, ${JSON.stringify(dir)})));\n`;
  const file = join(dir, format === 'esm' ? 'probe.mjs' : 'probe.cjs');
  writeFileSync(file, (format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n") + body);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: dir, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Runs {@link probeNew} on the built package in a child process. */
async function runBuiltNew(format: 'esm' | 'cjs', port: number): Promise<Record<string, unknown>> {
  const body = `const probeNew = ${probeNew.toString()};\nprobeNew(vt, ${JSON.stringify(dir)}, ${port}).then((o) => process.stdout.write(JSON.stringify(o)));\n`;
  const file = join(dir, format === 'esm' ? 'probe-new.mjs' : 'probe-new.cjs');
  writeFileSync(file, (format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n") + body);
  const r = await runNodeFile(file, dir);
  if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Runs {@link probeWave3} on the built package in a child process. */
async function runBuiltWave3(format: 'esm' | 'cjs', port: number): Promise<Record<string, unknown>> {
  const body = `const probeWave3 = ${probeWave3.toString()};\nprobeWave3(vt, ${port}).then((o) => process.stdout.write(JSON.stringify(o)));\n`;
  const file = join(dir, format === 'esm' ? 'probe-wave3.mjs' : 'probe-wave3.cjs');
  writeFileSync(file, (format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n") + body);
  const r = await runNodeFile(file, dir);
  if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** {@link probeNew} on the sources, once: the reference for the built package. */
let newReference: Promise<Record<string, unknown>> | null = null;
const reference = (): Promise<Record<string, unknown>> => (newReference ??= freePort().then((port) => probeNew(source, dir, port)));
let wave3Ref: Promise<Record<string, unknown>> | null = null;
const wave3Reference = (): Promise<Record<string, unknown>> => (wave3Ref ??= freePort().then((port) => probeWave3(source, port)));

describe('the built package (dist/)', () => {
  const fx = readFixture<{ models: Record<string, { repr: string }>; keys: Record<string, string[]> }>('vgg.json');
  const expected = probe(source, dir);

  it("the sources print torchvision's text and keys (the reference for the built package)", () => {
    expect((expected.reprs as Record<string, string>).vgg11).toBe(fx.models.vgg11.repr);
    expect((expected.reprs as Record<string, string>).vgg16_bn).toBe(fx.models.vgg16_bn.repr);
    expect(expected.tutorial).toBe(fx.models.tutorial.repr);
    expect(expected.keys).toEqual(fx.keys);
    expect(expected.saveLoad).toBe(true);
    expect(expected.fromBuffer).toEqual([[2, 2], 10.5]);
    expect(expected.optimizer).toMatch(/^SGD \(/);
    expect(expected.transforms).toMatch(/^Compose\(\n {4}Resize\(/);
    expect(expected.error).toMatch(/^Error: .*missing\.pth/);
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format.toUpperCase()}: print(model) of every factory, stateDict keys, forward, save/load, fromBuffer, class names and errors equal the sources'`, () => {
      const built = runBuilt(format);
      expect(built).toEqual({ ...expected, leaked: built.leaked });
      expect(built.leaked).toBe(0);
    });
  }

  it('the sources: jit, predict/forwardAsync, quantization, ONNX, hooks, feature extraction, LBFGS and DDP work (the reference for the built package)', async () => {
    const before = source.memory().tensors;
    const ref = await reference();
    expect(ref.leaked).toBe(before);
    expect(ref.jit).toEqual({ names: ['ScriptModule', 'ScriptModule'], forward: true, async: true, loaded: true });
    expect(ref.predict).toEqual({ predict: true, async: true });
    const quantized = ref.quantized as { names: string[]; classes: string[]; repr: string; close: boolean };
    expect(quantized.names).toEqual([
      'Quantize/Quantize',
      'QuantizedConv2d/QuantizedConvReLU2d',
      'MaxPool2d/MaxPool2d',
      'Flatten/Flatten',
      'QuantizedLinear/QuantizedLinear',
      'DeQuantize/DeQuantize',
    ]);
    expect(quantized.classes).toEqual(['Quantize', 'DeQuantize', 'QuantizedConv2d', 'QuantizedLinear']);
    expect(quantized.repr).toMatch(/^Sequential\(\n {2}\(0\): Quantize\(scale=/);
    expect(quantized.close).toBe(true);
    expect(ref.int8Compiled).toEqual({ predict: true, async: true });
    expect((ref.onnx as { external: unknown; bytes: number }).external).toBeNull();
    expect((ref.onnx as { bytes: number }).bytes).toBeGreaterThan(4 * (4 * 3 * 9 + 64 * 3));
    expect(ref.hooks).toEqual({
      shapes: [[2, 4, 8, 8]],
      handle: 'RemovableHandle',
      grads: [
        [20, 40, 60],
        [2, 4, 6],
      ],
    });
    expect(ref.features).toMatchObject({ name: 'FeatureExtractor', keys: ['relu', 'logits'], logits: true });
    const lbfgs = ref.lbfgs as { name: string; repr: string; z: number[] };
    expect([lbfgs.name, lbfgs.repr]).toEqual(['LBFGS', 'LBFGS (']);
    expect(lbfgs.z[0]).toBeCloseTo(1, 3);
    expect(lbfgs.z[1]).toBeCloseTo(1, 3);
    expect((ref.distributed as { ddp: string }).ddp).toBe('DistributedDataParallel');
    if ((ref.distributed as { available: boolean }).available) {
      expect(ref.ddp).toMatchObject({ name: 'DistributedDataParallel', world: 1, biasGrad: [3, 3] });
      expect((ref.ddp as { repr: string }).repr).toMatch(/^DistributedDataParallel\(\n {2}\(module\): Linear\(in_features=4/);
    }
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format.toUpperCase()}: the same from dist/ (the entry registers predict's compiler; modules are callable; class names are not mangled)`, async () => {
      const expected = await reference();
      const built = await runBuiltNew(format, await freePort());
      expect(built).toEqual({ ...expected, leaked: built.leaked });
      expect(built.leaked).toBe(0);
    });
  }

  it('the sources: the generated Tensor API, autocast, GradScaler, backends.cpu, fit({ amp }), SyncBatchNorm, comm hooks, gradCam and serve (the reference for the built package)', async () => {
    const before = source.memory().tensors;
    const ref = await wave3Reference();
    expect(ref.leaked).toBe(before);
    const api = ref.tensorApi as Record<string, unknown>;
    expect(api.maskedFill).toEqual([-2.5, -1.5, -0.5, 0, 0, 0]);
    expect(api.cumsum).toEqual(['float64', [-2.5, -4, -4.5, 0.5, 2, 4.5]]);
    expect(api.gather).toEqual([-2.5, -2.5, 1.5, 2.5]);
    expect(api.inPlace).toBe(true);
    expect(api.aten).toEqual([-7.5, -4.5, -1.5, 1.5, 4.5, 7.5]);
    expect(api.error).toMatch(/^TypeError: maskedFill\(\) received an invalid combination of arguments/);
    expect(ref.autocast).toEqual({ dtype: 'bfloat16', enabledInside: true, after: false });
    expect(ref.scaler).toEqual({ name: 'GradScaler', enabled: false });
    expect(ref.cpu).toEqual({ capability: 'string', bf16: ['features', 'native', 'reason', 'source'] });
    expect(ref.fit).toEqual({ precision: ['bf16'], first: 'Mixed precision: bf16 autocast ' });
    expect(ref.gradCam).toEqual({ shape: [6, 6], inRange: true, classIndex: 'number' });
    expect(ref.serve).toEqual({ ping: [200, { status: 'Healthy' }], bad: [400, 'BadRequestException'], page: [200, 'text/html; charset=utf-8'] });
    if (ref.distributed) {
      expect(ref.sync).toEqual({
        name: 'SyncBatchNorm',
        repr: '(1): SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)',
        runningMean: true,
        grad: true,
      });
    }
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format.toUpperCase()}: wave 3's surface from dist/ equals the sources' (generated methods are on Tensor; amp, SyncBatchNorm and comm hooks reach the addon; gradCam and serve work)`, async () => {
      const expected = await wave3Reference();
      const built = await runBuiltWave3(format, await freePort());
      expect(built).toEqual({ ...expected, leaked: built.leaked });
      expect(built.leaked).toBe(0);
    });
  }

  it('DataLoader workers start from the build (dist/poolWorker.js), ESM and CommonJS, and give the batches of numWorkers: 0', () => {
    const root = fakeCifar();
    const body = `const T = vt.transforms;
const ds = new vt.CIFAR10({ root: ${JSON.stringify(root)}, train: false, transform: new T.Compose([new T.RandomCrop(32, { padding: 4 }), new T.RandomHorizontalFlip(), new T.ToTensor()]) });
const epoch = (numWorkers) => {
  vt.manualSeed(3);
  return vt.tidy(() => [...new vt.DataLoader(ds, { batchSize: 16, shuffle: true, numWorkers })].map(([x, y]) => [x.sum().item(), y.sum().item()]));
};
const out = { workers: epoch(2), inline: epoch(0) };
ds.dispose();
process.stdout.write(JSON.stringify(out));
`;
    for (const format of ['esm', 'cjs'] as const) {
      const file = join(dir, format === 'esm' ? 'loader.mjs' : 'loader.cjs');
      writeFileSync(file, (format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n") + body);
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: dir, timeout: 120_000 });
      expect(r.status, `${format}: ${r.stderr}`).toBe(0);
      const { workers, inline } = JSON.parse(r.stdout) as { workers: number[][]; inline: number[][] };
      expect(workers).toHaveLength(7);
      expect(workers).toEqual(inline);
    }
  });

  it('a loader worker that cannot start fails the batch with its reason instead of hanging a synchronous wait', () => {
    // A copy of the build without poolWorker.js (the addon is found through build/ beside it).
    const copy = join(dir, 'broken');
    mkdirSync(copy);
    cpSync(resolve('dist'), join(copy, 'dist'), { recursive: true });
    rmSync(join(copy, 'dist', 'poolWorker.js'));
    symlinkSync(resolve('build'), join(copy, 'build'));
    const file = join(copy, 'loader.mjs');
    writeFileSync(
      file,
      `import * as vt from './dist/index.js';
const ds = new vt.CIFAR10({ root: ${JSON.stringify(fakeCifar())}, train: false, transform: new vt.transforms.ToTensor() });
try {
  [...new vt.DataLoader(ds, { batchSize: 16, numWorkers: 1 })];
  console.log('no error');
} catch (e) {
  console.log(e.message);
}
`,
    );
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: copy, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DataLoader: the loader worker did not start: .*poolWorker\.js/);
  });

  it('the bin prints its help and a summary', () => {
    const help = spawnSync(process.execPath, ['dist/cli.js', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^vgg-torch — .*\n\nUsage: vgg-torch <command>/);
    const summary = spawnSync(process.execPath, ['dist/cli.js', 'summary', 'tutorial'], { encoding: 'utf8' });
    expect(summary.status, summary.stderr).toBe(0);
    expect(summary.stdout).toMatch(/Total params/i);
  });
});
