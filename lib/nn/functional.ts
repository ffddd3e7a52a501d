// torch.nn.functional: the kernels VGG training and inference need, each one
// libtorch operator with PyTorch's argument names, defaults and checks.
//
// Calls read as in Python: the arguments after the tensors an op works on may be
// given positionally, in Python's order, or in a trailing options object by name,
// as Python's keywords, or both: the leading ones positionally, the rest by name.
//
//   F.conv2d(x, w, b, 1, 1)                  F.conv2d(x, w, b, 1, 1)
//   F.conv2d(x, w, { bias: b, padding: 1 })  F.conv2d(x, w, bias=b, padding=1)
//   F.conv2d(x, w, b, { padding: 1 })        F.conv2d(x, w, b, padding=1)
//
// A positional `undefined` is a default. As in Python, an unknown name, a name also
// given positionally, and too many positional arguments are errors. The options
// object is told from a positional argument by being a plain object (`{ … }`);
// no positional argument of these functions is one.
import { native, op } from '../native.js';
import { backends } from '../runtime.js';
import type { DType } from '../tensor/dtype.js';
import { type Reduction, type Tensor, broadcastTensors, handleOf, reductionCode, wrap } from '../tensor/tensor.js';
import { checkInt, checkIntPair, checkOneOf, describe, parseArgs } from '../utils/args.js';
import { type Pair, pair } from './modules/utils.js';

/** The options of {@link conv2d}: its arguments after `weight`, by name. */
export interface ConvOptions {
  bias?: Tensor | null;
  stride?: Pair;
  /** A number, a pair, `'same'` or `'valid'`. */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
}

const CONV_ARGS = ['bias', 'stride', 'padding', 'dilation', 'groups'];

/**
 * 2-D convolution (`F.conv2d`); `padding` may be a number, a pair, or `'same'`/`'valid'`.
 * The arguments after `weight` go positionally, by name in an options object, or both:
 *
 * ```ts
 * F.conv2d(x, w, b, 1, 1);                  // F.conv2d(x, w, b, 1, 1)
 * F.conv2d(x, w, { bias: b, padding: 1 });  // F.conv2d(x, w, bias=b, padding=1)
 * F.conv2d(x, w, b, { stride: 2 });         // F.conv2d(x, w, b, stride=2)
 * ```
 */
export function conv2d(input: Tensor, weight: Tensor, options?: ConvOptions): Tensor;
/** {@link conv2d} with the leading arguments positionally, the rest by name. */
export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null | undefined, options?: Omit<ConvOptions, 'bias'>): Tensor;
/** {@link conv2d} with the leading arguments positionally, the rest by name. */
export function conv2d(
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  stride: Pair | undefined,
  options?: Omit<ConvOptions, 'bias' | 'stride'>,
): Tensor;
/** {@link conv2d} with the leading arguments positionally, the rest by name. */
export function conv2d(
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  stride: Pair | undefined,
  padding: Pair | 'same' | 'valid' | undefined,
  options?: Pick<ConvOptions, 'dilation' | 'groups'>,
): Tensor;
/** {@link conv2d} with the leading arguments positionally, the rest by name. */
export function conv2d(
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  stride: Pair | undefined,
  padding: Pair | 'same' | 'valid' | undefined,
  dilation: Pair | undefined,
  options?: Pick<ConvOptions, 'groups'>,
): Tensor;
/** {@link conv2d} with its arguments positionally, in Python's order. */
export function conv2d(
  input: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  stride?: Pair,
  padding?: Pair | 'same' | 'valid',
  dilation?: Pair,
  groups?: number,
): Tensor;
export function conv2d(input: Tensor, weight: Tensor, ...args: unknown[]): Tensor {
  const a = parseArgs<ConvOptions>('conv2d()', args, CONV_ARGS);
  const bias = a.bias ?? null;
  const [stride, padding, dilation, groups] = [a.stride ?? 1, a.padding ?? 0, a.dilation ?? 1, a.groups ?? 1];
  const b = bias === null ? null : handleOf(bias, 'bias');
  checkConvArgs('conv2d()', stride, padding, dilation, groups);
  const overload = typeof padding === 'string' ? 'padding' : '';
  return wrap(native.call(op('aten::conv2d', overload), handleOf(input, 'input'), handleOf(weight, 'weight'), b, stride, padding, dilation, groups));
}

/** Conv2d's and conv2d()'s stride, padding, dilation and groups, checked before libtorch sees them. */
export function checkConvArgs(fn: string, stride: unknown, padding: unknown, dilation: unknown, groups: unknown): void {
  checkIntPair(fn, 'stride', stride, 1);
  if (padding !== 'same' && padding !== 'valid') checkIntPair(fn, 'padding', padding, 0, ", 'same' or 'valid'");
  checkIntPair(fn, 'dilation', dilation, 1);
  checkInt(fn, 'groups', groups, 1);
}

