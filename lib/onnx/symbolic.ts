// One symbolic function per traced ATen operator, as torch/onnx/symbolic_opset*.py:
// each reads its node's inputs (tensors, constant ints and lists), emits the ONNX
// nodes that compute the same thing, and gives the output's shape, which later
// symbolics need (AdaptiveAvgPool2d's exact form depends on its input size).
import type { DType } from '../tensor/dtype.js';
import type { GraphConstant as ConstantValue, GraphNode } from '../jit/scriptModule.js';
import { type AttrValue, type ITensorProto, floatTensor, int64Tensor } from './proto.js';

/** What the converter knows of a tensor value: its size in the traced run, and whether dim 0 is the batch. */
export interface ValueType {
  shape: number[];
  dtype: DType;
  /** Dim 0 is the (possibly symbolic) batch dimension of the graph inputs. */
  batched: boolean;
}

/** The converter's services to one symbolic function, for one node. */
export interface SymbolicContext {
  readonly node: GraphNode;
  readonly opset: number;
  readonly dynamicBatch: boolean;
  /** The ONNX name of tensor input `i` (a constant tensor becomes an initializer). */
  tensor(i: number): string;
  /** Like {@link tensor}, or `null` when the input is None. */
  optionalTensor(i: number): string | null;
  /** The type of tensor input `i`. */
  type(i: number): ValueType;
  /** The constant value of input `i` (an Error if it is computed at run time). */
  constant(i: number): ConstantValue;
  /** A new initializer (a name is chosen when `hint` is taken). */
  initializer(hint: string, make: (name: string) => ITensorProto): string;
  /** Appends an ONNX node; returns its output's name. */
  emit(opType: string, inputs: string[], attrs?: Record<string, AttrValue>): string;
  /** Binds the node's output `i` to ONNX value `name`. */
  result(name: string, type: ValueType, i?: number): void;
  /** An Error naming the node. */
  fail(message: string): Error;
}

export type Symbolic = (ctx: SymbolicContext) => void;

// ---- argument readers ----------------------------------------------------------

function ints(ctx: SymbolicContext, i: number, what: string): number[] {
  const v = ctx.constant(i);
  const list = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => Number.isInteger(x))) throw ctx.fail(`${what} must be a constant int list, got ${String(v)}`);
  return list;
}

/** An int pair (`_pair`): one value for both dims, or two. */
function pair(ctx: SymbolicContext, i: number, what: string): [number, number] {
  const l = ints(ctx, i, what);
  if (l.length === 1) return [l[0], l[0]];
  if (l.length !== 2) throw ctx.fail(`${what} must have 1 or 2 values, got [${l.join(', ')}]`);
  return [l[0], l[1]];
}

function int(ctx: SymbolicContext, i: number, what: string): number {
  const v = ctx.constant(i);
  if (typeof v !== 'number' || !Number.isInteger(v)) throw ctx.fail(`${what} must be a constant int, got ${String(v)}`);
  return v;
}

function float(ctx: SymbolicContext, i: number, what: string): number {
  const v = ctx.constant(i);
  if (typeof v !== 'number') throw ctx.fail(`${what} must be a constant number, got ${String(v)}`);
  return v;
}

function bool(ctx: SymbolicContext, i: number, what: string): boolean {
  const v = ctx.constant(i);
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1; // TorchScript bools may arrive as ints
  throw ctx.fail(`${what} must be a constant bool, got ${String(v)}`);
}

/** A 4-d (N, C, H, W) input, as the 2-d ONNX ops take. */
function nchw(ctx: SymbolicContext, i: number): ValueType {
  const t = ctx.type(i);
  if (t.shape.length !== 4) throw ctx.fail(`expects a 4-d (N, C, H, W) input, got shape [${t.shape.join(', ')}]`);
  return t;
}

/** PyTorch's pooling output size, ceil_mode included (the last window must start inside the input or left padding). */
function poolOut(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = size + 2 * p - d * (k - 1) - 1;
  let out = Math.floor((ceil ? span + s - 1 : span) / s) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
}

/** ONNX's (ORT's) ceil_mode size: no last-window rule. */
const onnxCeilOut = (size: number, k: number, s: number, p: number, d: number): number => Math.ceil((size + 2 * p - d * (k - 1) - 1) / s) + 1;

