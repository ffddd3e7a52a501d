// ONNX export: the converter on hand-built traced graphs (each operator, each
// AdaptiveAvgPool2d path, the refusals), the checker's rules, external data,
// and onnxruntime-node running the files against vgg-torch's own outputs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  F,
  type Tensor,
  type VGG,
  inferenceMode,
  jit,
  manualSeed,
  memory,
  nn,
  noGrad,
  randn,
  tidy,
  train,
  vgg11,
  vgg16_bn,
  vggTutorial,
} from '../lib/index.js';
import { checkModel } from '../lib/onnx/checker.js';
import { graphToOnnx } from '../lib/onnx/convert.js';
import { exportOnnx } from '../lib/onnx/export.js';
import type { GraphConstant as ConstantValue, GraphNode, Graph as TracedGraph } from '../lib/jit/scriptModule.js';
import { type IModelProto, type IValueInfoProto, onnx } from '../lib/onnx/proto.js';
import { saveModel } from '../lib/onnx/save.js';
import { hasTorchPython, python, requireLiveOracle, PYTHON } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Builds a traced graph by hand, as the tracer describes one. */
class GraphBuilder {
  nodes: GraphNode[] = [];
  private n = 0;
  constructor(readonly inputs: string[] = ['x.1']) {}
  const(value: ConstantValue): string {
    const out = `c${this.n++}`;
    this.nodes.push({ kind: 'prim::Constant', inputs: [], outputs: [out], value });
    return out;
  }
  list(values: number[]): string {
    const out = `l${this.n++}`;
    this.nodes.push({ kind: 'prim::ListConstruct', inputs: values.map((v) => this.const(v)), outputs: [out] });
    return out;
  }
  op(kind: string, ...inputs: string[]): string {
    const out = `v${this.n++}`;
    this.nodes.push({ kind, inputs, outputs: [out] });
    return out;
  }
  graph(...outputs: string[]): TracedGraph {
    return { inputs: this.inputs, outputs, nodes: this.nodes, text: '' };
  }
}