/** Pooling windows: kernel ≥ 1, stride ≥ 1 (or null: the kernel), padding ≥ 0, dilation ≥ 1. */
export function checkPoolArgs(fn: string, kernelSize: unknown, opts: { stride?: unknown; padding?: unknown; dilation?: unknown }): void {
  checkIntPair(fn, 'kernelSize', kernelSize, 1);
  if (opts.stride != null) checkIntPair(fn, 'stride', opts.stride, 1);
  if (opts.padding !== undefined) checkIntPair(fn, 'padding', opts.padding, 0);
  if (opts.dilation !== undefined) checkIntPair(fn, 'dilation', opts.dilation, 1);
}

/** An adaptive pool's output size: an integer ≥ 0 or null (keep the input's), or a pair of them. */
export function checkAdaptiveSize(fn: string, v: unknown): void {
  const ok = (x: unknown): boolean => x === null || (typeof x === 'number' && Number.isInteger(x) && x >= 0);
  if ((ok(v) && v !== null) || (Array.isArray(v) && v.length === 2 && v.every(ok))) return;
  throw new RangeError(`${fn}: outputSize must be a non-negative integer or a pair of non-negative integers or nulls, got ${describe(v)}`);
}

/** The options of {@link batchNorm}: its arguments after `input`, by name. */
export interface BatchNormOptions {
  /** Required (null for none), positionally or by name. */
  runningMean?: Tensor | null;
  /** Required (null for none), positionally or by name. */
  runningVar?: Tensor | null;
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Use batch statistics and update the running ones (default false, as in F.batch_norm). */
  training?: boolean;
  momentum?: number;
  eps?: number;
}

type BatchNormStats = 'runningMean' | 'runningVar';
const BATCH_NORM_ARGS = ['runningMean', 'runningVar', 'weight', 'bias', 'training', 'momentum', 'eps'];

/**
 * Batch normalisation (`F.batch_norm`). In training, batch statistics normalise the input and
 * `runningMean`/`runningVar` are updated in place with `momentum`. The arguments after `input`
 * go positionally, by name in an options object, or both:
 *
 * ```ts
 * F.batchNorm(x, rm, rv, w, b, true, 0.1, 1e-5);        // F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
 * F.batchNorm(x, rm, rv, { weight: w, training: true }); // F.batch_norm(x, rm, rv, weight=w, training=True)
 * F.batchNorm(x, { runningMean: null, runningVar: null, training: true });
 * ```
 */