function checkPool(ctx: SymbolicContext, hw: number[], k: number[], s: number[], p: number[], d: number[], ceil: boolean): number[] {
  const out = [0, 1].map((j) => poolOut(hw[j], k[j], s[j], p[j], d[j], ceil));
  if (out.some((o) => o < 1)) throw ctx.fail(`kernel ${k.join('×')} does not fit the ${hw.join('×')} input`);
  // Where PyTorch drops a last window that would start in the right padding, ONNX keeps it: not the same function.
  if (ceil && [0, 1].some((j) => onnxCeilOut(hw[j], k[j], s[j], p[j], d[j]) !== out[j])) {
    const onnxOut = [0, 1].map((j) => onnxCeilOut(hw[j], k[j], s[j], p[j], d[j]));
    throw ctx.fail(
      `ceil_mode on a ${hw.join('×')} input gives ${out.join('×')} in PyTorch but ${onnxOut.join('×')} by ONNX's shape rule ` +
        '(before opset 19 a last window may start in the right padding, and runtimes differ); export with an input size where they agree',
    );
  }
  return out;
}

// ---- the operators ---------------------------------------------------------------

/** aten::conv2d / aten::convolution / aten::_convolution → Conv. */
function conv(kind: 'conv2d' | 'convolution'): Symbolic {
  return (ctx) => {
    const x = nchw(ctx, 0);
    const w = ctx.type(1);
    if (w.shape.length !== 4) throw ctx.fail(`only 2-d convolution is exported; weight has shape [${w.shape.join(', ')}]`);
    // conv2d(input, weight, bias, stride, padding, dilation, groups);
    // convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, …)
    if (kind === 'convolution' && bool(ctx, 6, 'transposed')) throw ctx.fail('transposed convolution is not supported by the ONNX export');
    const groups = int(ctx, kind === 'conv2d' ? 6 : 8, 'groups');
    const stride = pair(ctx, 3, 'stride');
    const dilation = pair(ctx, 5, 'dilation');
    const k = w.shape.slice(2);
    let pads: number[];
    const padArg = ctx.constant(4);
    if (padArg === 'valid') pads = [0, 0, 0, 0];
    else if (padArg === 'same') {
      // PyTorch puts the odd pixel of 'same' padding at the end (bottom, right).
      const total = [0, 1].map((j) => dilation[j] * (k[j] - 1));
      pads = [Math.floor(total[0] / 2), Math.floor(total[1] / 2), total[0] - Math.floor(total[0] / 2), total[1] - Math.floor(total[1] / 2)];
    } else {
      const p = pair(ctx, 4, 'padding');
      pads = [p[0], p[1], p[0], p[1]];
    }
    const inputs = [ctx.tensor(0), ctx.tensor(1)];
    const bias = ctx.optionalTensor(2);
    if (bias !== null) inputs.push(bias);
    const hw = [0, 1].map((j) => Math.floor((x.shape[2 + j] + pads[j] + pads[j + 2] - dilation[j] * (k[j] - 1) - 1) / stride[j]) + 1);
    if (hw.some((o) => o < 1)) throw ctx.fail(`kernel ${k.join('×')} does not fit the ${x.shape.slice(2).join('×')} input`);
    const y = ctx.emit('Conv', inputs, { kernel_shape: k, strides: stride, pads, dilations: dilation, group: groups });
    ctx.result(y, { ...x, shape: [x.shape[0], w.shape[0], ...hw] });
  };
}

const relu: Symbolic = (ctx) => ctx.result(ctx.emit('Relu', [ctx.tensor(0)]), ctx.type(0));

/** aten::max_pool2d(self, kernel_size, stride, padding, dilation, ceil_mode) → MaxPool. */
const maxPool2d: Symbolic = (ctx) => {
  const x = nchw(ctx, 0);
  const k = pair(ctx, 1, 'kernel_size');
  const s = ints(ctx, 2, 'stride').length === 0 ? k : pair(ctx, 2, 'stride'); // stride=[] means kernel_size
  const p = pair(ctx, 3, 'padding');
  const d = pair(ctx, 4, 'dilation');
  const ceil = bool(ctx, 5, 'ceil_mode');
  const out = checkPool(ctx, x.shape.slice(2), k, s, p, d, ceil);
  const y = ctx.emit('MaxPool', [ctx.tensor(0)], { kernel_shape: k, strides: s, pads: [...p, ...p], dilations: d, ceil_mode: ceil ? 1 : 0 });
  ctx.result(y, { ...x, shape: [...x.shape.slice(0, 2), ...out] });
};