/** Runs an ONNX model (bytes or file) in onnxruntime on float32 `x`. */
async function runOrt(model: Uint8Array | string, x: Tensor, name = 'input'): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const out = await session.run({ [name]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
  await session.release();
  const y = out[session.outputNames[0]];
  return { data: y.data as Float32Array, dims: y.dims };
}

/** Largest |a − b| over the largest |b|: the error relative to the output's scale. */
function relDiff(actual: Float32Array, expected: Tensor): number {
  const e = expected.toTypedArray() as Float32Array;
  expect(actual.length).toBe(e.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < e.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - e[i]));
    scale = Math.max(scale, Math.abs(e[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

const encode = (m: IModelProto): Uint8Array => onnx.ModelProto.encode(m).finish();

describe('graphToOnnx on hand-built graphs', () => {
  it('converts conv, batch norm, relu, max-pool, adaptive pool, flatten, linear and dropout; onnxruntime agrees with vgg-torch at other batch sizes', async () => {
    manualSeed(7);
    const w = {
      conv: randn(8, 3, 3, 3).mul(0.3),
      convB: randn(8).mul(0.1),
      bnW: randn(8).abs(),
      bnB: randn(8),
      mean: randn(8).mul(0.1),
      variance: randn(8).abs().add(0.5),
      fc: randn(5, 32).mul(0.2),
      fcB: randn(5),
    };
    const b = new GraphBuilder();
    let h = b.op(
      'aten::_convolution',
      'x.1',
      b.const(w.conv),
      b.const(w.convB),
      b.list([1, 1]),
      b.list([1, 1]),
      b.list([1, 1]),
      b.const(false),
      b.list([0, 0]),
      b.const(1),
      b.const(false),
      b.const(false),
      b.const(true),
      b.const(true),
    );
    h = b.op(
      'aten::batch_norm',
      h,
      b.const(w.bnW),
      b.const(w.bnB),
      b.const(w.mean),
      b.const(w.variance),
      b.const(false),
      b.const(0.1),
      b.const(1e-5),
      b.const(true),
    );
    h = b.op('aten::relu_', h);
    h = b.op('aten::max_pool2d', h, b.list([2, 2]), b.list([2, 2]), b.list([0, 0]), b.list([1, 1]), b.const(false));
    h = b.op('aten::adaptive_avg_pool2d', h, b.list([2, 2])); // 4×4 → 2×2: AveragePool 2×2
    h = b.op('aten::flatten', h, b.const(1), b.const(-1));
    h = b.op('aten::linear', h, b.const(w.fc), b.const(w.fcB));
    h = b.op('aten::dropout', h, b.const(0.5), b.const(false));
    const model = graphToOnnx(b.graph(h), [{ shape: [2, 3, 8, 8], dtype: 'float32' }]);
    checkModel(model);
    expect(model.graph!.node!.map((n) => n.opType)).toEqual(['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'AveragePool', 'Flatten', 'Gemm']);
    expect(model.graph!.input![0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['batch', 3, 8, 8]);
    expect(model.graph!.output![0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['batch', 5]);
    const bytes = encode(model);
    for (const n of [1, 3]) {
      const x = randn(n, 3, 8, 8);
      const expected = tidy(() => {
        let y = F.conv2d(x, w.conv, w.convB, 1, 1);
        y = F.batchNorm(y, w.mean, w.variance, { weight: w.bnW, bias: w.bnB, eps: 1e-5 }).relu();
        y = F.adaptiveAvgPool2d(F.maxPool2d(y, 2, 2), [2, 2]).flatten(1);
        return F.linear(y, w.fc, w.fcB);
      });
      const got = await runOrt(bytes, x);
      expect(got.dims).toEqual([n, 5]);
      expect(relDiff(got.data, expected)).toBeLessThan(1e-5);
    }
  });
});

/** A graph of one operator on x; `args` builds its other inputs. */
function single(kind: string, args: (b: GraphBuilder) => string[]): TracedGraph {
  const b = new GraphBuilder();
  return b.graph(b.op(kind, 'x.1', ...args(b)));
}

describe('AdaptiveAvgPool2d', () => {
  // [input H×W, output size, the ONNX ops it becomes]
  const cases: [number[], (number | null)[], string[]][] = [
    [[7, 7], [7, 7], []], // identity: the output is the input (through Identity)
    [[14, 21], [7, 7], ['AveragePool']],
    [[5, 3], [1, 1], ['GlobalAveragePool']],
    [[1, 1], [7, 7], ['Resize']], // vgg16_bn on 32×32: every output pixel copies the one input pixel
    [[2, 3], [6, 6], ['Resize']],
    [
      [14, 2],
      [7, 6],
      ['AveragePool', 'Resize'],
    ],
    [[6, 5], [3, null], ['AveragePool']],
  ];
  for (const [hw, out, ops] of cases) {
    it(`from ${hw.join('×')} to ${out.map((o) => o ?? 'None').join('×')} is exact: ${ops.join(' + ') || 'no op'}`, async () => {
      manualSeed(3);
      const x = randn(2, 2, ...hw);
      const expected = F.adaptiveAvgPool2d(x, out as [number | null, number | null]);
      for (const opset of [11, 13, 17]) {
        const model = graphToOnnx(
          single('aten::adaptive_avg_pool2d', (b) => [b.list(out as number[])]),
          [{ shape: [1, 2, ...hw], dtype: 'float32' }],
          { opset },
        );
        checkModel(model);
        expect(model.graph!.node!.map((n) => n.opType).filter((o) => o !== 'Identity')).toEqual(ops);
        const got = await runOrt(encode(model), x);
        expect(got.dims).toEqual(expected.shape);
        expect(relDiff(got.data, expected)).toBeLessThan(1e-6);
      }
    });
  }

  it('refuses sizes that are neither multiples nor divisors, naming them', () => {
    expect(() =>
      graphToOnnx(
        single('aten::adaptive_avg_pool2d', (b) => [b.list([7, 7])]),
        [{ shape: [1, 512, 5, 7], dtype: 'float32' }],
      ),
    ).toThrow(/node \d+ \(aten::adaptive_avg_pool2d\): AdaptiveAvgPool2d from 5×7 to 7×7 has no exact ONNX form/);
  });
});

describe('pooling and convolution options', () => {
  it('MaxPool with padding, dilation and ceil_mode where PyTorch and ONNX agree; refuses ceil_mode where they do not', async () => {
    const graph = (k: number, s: number, p: number, d: number, ceil: boolean) =>
      single('aten::max_pool2d', (b) => [b.list([k, k]), b.list([s, s]), b.list([p, p]), b.list([d, d]), b.const(ceil)]);
    manualSeed(5);
    const x = randn(2, 3, 9, 9);
    for (const [k, s, p, d, ceil] of [
      [3, 2, 1, 1, true],
      [2, 2, 0, 1, true],
      [3, 1, 1, 2, false],
    ] as const) {
      const model = graphToOnnx(graph(k, s, p, d, ceil), [{ shape: [1, 3, 9, 9], dtype: 'float32' }]);
      const expected = F.maxPool2d(x, k, s, p, d, ceil);
      const got = await runOrt(encode(model), x);
      expect(got.dims).toEqual(expected.shape);
      expect(relDiff(got.data, expected)).toBe(0);
    }
    // 5×5, kernel 2, stride 2, padding 1, ceil: PyTorch drops the window starting in the right padding (3×3), ONNX's rule keeps it (4×4).
    expect(() => graphToOnnx(graph(2, 2, 1, 1, true), [{ shape: [1, 3, 5, 5], dtype: 'float32' }])).toThrow(
      /ceil_mode on a 5×5 input gives 3×3 in PyTorch but 4×4 by ONNX's shape rule/,
    );
  });

  it('avg_pool2d, conv2d with stride, dilation, groups, no bias and padding "same"', async () => {
    manualSeed(6);
    const w = randn(4, 2, 3, 3);
    const x = randn(3, 4, 10, 9);
    const b = new GraphBuilder();
    let h = b.op('aten::conv2d', 'x.1', b.const(w), b.const(null), b.list([2, 1]), b.list([1, 2]), b.list([1, 2]), b.const(2));
    h = b.op('aten::avg_pool2d', h, b.list([3, 3]), b.list([]), b.list([1, 1]), b.const(false), b.const(false), b.const(null));
    const same = randn(4, 4, 4, 4);
    h = b.op('aten::conv2d', h, b.const(same), b.const(null), b.list([1, 1]), b.const('same'), b.list([1, 1]), b.const(1));
    const model = graphToOnnx(b.graph(h), [{ shape: [1, 4, 10, 9], dtype: 'float32' }]);
    checkModel(model);
    let expected = F.conv2d(x, w, null, [2, 1], [1, 2], [1, 2], 2);
    expected = F.avgPool2d(expected, 3, null, { padding: 1, countIncludePad: false });
    expected = F.conv2d(expected, same, { padding: 'same' });
    const got = await runOrt(encode(model), x);
    expect(got.dims).toEqual(expected.shape);
    expect(relDiff(got.data, expected)).toBeLessThan(1e-5);
  });
});

describe('refusals', () => {
  const input = [{ shape: [1, 3, 8, 8], dtype: 'float32' as const }];
  it('names an unsupported operator', () => {
    expect(() =>
      graphToOnnx(
        single('aten::sigmoid', () => []),
        input,
      ),
    ).toThrow(/the operator aten::sigmoid \(node 0\) is not supported by the ONNX export; supported: aten::conv2d/);
  });
  it('refuses training-mode dropout and batch norm, batch norm without running stats, run-time lists', () => {
    expect(() =>
      graphToOnnx(
        single('aten::dropout', (b) => [b.const(0.5), b.const(true)]),
        input,
      ),
    ).toThrow(/Dropout in training mode is random; export the model in eval mode/);
    const bn = (training: boolean, stats: boolean) =>
      single('aten::batch_norm', (b) => {
        const s = stats ? [b.const(randn(3)), b.const(randn(3).abs())] : [b.const(null), b.const(null)];
        return [b.const(null), b.const(null), ...s, b.const(training), b.const(0.1), b.const(1e-5), b.const(true)];
      });
    expect(() => graphToOnnx(bn(true, true), input)).toThrow(/BatchNorm in training mode/);
    expect(() => graphToOnnx(bn(false, false), input)).toThrow(/without running statistics/);
    const b = new GraphBuilder();
    const size = b.op('aten::size', 'x.1', b.const(0));
    const l = 'l_rt';
    b.nodes.push({ kind: 'prim::ListConstruct', inputs: [size, b.const(-1)], outputs: [l] });
    expect(() => graphToOnnx(b.graph(b.op('aten::view', 'x.1', l)), input)).toThrow(/the operator aten::size \(node 1\) is not supported/);
    expect(() =>
      graphToOnnx(
        single('aten::relu', () => []),
        input,
        { opset: 9 },
      ),
    ).toThrow(/opset must be an integer from 11 to 17, got 9/);
    expect(() =>
      graphToOnnx(
        single('aten::relu', () => []),
        input,
        { inputNames: ['a', 'b'] },
      ),
    ).toThrow(/inputNames must be 1 non-empty string/);
    expect(() =>
      graphToOnnx(
        single('aten::flatten', (b2) => [b2.const(0), b2.const(-1)]),
        input,
      ),
    ).toThrow(/flattening the batch dimension .* dynamicBatch: false/);
  });
});

describe('names, dtypes and batch', () => {
  it('gives inputs and outputs their names; a pass-through output goes through Identity; a fixed batch when dynamicBatch is false', async () => {
    const b = new GraphBuilder();
    const d = b.op('aten::dropout', 'x.1', b.const(0.1), b.const(false));
    const r = b.op('aten::relu', d);
    const model = graphToOnnx(b.graph(d, r), [{ shape: [2, 3], dtype: 'float64' }], {
      inputNames: ['image'],
      outputNames: ['same', 'relu'],
      dynamicBatch: false,
    });
    checkModel(model);
    expect(model.graph!.node!.map((n) => `${n.opType}(${n.input!.join()})→${n.output!.join()}`)).toEqual(['Relu(image)→relu', 'Identity(image)→same']);
    expect(model.graph!.output!.map((o) => o.type!.tensorType!.elemType)).toEqual([onnx.TensorProto.DataType.DOUBLE, onnx.TensorProto.DataType.DOUBLE]);
    expect(model.graph!.output![1].type!.tensorType!.shape!.dim!.map((x) => Number(x.dimValue))).toEqual([2, 3]);
    const session = await ort.InferenceSession.create(encode(model));
    const out = await session.run({ image: new ort.Tensor('float64', Float64Array.from([-1, 2, -3, 4, -5, 6]), [2, 3]) });
    expect(Array.from(out.relu.data as Float64Array)).toEqual([0, 2, 0, 4, 0, 6]);
    expect(Array.from(out.same.data as Float64Array)).toEqual([-1, 2, -3, 4, -5, 6]);
  });
});

describe('checkModel', () => {
  const valid = (): IModelProto =>
    graphToOnnx(
      single('aten::relu', () => []),
      [{ shape: [1, 3], dtype: 'float32' }],
    );
  it('accepts an exported model and lists every broken rule of a bad one', () => {
    expect(() => checkModel(valid())).not.toThrow();
    const m = valid();
    m.graph!.node!.push({ opType: 'Add', input: ['nowhere', 'output'], output: ['output'] });
    m.graph!.output![0].type!.tensorType!.shape!.dim![1] = {};
    m.graph!.input![0].type = {};
    m.graph!.initializer = [{ name: 'w', dataType: onnx.TensorProto.DataType.FLOAT, dims: [2, 2], rawData: new Uint8Array(12) }];
    m.opsetImport = [];
    let message = '';
    try {
      checkModel(m);
    } catch (e) {
      message = (e as Error).message;
    }
    for (const rule of [
      'no opset_import for the default domain',
      'graph input input has no tensor type',
      'initializer w: raw_data holds 12 bytes, its shape needs 16',
      'node 1 (Add): input nowhere is not defined before it',
      'node 1 (Add) defines output a second time',
      'graph output output: dim 1 must be a positive size or a symbolic name',
    ])
      expect(message).toContain(rule);
  });
});

describe('saveModel', () => {
  it('writes the weights to an external data file past the threshold; onnxruntime reads it and agrees', async () => {
    manualSeed(9);
    const w1 = randn(16, 3, 3, 3);
    const w2 = randn(10, 16 * 4 * 4);
    const bias = randn(10);
    const b = new GraphBuilder();
    let h = b.op('aten::conv2d', 'x.1', b.const(w1), b.const(null), b.list([1]), b.list([1]), b.list([1]), b.const(1));
    h = b.op('aten::max_pool2d', b.op('aten::relu_', h), b.list([2]), b.list([]), b.list([0]), b.list([1]), b.const(false));
    h = b.op('aten::linear', b.op('aten::flatten', h, b.const(1), b.const(-1)), b.const(w2), b.const(bias));
    const model = graphToOnnx(b.graph(h), [{ shape: [1, 3, 8, 8], dtype: 'float32' }]);
    const x = randn(2, 3, 8, 8);
    const expected = F.linear(F.maxPool2d(F.conv2d(x, w1, null, 1, 1).relu(), 2).flatten(1), w2, bias);

    const inline = saveModel(model, join(dir, 'inline.onnx'));
    expect(inline.dataPath).toBeNull();
    expect(inline.bytes).toBe(statSync(inline.path).size);
    expect(inline.bytes).toBeGreaterThan((w1.numel() + w2.numel()) * 4);

    const ext = saveModel(model, join(dir, 'ext.onnx'), { externalDataThreshold: 4096 });
    expect(ext.dataPath).toBe(join(dir, 'ext.onnx.data'));
    expect(statSync(ext.path).size).toBeLessThan(2048); // only the graph and the 40-byte bias
    const stored = onnx.ModelProto.decode(readFileSync(ext.path));
    checkModel(stored);
    const kinds = stored.graph!.initializer!.map((t) => [t.name, t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL]);
    expect(kinds.filter(([, e]) => e).length).toBe(2);
    expect(kinds.filter(([, e]) => !e).length).toBe(1);
    for (const file of [inline.path, ext.path]) {
      const got = await runOrt(file, x);
      expect(relDiff(got.data, expected)).toBeLessThan(1e-5);
    }
    expect(existsSync(join(dir, 'inline.onnx.data'))).toBe(false);
  });
});

/** Running statistics and affine weights away from their 0/1 defaults, so that BatchNorm does something. */
function randomizeBatchNorm(model: nn.Module<any, any>): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (!(m instanceof nn.BatchNorm2d)) continue;
      m.runningMean!.normal_(0, 0.1);
      m.runningVar!.uniform_(0.5, 2);
      m.weight!.uniform_(0.5, 1.5);
      m.bias!.normal_(0, 0.1);
    }
  });
}

describe('onnx.export of the VGGs: onnxruntime gives vgg-torch eval outputs', () => {
  // [model, example input (traced), run input (another batch size), ONNX ops of the avgpool]
  const cases: [string, () => VGG, number[], number[], string[]][] = [
    ['vgg11 at 224×224 (7×7 features: no pool op)', () => vgg11(), [2, 3, 224, 224], [1, 3, 224, 224], []],
    ['vgg16_bn at 32×32 (1×1 features copied to 7×7)', () => vgg16_bn(), [1, 3, 32, 32], [3, 3, 32, 32], ['Resize']],
    ['the tutorial VGG (32×32, no avgpool)', () => vggTutorial(), [1, 3, 32, 32], [4, 3, 32, 32], []],
    ['the tutorial VGG with batch norm, 1 channel', () => vggTutorial({ batchNorm: true, inChannels: 1 }), [2, 1, 32, 32], [5, 1, 32, 32], []],
  ];
  for (const [name, build, example, runShape, poolOps] of cases) {
    it(name, async () => {
      manualSeed(777);
      const model = build();
      randomizeBatchNorm(model);
      const file = join(dir, 'vgg.onnx');
      try {
        const input = randn(...example);
        const before = memory().tensors;
        const saved = exportOnnx(model, input, file, { dynamicBatch: true });
        expect(memory().tensors).toBe(before); // the trace, its engine and the graph's weight handles are freed
        input.dispose();
        expect(model.training).toBe(true); // restored after the export
        expect(saved.dataPath).toBeNull();
        const stored = onnx.ModelProto.decode(readFileSync(file));
        checkModel(stored);
        const ops = stored.graph!.node!.map((n) => n.opType!);
        const bn = [...model.modules()].filter((m) => m instanceof nn.BatchNorm2d).length;
        const convs = [...model.modules()].filter((m) => m instanceof nn.Conv2d).length;
        expect(ops.filter((o) => o === 'Conv').length).toBe(convs);
        expect(ops.filter((o) => o === 'BatchNormalization').length).toBe(bn);
        expect(ops.filter((o) => o === 'Gemm').length).toBe(3);
        expect(ops).not.toContain('Dropout');
        expect(ops.filter((o) => ['Resize', 'AveragePool', 'GlobalAveragePool'].includes(o))).toEqual(poolOps);
        // Initializers are the state dict's tensors under its names.
        const keys = tidy(() => [...model.stateDict().keys()]).filter((k) => !k.endsWith('num_batches_tracked'));
        expect(
          stored
            .graph!.initializer!.map((t) => t.name!)
            .filter((n) => !n.startsWith('resize_'))
            .sort(),
        ).toEqual([...keys].sort());
        const dims = (v: IValueInfoProto) => v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
        expect(dims(stored.graph!.input![0])).toEqual(['batch', ...example.slice(1)]);
        expect(dims(stored.graph!.output![0])).toEqual([
          'batch',
          model.classifier[6] instanceof nn.Linear ? (model.classifier[6] as nn.Linear).outFeatures : -1,
        ]);

        manualSeed(1);
        const x = randn(...runShape);
        model.eval();
        const expected = inferenceMode(() => model(x));
        const got = await runOrt(file, x);
        expect(got.dims).toEqual(expected.shape);
        const rel = relDiff(got.data, expected);
        console.log(`${name}: max |onnxruntime − vgg-torch| / max |vgg-torch| = ${rel.toExponential(2)}`);
        expect(rel).toBeLessThan(1e-4);
        expected.dispose();
        x.dispose();
      } finally {
        model.dispose();
        rmSync(file, { force: true });
      }
    }, 120_000);
  }

  it('refuses a traced operator it cannot convert, naming it, and keeps the model in training mode', () => {
    class Sigmoid extends nn.Module {
      forward(x: Tensor): Tensor {
        return x.sigmoid();
      }
    }
    const model = new nn.Sequential(new nn.Conv2d(3, 4, 3), new Sigmoid());
    expect(() => exportOnnx(model, randn(1, 3, 8, 8), join(dir, 'bad.onnx'))).toThrow(
      /the operator aten::sigmoid \(node \d+\) is not supported by the ONNX export/,
    );
    expect(model.training).toBe(true);
    expect(existsSync(join(dir, 'bad.onnx'))).toBe(false);
    expect(() => exportOnnx(model, randn(1, 3, 8, 8), join(dir, 'bad.onnx'), { opset: 13, dynamic: true } as never)).toThrow(/dynamic/);
  });
});

/** Runs the vgg-torch CLI in a child process, as test/cli.test.ts does. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve('lib/cli/index.ts'), ...args], {
    env: { ...process.env, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('vgg-torch export', () => {
  it("exports a checkpoint the package wrote; onnxruntime gives the checkpoint model's outputs; metadata holds classes, mean, std", async () => {
    manualSeed(11);
    const model = vggTutorial({ batchNorm: true, numClasses: 4 });
    randomizeBatchNorm(model);
    const meta = {
      arch: 'tutorial_bn',
      numClasses: 4,
      inChannels: 3,
      imageSize: 32,
      classes: ['ant', 'bee', 'cat', 'dog'],
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      dataset: 'folder',
      data: join(dir, 'nowhere'),
      pretrained: false,
    };
    const ck = join(dir, 'checkpoint.pth');
    train.saveCheckpoint(ck, { model, epoch: 3, meta });
    const out = join(dir, 'cli.onnx');
    try {
      const r = await cli(['export', '--checkpoint', ck, '--format', 'onnx', '--out', out, '--opset', '15']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        /^Exported tutorial_bn \(.*checkpoint\.pth, epoch 3\) to .*cli\.onnx: [\d.]+ MiB, ONNX opset 15, input \[batch, 3, 32, 32\] float32\n$/,
      );
      const stored = onnx.ModelProto.decode(readFileSync(out));
      checkModel(stored);
      expect(Number(stored.opsetImport![0].version)).toBe(15);
      const props = Object.fromEntries(stored.metadataProps!.map((p) => [p.key, p.value]));
      expect(JSON.parse(props.classes!)).toEqual(meta.classes);
      expect(JSON.parse(props.std!)).toEqual(meta.std);
      manualSeed(12);
      const x = randn(3, 3, 32, 32);
      model.eval();
      const expected = inferenceMode(() => model(x));
      const got = await runOrt(out, x);
      expect(got.dims).toEqual([3, 4]);
      expect(relDiff(got.data, expected)).toBeLessThan(1e-4);
      expected.dispose();
    } finally {
      model.dispose();
    }
  }, 60_000);

  it("--format torchscript writes the traced model, which jit.load runs with the checkpoint model's outputs", async () => {
    const ck = join(dir, 'checkpoint.pth');
    const out = join(dir, 'cli.pt');
    const r = await cli(['export', '--checkpoint', ck, '--format', 'torchscript', '--out', out]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/: [\d.]+ MiB, TorchScript \(traced\), input \[batch, 3, 32, 32\] float32\n$/);
    const checkpoint = train.loadCheckpoint(ck);
    const model = vggTutorial({ batchNorm: true, numClasses: 4, initWeights: false });
    model.loadStateDict(checkpoint.model);
    checkpoint.dispose();
    model.eval();
    const engine = jit.load(out);
    try {
      manualSeed(14);
      const x = randn(2, 3, 32, 32);
      tidy(() => expect((engine.forward(x) as Tensor).equal(inferenceMode(() => model(x)))).toBe(true));
    } finally {
      engine.dispose();
      model.dispose();
    }
  }, 60_000);

  it("--arch vgg11 --weights <file PyTorch wrote>: onnxruntime gives torchvision's eval output (live oracle)", async () => {
    if (!hasTorchPython) {
      expect(requireLiveOracle).toBe(false);
      return;
    }
    // PyTorch writes seeded vgg11 weights, an input and its own eval output (32×32: 1×1 features copied to 7×7).
    const script = `
import sys, os, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.vgg11().eval()
torch.save(m.state_dict(), sys.argv[1])
x = torch.randn(3, 3, 32, 32)
with torch.no_grad():
    y = m(x)
x.numpy().tofile(sys.argv[2]); y.numpy().tofile(sys.argv[3])
`;
    const [weights, xFile, yFile, out] = ['vgg11.pth', 'x.bin', 'y.bin', 'vgg11.onnx'].map((f) => join(dir, f));
    const py = await python(['-c', script, weights, xFile, yFile]);
    expect(py.status, py.stderr).toBe(0); // Python's warnings on stderr are not failures
    try {
      const r = await cli(['export', '--arch', 'vgg11', '--weights', weights, '--image-size', '32', '--out', out]);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toMatch(
        /^Exported vgg11 \(weights .*vgg11\.pth\) to .*vgg11\.onnx: 5\d\d\.\d MiB, ONNX opset 13, input \[batch, 3, 32, 32\] float32\n$/,
      );
      const x = new Float32Array(readFileSync(xFile).buffer.slice(0));
      const expected = new Float32Array(readFileSync(yFile).buffer.slice(0));
      const session = await ort.InferenceSession.create(out);
      const got = (await session.run({ input: new ort.Tensor('float32', x, [3, 3, 32, 32]) })).output;
      await session.release();
      expect(got.dims).toEqual([3, 1000]);
      const data = got.data as Float32Array;
      const scale = expected.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      const diff = expected.reduce((a, v, i) => Math.max(a, Math.abs(v - data[i])), 0);
      expect(diff / scale).toBeLessThan(1e-4);
    } finally {
      for (const f of [weights, out]) rmSync(f, { force: true });
    }
  }, 120_000);

  it('fails with one clear line', async () => {
    const ck = join(dir, 'checkpoint.pth');
    const cases: [string[], number, RegExp][] = [
      [
        ['export', '--checkpoint', ck, '--format', 'torchscript', '--opset', '13', '--out', 'x.pt'],
        2,
        /^vgg-torch: --opset and --static-batch apply to --format onnx\n$/,
      ],
      [['export', '--checkpoint', ck, '--format', 'tflite', '--out', 'x'], 2, /^vgg-torch: unknown format 'tflite' \(choose from onnx, torchscript\)\n$/],
      [['export', '--checkpoint', ck], 2, /^vgg-torch: export needs --out <file>/],
      [['export', '--checkpoint', ck, '--arch', 'vgg11', '--out', 'x'], 2, /^vgg-torch: --checkpoint brings its own architecture and weights/],
      [['export', '--arch', 'vgg11', '--out', 'x', '--opset', '9'], 2, /^vgg-torch: --opset must be an integer from 11 to 17, got '9'/],
      [
        ['export', '--checkpoint', ck, '--out', join(dir, 'x.onnx'), '--image-size', '64'],
        1,
        /^vgg-torch: VGG: the classifier takes 512 × 4 × 4 = 8192 features \(built for 32×32 input\), but a 64×64 input gives/,
      ],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(args);
      expect([r.code, r.stderr]).toEqual([code, expect.stringMatching(message)]);
    }
    const help = await cli(['export', '--help']);
    expect(help.stdout).toMatch(/^Usage: vgg-torch export --out <file>/);
  }, 60_000);
});

// The Python onnx package is not a dependency; where it is installed, its own checker (with full shape inference) has the last word.
const hasOnnxPython = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasOnnxPython)('onnx.checker (Python onnx package)', () => {
  it('accepts the exported tutorial VGG with batch norm, full check', async () => {
    manualSeed(13);
    const model = vggTutorial({ batchNorm: true });
    const file = join(dir, 'checked.onnx');
    exportOnnx(model, randn(1, 3, 32, 32), file);
    model.dispose();
    const r = await python(['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', file]);
    expect(r.status, r.stderr).toBe(0); // Python's warnings on stderr are not failures
  }, 60_000);
});