export function batchNorm(input: Tensor, options: BatchNormOptions & Required<Pick<BatchNormOptions, BatchNormStats>>): Tensor;
/** {@link batchNorm} with the leading arguments positionally, the rest by name. */
export function batchNorm(input: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, options?: Omit<BatchNormOptions, BatchNormStats>): Tensor;
/** {@link batchNorm} with the leading arguments positionally, the rest by name. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null | undefined,
  options?: Omit<BatchNormOptions, BatchNormStats | 'weight'>,
): Tensor;
/** {@link batchNorm} with the leading arguments positionally, the rest by name. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null | undefined,
  bias: Tensor | null | undefined,
  options?: Pick<BatchNormOptions, 'training' | 'momentum' | 'eps'>,
): Tensor;
/** {@link batchNorm} with the leading arguments positionally, the rest by name. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null | undefined,
  bias: Tensor | null | undefined,
  training: boolean | undefined,
  options?: Pick<BatchNormOptions, 'momentum' | 'eps'>,
): Tensor;
/** {@link batchNorm} with the leading arguments positionally, the rest by name. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null | undefined,
  bias: Tensor | null | undefined,
  training: boolean | undefined,
  momentum: number | undefined,
  options?: Pick<BatchNormOptions, 'eps'>,
): Tensor;
/** {@link batchNorm} with its arguments positionally, in Python's order. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  training?: boolean,
  momentum?: number,
  eps?: number,
): Tensor;
export function batchNorm(input: Tensor, ...args: unknown[]): Tensor {
  const opts = parseArgs<BatchNormOptions>('batchNorm()', args, BATCH_NORM_ARGS, { required: ['runningMean', 'runningVar'] });
  const { runningMean, runningVar } = opts;
  const training = opts.training ?? false;
  if (training) {
    const size = input.shape;
    const perChannel = size.length < 2 ? 1 : size[0] * size.slice(2).reduce((a, b) => a * b, 1);
    if (perChannel === 1) throw new Error(`Expected more than 1 value per channel when training, got input size [${size.join(', ')}]`);
  }
  const h = (t: Tensor | null | undefined, what: string) => (t == null ? null : handleOf(t, what));
  return wrap(
    native.call(
      op('aten::batch_norm'),
      handleOf(input, 'input'),
      h(opts.weight, 'weight'),
      h(opts.bias, 'bias'),
      h(runningMean, 'runningMean'),
      h(runningVar, 'runningVar'),
      training,
      opts.momentum ?? 0.1,
      opts.eps ?? 1e-5,
      backends.cudnn.isAvailable(),
    ),
  );
}

/** The options of {@link maxPool2d} and {@link maxPool2dWithIndices} (and of `nn.MaxPool2d`). */
export interface MaxPool2dOptions {
  /** Required, positionally or by name. */
  kernelSize?: Pair;
  /** Defaults to `kernelSize`. */
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

/** F.max_pool2d's arguments after `input`, in its order (`returnIndices`: use {@link maxPool2dWithIndices}). */
const MAX_POOL_ARGS = ['kernelSize', 'stride', 'padding', 'dilation', 'ceilMode'];

/**
 * 2-D max pooling (`F.max_pool2d`). The arguments after `input` go positionally, by name in an
 * options object, or both:
 *
 * ```ts
 * F.maxPool2d(x, 3, 2, 1);                    // F.max_pool2d(x, 3, 2, 1)
 * F.maxPool2d(x, 2, { stride: 2 });           // F.max_pool2d(x, 2, stride=2)
 * F.maxPool2d(x, { kernelSize: 2, ceilMode: true }); // F.max_pool2d(x, kernel_size=2, ceil_mode=True)
 * ```
 */
export function maxPool2d(input: Tensor, options: MaxPool2dOptions & { kernelSize: Pair }): Tensor;
/** {@link maxPool2d} with the leading arguments positionally, the rest by name. */
export function maxPool2d(input: Tensor, kernelSize: Pair, options?: Omit<MaxPool2dOptions, 'kernelSize'>): Tensor;
/** {@link maxPool2d} with the leading arguments positionally, the rest by name. */
export function maxPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  options?: Pick<MaxPool2dOptions, 'padding' | 'dilation' | 'ceilMode'>,
): Tensor;
/** {@link maxPool2d} with the leading arguments positionally, the rest by name. */
export function maxPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  options?: Pick<MaxPool2dOptions, 'dilation' | 'ceilMode'>,
): Tensor;
/** {@link maxPool2d} with the leading arguments positionally, the rest by name. */
export function maxPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  dilation: Pair | undefined,
  options?: Pick<MaxPool2dOptions, 'ceilMode'>,
): Tensor;
/** {@link maxPool2d} with its arguments positionally, in Python's order. */
export function maxPool2d(input: Tensor, kernelSize: Pair, stride?: Pair | null, padding?: Pair, dilation?: Pair, ceilMode?: boolean): Tensor;
export function maxPool2d(input: Tensor, ...args: unknown[]): Tensor {
  const a = poolArgs<MaxPool2dOptions>('maxPool2d()', args, MAX_POOL_ARGS);
  return wrap(
    native.call(op('aten::max_pool2d'), handleOf(input, 'input'), a.kernelSize, a.stride ?? [], a.padding ?? 0, a.dilation ?? 1, a.ceilMode ?? false),
  );
}

/**
 * Max pooling that also returns the flat index (within each H×W plane) of each maximum:
 * `[output, indices]`, as `F.max_pool2d(..., return_indices=True)` and `F.max_pool2d_with_indices`.
 * Takes the arguments of {@link maxPool2d}, in the same forms:
 *
 * ```ts
 * const [y, i] = F.maxPool2dWithIndices(x, 2);                  // F.max_pool2d(x, 2, return_indices=True)
 * const [y, i] = F.maxPool2dWithIndices(x, 3, { stride: 2 });   // F.max_pool2d(x, 3, stride=2, return_indices=True)
 * ```
 */
export function maxPool2dWithIndices(input: Tensor, options: MaxPool2dOptions & { kernelSize: Pair }): [Tensor, Tensor];
/** {@link maxPool2dWithIndices} with the leading arguments positionally, the rest by name. */
export function maxPool2dWithIndices(input: Tensor, kernelSize: Pair, options?: Omit<MaxPool2dOptions, 'kernelSize'>): [Tensor, Tensor];
/** {@link maxPool2dWithIndices} with the leading arguments positionally, the rest by name. */
export function maxPool2dWithIndices(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  options?: Pick<MaxPool2dOptions, 'padding' | 'dilation' | 'ceilMode'>,
): [Tensor, Tensor];
/** {@link maxPool2dWithIndices} with the leading arguments positionally, the rest by name. */
export function maxPool2dWithIndices(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  options?: Pick<MaxPool2dOptions, 'dilation' | 'ceilMode'>,
): [Tensor, Tensor];
/** {@link maxPool2dWithIndices} with the leading arguments positionally, the rest by name. */
export function maxPool2dWithIndices(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  dilation: Pair | undefined,
  options?: Pick<MaxPool2dOptions, 'ceilMode'>,
): [Tensor, Tensor];
/** {@link maxPool2dWithIndices} with its arguments positionally, in Python's order. */
export function maxPool2dWithIndices(
  input: Tensor,
  kernelSize: Pair,
  stride?: Pair | null,
  padding?: Pair,
  dilation?: Pair,
  ceilMode?: boolean,
): [Tensor, Tensor];
export function maxPool2dWithIndices(input: Tensor, ...args: unknown[]): [Tensor, Tensor] {
  const a = poolArgs<MaxPool2dOptions>('maxPool2dWithIndices()', args, MAX_POOL_ARGS);
  const [out, idx] = native.call(
    op('aten::max_pool2d_with_indices'),
    handleOf(input, 'input'),
    a.kernelSize,
    a.stride ?? [],
    a.padding ?? 0,
    a.dilation ?? 1,
    a.ceilMode ?? false,
  );
  return [wrap(out), wrap(idx)];
}