/** aten::avg_pool2d(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override) → AveragePool. */
const avgPool2d: Symbolic = (ctx) => {
  const x = nchw(ctx, 0);
  const k = pair(ctx, 1, 'kernel_size');
  const s = ints(ctx, 2, 'stride').length === 0 ? k : pair(ctx, 2, 'stride');
  const p = pair(ctx, 3, 'padding');
  const ceil = bool(ctx, 4, 'ceil_mode');
  const countIncludePad = bool(ctx, 5, 'count_include_pad');
  if (ctx.node.inputs.length > 6 && ctx.constant(6) !== null) throw ctx.fail('divisor_override has no ONNX equivalent');
  const out = checkPool(ctx, x.shape.slice(2), k, s, p, [1, 1], ceil);
  const y = ctx.emit('AveragePool', [ctx.tensor(0)], {
    kernel_shape: k,
    strides: s,
    pads: [...p, ...p],
    ceil_mode: ceil ? 1 : 0,
    count_include_pad: countIncludePad ? 1 : 0,
  });
  ctx.result(y, { ...x, shape: [...x.shape.slice(0, 2), ...out] });
};

/**
 * aten::adaptive_avg_pool2d(self, output_size). ONNX has no adaptive pooling, but
 * each dimension where the input size is a multiple of the output size is an
 * AveragePool with kernel = stride = in / out (GlobalAveragePool to 1×1; nothing
 * when in == out), and each where the output size is a multiple of the input
 * size copies every input pixel out / in times (a nearest Resize by that integer
 * factor, whose sampling positions are exact). Other sizes are refused.
 */
