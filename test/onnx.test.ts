// ONNX export: the converter on hand-built traced graphs (each operator, each
// AdaptiveAvgPool2d path, the refusals), the checker's rules, external data,
// and onnxruntime-node running the files against vgg-torch's own outputs.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { F, type Tensor, manualSeed, randn, tidy } from '../lib/index.js';
import { checkModel } from '../lib/onnx/checker.js';
import { graphToOnnx } from '../lib/onnx/convert.js';
import type { ConstantValue, GraphNode, TracedGraph } from '../lib/onnx/graph.js';
import { type IModelProto, onnx } from '../lib/onnx/proto.js';
import { saveModel } from '../lib/onnx/save.js';

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
    return { inputs: this.inputs, outputs, nodes: this.nodes };
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
      conv: randn(8, 3, 3, 3).mul(0.3), convB: randn(8).mul(0.1),
      bnW: randn(8).abs(), bnB: randn(8), mean: randn(8).mul(0.1), variance: randn(8).abs().add(0.5),
      fc: randn(5, 32).mul(0.2), fcB: randn(5),
    };
    const b = new GraphBuilder();
    let h = b.op('aten::_convolution', 'x.1', b.const(w.conv), b.const(w.convB), b.list([1, 1]), b.list([1, 1]), b.list([1, 1]),
      b.const(false), b.list([0, 0]), b.const(1), b.const(false), b.const(false), b.const(true), b.const(true));
    h = b.op('aten::batch_norm', h, b.const(w.bnW), b.const(w.bnB), b.const(w.mean), b.const(w.variance), b.const(false), b.const(0.1), b.const(1e-5), b.const(true));
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

afterAll(() => {
  void existsSync; void readFileSync; void statSync; void saveModel;
});