/** A pooling function's arguments after `input`, parsed and checked. */
function poolArgs<T extends { kernelSize?: Pair; stride?: Pair | null; padding?: Pair }>(
  fn: string,
  args: readonly unknown[],
  names: readonly string[],
): T & { kernelSize: Pair } {
  const a = parseArgs<T & { kernelSize: Pair }>(fn, args, names, { required: ['kernelSize'] });
  checkPoolArgs(fn, a.kernelSize, a);
  return a;
}

/** The options of {@link avgPool2d} (and of `nn.AvgPool2d`). */
export interface AvgPool2dOptions {
  /** Required, positionally or by name. */
  kernelSize?: Pair;
  /** Defaults to `kernelSize`. */
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  divisorOverride?: number | null;
}

/** F.avg_pool2d's arguments after `input`, in its order. */
const AVG_POOL_ARGS = ['kernelSize', 'stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride'];

/**
 * 2-D average pooling (`F.avg_pool2d`). The arguments after `input` go positionally, by name in
 * an options object, or both:
 *
 * ```ts
 * F.avgPool2d(x, 3, 1, 1);                            // F.avg_pool2d(x, 3, 1, 1)
 * F.avgPool2d(x, 3, { padding: 1, countIncludePad: false }); // F.avg_pool2d(x, 3, padding=1, count_include_pad=False)
 * F.avgPool2d(x, { kernelSize: 2 });                  // F.avg_pool2d(x, kernel_size=2)
 * ```
 */
export function avgPool2d(input: Tensor, options: AvgPool2dOptions & { kernelSize: Pair }): Tensor;
/** {@link avgPool2d} with the leading arguments positionally, the rest by name. */
export function avgPool2d(input: Tensor, kernelSize: Pair, options?: Omit<AvgPool2dOptions, 'kernelSize'>): Tensor;
/** {@link avgPool2d} with the leading arguments positionally, the rest by name. */
export function avgPool2d(input: Tensor, kernelSize: Pair, stride: Pair | null | undefined, options?: Omit<AvgPool2dOptions, 'kernelSize' | 'stride'>): Tensor;
/** {@link avgPool2d} with the leading arguments positionally, the rest by name. */
export function avgPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  options?: Pick<AvgPool2dOptions, 'ceilMode' | 'countIncludePad' | 'divisorOverride'>,
): Tensor;
/** {@link avgPool2d} with the leading arguments positionally, the rest by name. */
export function avgPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  ceilMode: boolean | undefined,
  options?: Pick<AvgPool2dOptions, 'countIncludePad' | 'divisorOverride'>,
): Tensor;
/** {@link avgPool2d} with the leading arguments positionally, the rest by name. */
export function avgPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair | undefined,
  ceilMode: boolean | undefined,
  countIncludePad: boolean | undefined,
  options?: Pick<AvgPool2dOptions, 'divisorOverride'>,
): Tensor;
/** {@link avgPool2d} with its arguments positionally, in Python's order. */
export function avgPool2d(
  input: Tensor,
  kernelSize: Pair,
  stride?: Pair | null,
  padding?: Pair,
  ceilMode?: boolean,
  countIncludePad?: boolean,
  divisorOverride?: number | null,
): Tensor;
export function avgPool2d(input: Tensor, ...args: unknown[]): Tensor {
  const a = poolArgs<AvgPool2dOptions>('avgPool2d()', args, AVG_POOL_ARGS);
  return wrap(
    native.call(
      op('aten::avg_pool2d'),
      handleOf(input, 'input'),
      a.kernelSize,
      a.stride ?? [],
      a.padding ?? 0,
      a.ceilMode ?? false,
      a.countIncludePad ?? true,
      a.divisorOverride ?? null,
    ),
  );
}

/** An adaptive pool's output size: a null entry keeps the input's size there. */
export type AdaptiveSize = number | [number | null, number | null];

/**
 * Adaptive average pooling to `outputSize` (`F.adaptive_avg_pool2d`); a null entry keeps the
 * input's size there. `outputSize` may also be given by name: `F.adaptiveAvgPool2d(x, { outputSize: 7 })`.
 */