const adaptiveAvgPool2d: Symbolic = (ctx) => {
  const x = nchw(ctx, 0);
  const hw = x.shape.slice(2);
  const raw = ctx.constant(1);
  const list = typeof raw === 'number' ? [raw, raw] : Array.isArray(raw) ? raw : null;
  if (list === null || list.length !== 2) throw ctx.fail(`output_size must be an int or a pair, got ${String(raw)}`);
  const out = list.map((o, j) => (o === null ? hw[j] : o)); // None keeps the input size
  const down = [0, 1].map((j) => (hw[j] % out[j] === 0 ? hw[j] / out[j] : 0));
  const up = [0, 1].map((j) => (out[j] % hw[j] === 0 ? out[j] / hw[j] : 0));
  const bad = [0, 1].filter((j) => down[j] === 0 && up[j] === 0);
  if (bad.length) {
    throw ctx.fail(
      `AdaptiveAvgPool2d from ${hw.join('×')} to ${out.join('×')} has no exact ONNX form (each input side must be a ` +
        `multiple or a divisor of the output side); export with an input size that gives ${out.join('×')} or a multiple of it ` +
        `before the pool (224×224 for torchvision's VGGs)`,
    );
  }
  let y = ctx.tensor(0);
  const kernel = [0, 1].map((j) => (down[j] > 0 ? down[j] : 1));
  if (out[0] === 1 && out[1] === 1 && hw.some((d) => d > 1)) y = ctx.emit('GlobalAveragePool', [y]);
  else if (kernel.some((kk) => kk > 1)) y = ctx.emit('AveragePool', [y], { kernel_shape: kernel, strides: kernel });
  const scale = [0, 1].map((j) => (down[j] > 0 ? 1 : up[j]));
  if (scale.some((f) => f > 1)) {
    // Integer factors: asymmetric coordinates floor(i / f) select input pixel ⌊i·in/out⌋, the one adaptive pooling averages.
    const roi = ctx.initializer('resize_roi', (name) => floatTensor(name, [0], []));
    const scales = ctx.initializer('resize_scales', (name) => floatTensor(name, [4], [1, 1, scale[0], scale[1]]));
    y = ctx.emit('Resize', [y, roi, scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  }
  ctx.result(y, { ...x, shape: [...x.shape.slice(0, 2), ...out] });
};

/**
 * aten::batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled)
 * → BatchNormalization in inference form (the running statistics).
 */
const batchNorm: Symbolic = (ctx) => {
  const x = ctx.type(0);
  if (x.shape.length < 2) throw ctx.fail(`expects an input with a channel dimension, got shape [${x.shape.join(', ')}]`);
  if (bool(ctx, 5, 'training')) throw ctx.fail('BatchNorm in training mode normalizes with batch statistics; export the model in eval mode');
  const mean = ctx.optionalTensor(3);
  const variance = ctx.optionalTensor(4);
  if (mean === null || variance === null) {
    throw ctx.fail('BatchNorm without running statistics (track_running_stats=False) normalizes with batch statistics, which ONNX inference has not');
  }
  const c = x.shape[1];
  const fill = (v: number) => (name: string) => floatTensor(name, [c], new Array<number>(c).fill(v));
  const scale = ctx.optionalTensor(1) ?? ctx.initializer('batch_norm_ones', fill(1)); // affine=False
  const bias = ctx.optionalTensor(2) ?? ctx.initializer('batch_norm_zeros', fill(0));
  const y = ctx.emit('BatchNormalization', [ctx.tensor(0), scale, bias, mean, variance], {
    epsilon: { float: float(ctx, 7, 'eps') }, // momentum only updates running statistics in training: not written
  });
  ctx.result(y, x);
};

/** aten::flatten(self, start_dim, end_dim) → Flatten (start 1 to the end), else Reshape. */
const flatten: Symbolic = (ctx) => {
  const x = ctx.type(0);
  const n = x.shape.length;
  const norm = (d: number) => (d < 0 ? d + Math.max(n, 1) : d);
  const start = norm(int(ctx, 1, 'start_dim'));
  const end = norm(int(ctx, 2, 'end_dim'));
  if (start < 0 || end >= Math.max(n, 1) || start > end) throw ctx.fail(`dims ${start}..${end} do not fit shape [${x.shape.join(', ')}]`);
  const shape = [...x.shape.slice(0, start), x.shape.slice(start, end + 1).reduce((a, b) => a * b, 1), ...x.shape.slice(end + 1)];
  if (start === 0 && x.batched && ctx.dynamicBatch && end > 0) {
    throw ctx.fail('flattening the batch dimension into others cannot keep a dynamic batch; export with dynamicBatch: false');
  }
  let y: string;
  if (start === 1 && end === n - 1) y = ctx.emit('Flatten', [ctx.tensor(0)], { axis: 1 });
  else {
    // 0 copies a leading dim (the batch stays symbolic), -1 takes the flattened group.
    const target = [...x.shape.slice(0, start).map(() => 0), -1, ...x.shape.slice(end + 1)];
    const s = ctx.initializer('flatten_shape', (name) => int64Tensor(name, target));
    y = ctx.emit('Reshape', [ctx.tensor(0), s]);
  }
  ctx.result(y, { ...x, shape, batched: x.batched && start > 0 });
};

/** aten::linear(input, weight, bias) → Gemm (transB) for 2-d input, else MatMul with the transposed weight (+ Add). */
const linear: Symbolic = (ctx) => {
  const x = ctx.type(0);
  const w = ctx.type(1);
  if (w.shape.length !== 2 || x.shape.length < 1 || x.shape[x.shape.length - 1] !== w.shape[1]) {
    throw ctx.fail(`input of shape [${x.shape.join(', ')}] does not fit a weight of shape [${w.shape.join(', ')}]`);
  }
  const shape = [...x.shape.slice(0, -1), w.shape[0]];
  const bias = ctx.optionalTensor(2);
  let y: string;
  if (x.shape.length === 2) y = ctx.emit('Gemm', [ctx.tensor(0), ctx.tensor(1), ...(bias === null ? [] : [bias])], { transB: 1 });
  else {
    y = ctx.emit('MatMul', [ctx.tensor(0), ctx.emit('Transpose', [ctx.tensor(1)], { perm: [1, 0] })]);
    if (bias !== null) y = ctx.emit('Add', [y, bias]);
  }
  ctx.result(y, { ...x, shape });
};

/** aten::dropout(input, p, train): the identity in eval, which is how models are exported. */
const dropout: Symbolic = (ctx) => {
  if (bool(ctx, 2, 'train')) throw ctx.fail('Dropout in training mode is random; export the model in eval mode');
  ctx.result(ctx.tensor(0), ctx.type(0));
};

/** The traced operators the export converts, by TorchScript kind. */
export const SYMBOLICS: Readonly<Record<string, Symbolic>> = {
  'aten::conv2d': conv('conv2d'),
  'aten::convolution': conv('convolution'),
  'aten::_convolution': conv('convolution'),
  'aten::relu': relu,
  'aten::relu_': relu,
  'aten::max_pool2d': maxPool2d,
  'aten::avg_pool2d': avgPool2d,
  'aten::adaptive_avg_pool2d': adaptiveAvgPool2d,
  'aten::batch_norm': batchNorm,
  'aten::flatten': flatten,
  'aten::linear': linear,
  'aten::dropout': dropout,
  'aten::dropout_': dropout,
};