export function adaptiveAvgPool2d(input: Tensor, outputSize: AdaptiveSize): Tensor;
/** {@link adaptiveAvgPool2d} with `outputSize` by name. */
export function adaptiveAvgPool2d(input: Tensor, options: { outputSize: AdaptiveSize }): Tensor;
export function adaptiveAvgPool2d(input: Tensor, ...args: unknown[]): Tensor {
  const { outputSize } = parseArgs<{ outputSize: AdaptiveSize }>('adaptiveAvgPool2d()', args, ['outputSize'], { required: ['outputSize'] });
  const h = handleOf(input, 'input');
  checkAdaptiveSize('adaptiveAvgPool2d()', outputSize);
  const size = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  const shape = input.shape;
  const resolved = size.map((s, i) => (s === null ? shape[shape.length - 2 + i] : s));
  return wrap(native.call(op('aten::adaptive_avg_pool2d'), h, resolved));
}

/** The options of {@link linear}. */
export interface LinearOptions {
  bias?: Tensor | null;
}

/**
 * `input @ weight.T + bias` (`F.linear`); `bias` positionally or by name:
 * `F.linear(x, w, b)` or `F.linear(x, w, { bias: b })`.
 */
export function linear(input: Tensor, weight: Tensor, options?: LinearOptions): Tensor;
/** {@link linear} with its arguments positionally, in Python's order. */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor;
export function linear(input: Tensor, weight: Tensor, ...args: unknown[]): Tensor {
  const bias = parseArgs<LinearOptions>('linear()', args, ['bias']).bias ?? null;
  return wrap(native.call(op('aten::linear'), handleOf(input, 'input'), handleOf(weight, 'weight'), bias === null ? null : handleOf(bias, 'bias')));
}

/** The options of {@link relu} (and of `nn.ReLU`). */
export interface ReluOptions {
  /** Overwrite the input (default false). */
  inplace?: boolean;
}

/** `max(0, x)` (`F.relu`); `inplace` positionally or by name: `F.relu(x, true)` or `F.relu(x, { inplace: true })`. */
export function relu(input: Tensor, options?: ReluOptions): Tensor;
/** {@link relu} with its arguments positionally, in Python's order. */
export function relu(input: Tensor, inplace?: boolean): Tensor;
export function relu(input: Tensor, ...args: unknown[]): Tensor {
  const inplace = args.length === 0 ? false : parseArgs<ReluOptions>('relu()', args, ['inplace']).inplace;
  if (inplace) return relu_(input);
  return wrap(native.call(op('aten::relu'), handleOf(input, 'input')));
}
export function relu_(input: Tensor): Tensor {
  native.call(op('aten::relu_'), handleOf(input, 'input'));
  return input;
}

/** The options of {@link dropout}: its arguments after `input`, by name. */
export interface DropoutOptions {
  /** Probability of an element to be zeroed (default 0.5). */
  p?: number;
  /** Apply dropout (default true); when false the input is returned as is. */
  training?: boolean;
  /** Overwrite the input (default false). */
  inplace?: boolean;
}

/**
 * Zeroes elements with probability `p` and scales the rest by 1/(1-p), when `training`
 * (`F.dropout`). The arguments after `input` go positionally, by name, or both:
 *
 * ```ts
 * F.dropout(x, 0.2, model.training);            // F.dropout(x, 0.2, model.training)
 * F.dropout(x, { p: 0.2, training: false });    // F.dropout(x, p=0.2, training=False)
 * F.dropout(x, 0.2, { inplace: true });         // F.dropout(x, 0.2, inplace=True)
 * ```
 */
export function dropout(input: Tensor, options?: DropoutOptions): Tensor;
/** {@link dropout} with the leading arguments positionally, the rest by name. */
export function dropout(input: Tensor, p: number | undefined, options?: Omit<DropoutOptions, 'p'>): Tensor;
/** {@link dropout} with the leading arguments positionally, the rest by name. */
export function dropout(input: Tensor, p: number | undefined, training: boolean | undefined, options?: Pick<DropoutOptions, 'inplace'>): Tensor;
/** {@link dropout} with its arguments positionally, in Python's order. */
export function dropout(input: Tensor, p?: number, training?: boolean, inplace?: boolean): Tensor;
export function dropout(input: Tensor, ...args: unknown[]): Tensor {
  const a = parseArgs<DropoutOptions>('dropout()', args, ['p', 'training', 'inplace']);
  const [p, training, inplace] = [a.p ?? 0.5, a.training ?? true, a.inplace ?? false];
  checkDropout(p);
  const h = handleOf(input, 'input');
  if (inplace) {
    native.call(op('aten::dropout_'), h, p, training);
    return input;
  }
  return wrap(native.call(op('aten::dropout'), h, p, training));
}

/** PyTorch's check of a dropout probability, showing the value as given. */
export function checkDropout(p: unknown): void {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`dropout probability has to be between 0 and 1, but got ${describe(p)}`);
}

/** The options of {@link softmax} and {@link logSoftmax}. */
export interface SoftmaxOptions {
  /** Required, positionally or by name. */
  dim?: number;
  /** Cast the input to this dtype first. */
  dtype?: DType;
}

/**
 * Softmax along `dim` (`F.softmax`); `dim` positionally or by name, `dtype` by name:
 * `F.softmax(x, 1)`, `F.softmax(x, { dim: 1 })`, `F.softmax(x, 1, { dtype: 'float64' })`.
 */
export function softmax(input: Tensor, options: SoftmaxOptions & { dim: number }): Tensor;
/** {@link softmax} with the leading arguments positionally, the rest by name. */
export function softmax(input: Tensor, dim: number, options?: Pick<SoftmaxOptions, 'dtype'>): Tensor;
export function softmax(input: Tensor, ...args: unknown[]): Tensor {
  const { dim, dtype } = softmaxArgs('softmax()', input, args);
  return input.softmax(dim, dtype === undefined ? {} : { dtype });
}

/** Log-softmax along `dim` (`F.log_softmax`), in the forms of {@link softmax}. */
export function logSoftmax(input: Tensor, options: SoftmaxOptions & { dim: number }): Tensor;
/** {@link logSoftmax} with the leading arguments positionally, the rest by name. */
export function logSoftmax(input: Tensor, dim: number, options?: Pick<SoftmaxOptions, 'dtype'>): Tensor;
export function logSoftmax(input: Tensor, ...args: unknown[]): Tensor {
  const { dim, dtype } = softmaxArgs('logSoftmax()', input, args);
  return input.logSoftmax(dim, dtype === undefined ? {} : { dtype });
}

function softmaxArgs(fn: string, input: Tensor, args: readonly unknown[]): SoftmaxOptions & { dim: number } {
  handleOf(input, 'input');
  return parseArgs<SoftmaxOptions & { dim: number }>(fn, args, ['dim', 'dtype'], { keywordOnly: ['dtype'], required: ['dim'] });
}

/** The options of {@link nllLoss}; {@link crossEntropy} adds `labelSmoothing`. */
export interface LossOptions {
  /** A weight per class. */
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** The options of {@link crossEntropy} (and of `nn.CrossEntropyLoss`). */
export interface CrossEntropyOptions extends LossOptions {
  labelSmoothing?: number;
}

/**
 * Cross-entropy between logits `input` (N, C, …) and class indices or probabilities `target`
 * (`F.cross_entropy`). As in Python, `weight` may come positionally, the others by name only:
 *
 * ```ts
 * F.crossEntropy(x, t, { weight: w, reduction: 'sum' });  // F.cross_entropy(x, t, weight=w, reduction='sum')
 * F.crossEntropy(x, t, w, { labelSmoothing: 0.1 });       // F.cross_entropy(x, t, w, label_smoothing=0.1)
 * ```
 */
export function crossEntropy(input: Tensor, target: Tensor, options?: CrossEntropyOptions): Tensor;
/** {@link crossEntropy} with the leading arguments positionally, the rest by name. */
export function crossEntropy(input: Tensor, target: Tensor, weight: Tensor | null | undefined, options?: Omit<CrossEntropyOptions, 'weight'>): Tensor;
export function crossEntropy(input: Tensor, target: Tensor, ...args: unknown[]): Tensor {
  const opts = parseArgs<CrossEntropyOptions>('crossEntropy()', args, ['weight', 'ignoreIndex', 'reduction', 'labelSmoothing'], {
    keywordOnly: ['ignoreIndex', 'reduction', 'labelSmoothing'],
  });
  return wrap(
    native.call(
      op('aten::cross_entropy_loss'),
      handleOf(input, 'input'),
      handleOf(target, 'target'),
      opts.weight == null ? null : handleOf(opts.weight, 'weight'),
      reductionCode(opts.reduction ?? 'mean'),
      opts.ignoreIndex ?? -100,
      opts.labelSmoothing ?? 0,
    ),
  );
}

/**
 * Negative log-likelihood of log-probabilities `input` at class indices `target` (`F.nll_loss`).
 * As in Python, `weight` may come positionally, the others by name only:
 * `F.nllLoss(x, t, { weight: w, ignoreIndex: 0 })`, `F.nllLoss(x, t, w, { reduction: 'sum' })`.
 */
export function nllLoss(input: Tensor, target: Tensor, options?: LossOptions): Tensor;
/** {@link nllLoss} with the leading arguments positionally, the rest by name. */
export function nllLoss(input: Tensor, target: Tensor, weight: Tensor | null | undefined, options?: Omit<LossOptions, 'weight'>): Tensor;
export function nllLoss(input: Tensor, target: Tensor, ...args: unknown[]): Tensor {
  const opts = parseArgs<LossOptions>('nllLoss()', args, ['weight', 'ignoreIndex', 'reduction'], { keywordOnly: ['ignoreIndex', 'reduction'] });
  return wrap(
    native.call(
      op('aten::nll_loss_nd'),
      handleOf(input, 'input'),
      handleOf(target, 'target'),
      opts.weight == null ? null : handleOf(opts.weight, 'weight'),
      reductionCode(opts.reduction ?? 'mean'),
      opts.ignoreIndex ?? -100,
    ),
  );
}

let warnedMseBroadcast = false;
/**
 * Mean squared error (`F.mse_loss`); different shapes broadcast, with PyTorch's warning.
 * `reduction` is by name only, as in Python: `F.mseLoss(a, b, { reduction: 'sum' })`.
 */
export function mseLoss(input: Tensor, target: Tensor, options?: { reduction?: Reduction }): Tensor;
export function mseLoss(input: Tensor, target: Tensor, ...args: unknown[]): Tensor {
  const opts = parseArgs<{ reduction?: Reduction }>('mseLoss()', args, ['reduction'], { keywordOnly: ['reduction'] });
  const reduction = reductionCode(opts.reduction ?? 'mean');
  const a = handleOf(input, 'input');
  const b = handleOf(target, 'target');
  const si = input.shape.join(',');
  const st = target.shape.join(',');
  if (si === st) return wrap(native.call(op('aten::mse_loss'), a, b, reduction));
  if (!warnedMseBroadcast) {
    warnedMseBroadcast = true;
    process.emitWarning(
      `Using a target size ([${st}]) that is different to the input size ([${si}]). This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.`,
    );
  }
  const [x, y] = broadcastTensors(input, target);
  try {
    return wrap(native.call(op('aten::mse_loss'), x._h, y._h, reduction));
  } finally {
    x.dispose();
    y.dispose();
  }
}

/** The options of {@link interpolate}: its arguments after `input`, by name. */
export interface InterpolateOptions {
  /** The output (height, width); exactly one of `size` and `scaleFactor` is given (null: not given). */
  size?: number | [number, number] | null;
  scaleFactor?: number | [number, number] | null;
  mode?: 'nearest' | 'bilinear' | 'bicubic';
  /** Only for the interpolating modes; null: not given (false). */
  alignCorners?: boolean | null;
  recomputeScaleFactor?: boolean | null;
  /** Anti-aliasing when downsampling (bilinear/bicubic), as torchvision's Resize uses. */
  antialias?: boolean;
}

type InterpolateSize = InterpolateOptions['size'];
type InterpolateScale = InterpolateOptions['scaleFactor'];
type InterpolateMode = InterpolateOptions['mode'];
const INTERPOLATE_ARGS = ['size', 'scaleFactor', 'mode', 'alignCorners', 'recomputeScaleFactor', 'antialias'];

/**
 * Resizes a 4-D (N, C, H, W) tensor (`F.interpolate`). The arguments after `input` go
 * positionally, by name in an options object, or both:
 *
 * ```ts
 * F.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }); // F.interpolate(x, scale_factor=2, mode='bilinear')
 * F.interpolate(x, [8, 8], { mode: 'bicubic' });           // F.interpolate(x, (8, 8), mode='bicubic')
 * F.interpolate(x, null, 2, 'bilinear', true);             // F.interpolate(x, None, 2, 'bilinear', True)
 * ```
 */
export function interpolate(input: Tensor, options: InterpolateOptions): Tensor;
/** {@link interpolate} with the leading arguments positionally, the rest by name. */
export function interpolate(input: Tensor, size: InterpolateSize, options?: Omit<InterpolateOptions, 'size'>): Tensor;
/** {@link interpolate} with the leading arguments positionally, the rest by name. */
export function interpolate(
  input: Tensor,
  size: InterpolateSize,
  scaleFactor: InterpolateScale,
  options?: Omit<InterpolateOptions, 'size' | 'scaleFactor'>,
): Tensor;
/** {@link interpolate} with the leading arguments positionally, the rest by name. */
export function interpolate(
  input: Tensor,
  size: InterpolateSize,
  scaleFactor: InterpolateScale,
  mode: InterpolateMode,
  options?: Pick<InterpolateOptions, 'alignCorners' | 'recomputeScaleFactor' | 'antialias'>,
): Tensor;
/** {@link interpolate} with the leading arguments positionally, the rest by name. */
export function interpolate(
  input: Tensor,
  size: InterpolateSize,
  scaleFactor: InterpolateScale,
  mode: InterpolateMode,
  alignCorners: boolean | null | undefined,
  options?: Pick<InterpolateOptions, 'recomputeScaleFactor' | 'antialias'>,
): Tensor;
/** {@link interpolate} with the leading arguments positionally, the rest by name. */
export function interpolate(
  input: Tensor,
  size: InterpolateSize,
  scaleFactor: InterpolateScale,
  mode: InterpolateMode,
  alignCorners: boolean | null | undefined,
  recomputeScaleFactor: boolean | null | undefined,
  options?: Pick<InterpolateOptions, 'antialias'>,
): Tensor;
/** {@link interpolate} with its arguments positionally, in Python's order. */
export function interpolate(
  input: Tensor,
  size?: InterpolateSize,
  scaleFactor?: InterpolateScale,
  mode?: InterpolateMode,
  alignCorners?: boolean | null,
  recomputeScaleFactor?: boolean | null,
  antialias?: boolean,
): Tensor;
export function interpolate(input: Tensor, ...args: unknown[]): Tensor {
  const h = handleOf(input, 'input');
  const opts = parseArgs<InterpolateOptions>('interpolate()', args, INTERPOLATE_ARGS);
  // Python's None: not given.
  const size = opts.size ?? undefined;
  const scaleFactor = opts.scaleFactor ?? undefined;
  const alignCorners = opts.alignCorners ?? undefined;
  const mode = opts.mode ?? 'nearest';
  checkOneOf('interpolate()', 'mode', mode, ['nearest', 'bilinear', 'bicubic']);
  if (input.ndim !== 4) throw new RangeError(`interpolate(): expected a 4-D (N, C, H, W) input, got ${input.ndim}-D`);
  if (mode === 'nearest' && alignCorners !== undefined) {
    throw new TypeError('align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear');
  }
  if ((size === undefined) === (scaleFactor === undefined)) {
    throw new TypeError(
      size === undefined ? 'interpolate(): either size or scaleFactor should be defined' : 'interpolate(): only one of size or scaleFactor should be defined',
    );
  }
  if (size !== undefined) checkIntPair('interpolate()', 'size', size, 1);
  const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;
  if (scaleFactor !== undefined && !(finite(scaleFactor) || (Array.isArray(scaleFactor) && scaleFactor.length === 2 && scaleFactor.every(finite)))) {
    throw new RangeError(`interpolate(): scaleFactor must be a positive finite number or a pair of them, got ${describe(scaleFactor)}`);
  }
  if (opts.antialias && mode === 'nearest') throw new TypeError('Anti-alias option is only supported for bilinear and bicubic modes');
  let outputSize: number[] | null = size === undefined ? null : pair(size);
  let scales: number[] | null = scaleFactor === undefined ? null : pair(scaleFactor);
  if (opts.recomputeScaleFactor && scales) {
    const [hIn, wIn] = input.shape.slice(2);
    outputSize = [Math.floor(hIn * scales[0]), Math.floor(wIn * scales[1])];
    scales = null;
  }
  if (mode === 'nearest') return wrap(native.call(op('aten::upsample_nearest2d', 'vec'), h, outputSize, scales));
  const name =
    mode === 'bilinear'
      ? opts.antialias
        ? 'aten::_upsample_bilinear2d_aa'
        : 'aten::upsample_bilinear2d'
      : opts.antialias
        ? 'aten::_upsample_bicubic2d_aa'
        : 'aten::upsample_bicubic2d';
  return wrap(native.call(op(name, 'vec'), h, outputSize, alignCorners ?? false, scales));
}

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

/** The options of {@link pad}: its arguments after `padding`, by name. */
export interface PadOptions {
  /** Default `'constant'`. */
  mode?: PadMode;
  /** The fill of `'constant'` padding (default 0). */
  value?: number | null;
}

/**
 * Pads the last dimensions (`F.pad`): `padding` lists (left, right, top, bottom, …) as F.pad's
 * `pad`. `mode` and `value` go positionally, by name, or both:
 * `F.pad(x, [1, 1], 'reflect')`, `F.pad(x, [1, 1], { value: 0.5 })`, `F.pad(x, [1, 1], 'constant', { value: 0.5 })`.
 */
export function pad(input: Tensor, padding: number[], options?: PadOptions): Tensor;
/** {@link pad} with the leading arguments positionally, the rest by name. */
export function pad(input: Tensor, padding: number[], mode: PadMode | undefined, options?: Pick<PadOptions, 'value'>): Tensor;
/** {@link pad} with its arguments positionally, in Python's order. */
export function pad(input: Tensor, padding: number[], mode?: PadMode, value?: number | null): Tensor;
export function pad(input: Tensor, padding: number[], ...args: unknown[]): Tensor {
  const opts = parseArgs<PadOptions>('pad()', args, ['mode', 'value']);
  const mode = opts.mode ?? 'constant';
  if (!Array.isArray(padding) || !padding.every(Number.isInteger))
    throw new TypeError(`pad(): argument 'padding' must be an array of integers, got ${describe(padding)}`);
  checkOneOf('pad()', 'mode', mode, ['constant', 'reflect', 'replicate', 'circular']);
  if (padding.length % 2 !== 0) throw new RangeError(`Padding length must be divisible by 2, got ${padding.length}`);
  if (padding.length / 2 > input.ndim) throw new RangeError(`Padding length too large: ${padding.length} for a ${input.ndim}-D input`);
  return wrap(native.call(op('aten::pad'), handleOf(input, 'input'), padding, mode, opts.value ?? null));
}
