// torch.nn.functional: the kernels VGG training and inference need, each one
// libtorch operator with PyTorch's argument names, defaults and checks.
import { native, op } from '../native.js';
import { backends } from '../runtime.js';
import { type Reduction, Tensor, broadcastTensors, handleOf, reductionCode, wrap } from '../tensor/tensor.js';
import { checkInt, checkIntPair, checkOneOf, checkOptions, describe } from '../utils/args.js';

type Pair = number | [number, number];

/** 2-D convolution; `padding` may be a number, a pair, or `'same'`/`'valid'`. */
export function conv2d(
  input: Tensor, weight: Tensor, bias: Tensor | null = null,
  stride: Pair = 1, padding: Pair | 'same' | 'valid' = 0, dilation: Pair = 1, groups = 1,
): Tensor {
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

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Use batch statistics and update the running ones (default false, as in F.batch_norm). */
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation. In training, batch statistics normalise the input and
 * `runningMean`/`runningVar` are updated in place with `momentum`.
 */
export function batchNorm(input: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  checkOptions('batchNorm()', opts, ['weight', 'bias', 'training', 'momentum', 'eps']);
  const training = opts.training ?? false;
  if (training) {
    const size = input.shape;
    const perChannel = size.length < 2 ? 1 : size[0] * size.slice(2).reduce((a, b) => a * b, 1);
    if (perChannel === 1) throw new Error(`Expected more than 1 value per channel when training, got input size [${size.join(', ')}]`);
  }
  const h = (t: Tensor | null | undefined, what: string) => (t == null ? null : handleOf(t, what));
  return wrap(native.call(
    op('aten::batch_norm'), handleOf(input, 'input'), h(opts.weight, 'weight'), h(opts.bias, 'bias'),
    h(runningMean, 'runningMean'), h(runningVar, 'runningVar'), training, opts.momentum ?? 0.1, opts.eps ?? 1e-5,
    backends.cudnn.isAvailable(),
  ));
}

export interface MaxPool2dOptions {
  /** Defaults to `kernelSize`. */
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

const MAX_POOL_OPTIONS = ['stride', 'padding', 'dilation', 'ceilMode'];

export function maxPool2d(input: Tensor, kernelSize: Pair, opts: MaxPool2dOptions = {}): Tensor {
  checkOptions('maxPool2d()', opts, MAX_POOL_OPTIONS);
  checkPoolArgs('maxPool2d()', kernelSize, opts);
  return wrap(native.call(op('aten::max_pool2d'), handleOf(input, 'input'), kernelSize, opts.stride ?? [], opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode ?? false));
}

/** Max pooling that also returns the flat index of each maximum: `[output, indices]`. */
export function maxPool2dWithIndices(input: Tensor, kernelSize: Pair, opts: MaxPool2dOptions = {}): [Tensor, Tensor] {
  checkOptions('maxPool2dWithIndices()', opts, MAX_POOL_OPTIONS);
  checkPoolArgs('maxPool2dWithIndices()', kernelSize, opts);
  const [out, idx] = native.call(op('aten::max_pool2d_with_indices'), handleOf(input, 'input'), kernelSize, opts.stride ?? [], opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode ?? false);
  return [wrap(out), wrap(idx)];
}

export interface AvgPool2dOptions {
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  divisorOverride?: number | null;
}

export function avgPool2d(input: Tensor, kernelSize: Pair, opts: AvgPool2dOptions = {}): Tensor {
  checkOptions('avgPool2d()', opts, ['stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride']);
  checkPoolArgs('avgPool2d()', kernelSize, opts);
  return wrap(native.call(
    op('aten::avg_pool2d'), handleOf(input, 'input'), kernelSize, opts.stride ?? [], opts.padding ?? 0,
    opts.ceilMode ?? false, opts.countIncludePad ?? true, opts.divisorOverride ?? null,
  ));
}

/** Adaptive average pooling to `outputSize`; a null entry keeps the input's size there. */
export function adaptiveAvgPool2d(input: Tensor, outputSize: number | [number | null, number | null]): Tensor {
  const h = handleOf(input, 'input');
  checkAdaptiveSize('adaptiveAvgPool2d()', outputSize);
  const size = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  const shape = input.shape;
  const resolved = size.map((s, i) => (s === null ? shape[shape.length - 2 + i] : s));
  return wrap(native.call(op('aten::adaptive_avg_pool2d'), h, resolved));
}

/** `input @ weight.T + bias` */
export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return wrap(native.call(op('aten::linear'), handleOf(input, 'input'), handleOf(weight, 'weight'), bias === null ? null : handleOf(bias, 'bias')));
}

export function relu(input: Tensor, inplace = false): Tensor {
  if (inplace) return relu_(input);
  return wrap(native.call(op('aten::relu'), handleOf(input, 'input')));
}
export function relu_(input: Tensor): Tensor {
  native.call(op('aten::relu_'), handleOf(input, 'input'));
  return input;
}

/** Zeroes elements with probability `p` and scales the rest by 1/(1-p), when `training`. */
export function dropout(input: Tensor, p = 0.5, training = true, inplace = false): Tensor {
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

export function softmax(input: Tensor, dim: number): Tensor {
  handleOf(input, 'input');
  return input.softmax(dim);
}
export function logSoftmax(input: Tensor, dim: number): Tensor {
  handleOf(input, 'input');
  return input.logSoftmax(dim);
}

export interface LossOptions {
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Cross-entropy between logits `input` (N, C, …) and class indices or probabilities `target`. */
export function crossEntropy(input: Tensor, target: Tensor, opts: LossOptions & { labelSmoothing?: number } = {}): Tensor {
  checkOptions('crossEntropy()', opts, ['weight', 'ignoreIndex', 'reduction', 'labelSmoothing']);
  return wrap(native.call(
    op('aten::cross_entropy_loss'), handleOf(input, 'input'), handleOf(target, 'target'),
    opts.weight == null ? null : handleOf(opts.weight, 'weight'), reductionCode(opts.reduction ?? 'mean'),
    opts.ignoreIndex ?? -100, opts.labelSmoothing ?? 0,
  ));
}

/** Negative log-likelihood of log-probabilities `input` at class indices `target`. */
export function nllLoss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkOptions('nllLoss()', opts, ['weight', 'ignoreIndex', 'reduction']);
  return wrap(native.call(
    op('aten::nll_loss_nd'), handleOf(input, 'input'), handleOf(target, 'target'),
    opts.weight == null ? null : handleOf(opts.weight, 'weight'), reductionCode(opts.reduction ?? 'mean'), opts.ignoreIndex ?? -100,
  ));
}

let warnedMseBroadcast = false;
/** Mean squared error; different shapes broadcast, with PyTorch's warning. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  checkOptions('mseLoss()', opts, ['reduction']);
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

export interface InterpolateOptions {
  size?: number | [number, number];
  scaleFactor?: number | [number, number];
  mode?: 'nearest' | 'bilinear' | 'bicubic';
  alignCorners?: boolean;
  recomputeScaleFactor?: boolean;
  /** Anti-aliasing when downsampling (bilinear/bicubic), as torchvision's Resize uses. */
  antialias?: boolean;
}

/** Resizes a 4-D (N, C, H, W) tensor, as `F.interpolate`. */
export function interpolate(input: Tensor, opts: InterpolateOptions): Tensor {
  const h = handleOf(input, 'input');
  if (opts === undefined || opts === null) throw new TypeError(`interpolate(): argument 'options' must be an object with size or scaleFactor, got ${describe(opts)}`);
  checkOptions('interpolate()', opts, ['size', 'scaleFactor', 'mode', 'alignCorners', 'recomputeScaleFactor', 'antialias']);
  const mode = opts.mode ?? 'nearest';
  checkOneOf('interpolate()', 'mode', mode, ['nearest', 'bilinear', 'bicubic']);
  if (input.ndim !== 4) throw new RangeError(`interpolate(): expected a 4-D (N, C, H, W) input, got ${input.ndim}-D`);
  if (mode === 'nearest' && opts.alignCorners !== undefined) {
    throw new TypeError('align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear');
  }
  if ((opts.size === undefined) === (opts.scaleFactor === undefined)) {
    throw new TypeError(opts.size === undefined ? 'interpolate(): either size or scaleFactor should be defined' : 'interpolate(): only one of size or scaleFactor should be defined');
  }
  if (opts.size !== undefined) checkIntPair('interpolate()', 'size', opts.size, 1);
  const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;
  if (opts.scaleFactor !== undefined && !(finite(opts.scaleFactor) || (Array.isArray(opts.scaleFactor) && opts.scaleFactor.length === 2 && opts.scaleFactor.every(finite)))) {
    throw new RangeError(`interpolate(): scaleFactor must be a positive finite number or a pair of them, got ${describe(opts.scaleFactor)}`);
  }
  if (opts.antialias && mode === 'nearest') throw new TypeError('Anti-alias option is only supported for bilinear and bicubic modes');
  const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
  let outputSize: number[] | null = opts.size === undefined ? null : pair(opts.size);
  let scales: number[] | null = opts.scaleFactor === undefined ? null : pair(opts.scaleFactor);
  if (opts.recomputeScaleFactor && scales) {
    const [hIn, wIn] = input.shape.slice(2);
    outputSize = [Math.floor(hIn * scales[0]), Math.floor(wIn * scales[1])];
    scales = null;
  }
  if (mode === 'nearest') return wrap(native.call(op('aten::upsample_nearest2d', 'vec'), h, outputSize, scales));
  const alignCorners = opts.alignCorners ?? false;
  const name = mode === 'bilinear' ? (opts.antialias ? 'aten::_upsample_bilinear2d_aa' : 'aten::upsample_bilinear2d')
    : opts.antialias ? 'aten::_upsample_bicubic2d_aa' : 'aten::upsample_bicubic2d';
  return wrap(native.call(op(name, 'vec'), h, outputSize, alignCorners, scales));
}

/** Pads the last dimensions: `pad` lists (left, right, top, bottom, …) as in F.pad. */
export function pad(input: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value?: number): Tensor {
  if (!Array.isArray(padding) || !padding.every(Number.isInteger)) throw new TypeError(`pad(): argument 'padding' must be an array of integers, got ${describe(padding)}`);
  checkOneOf('pad()', 'mode', mode, ['constant', 'reflect', 'replicate', 'circular']);
  if (padding.length % 2 !== 0) throw new RangeError(`Padding length must be divisible by 2, got ${padding.length}`);
  if (padding.length / 2 > input.ndim) throw new RangeError(`Padding length too large: ${padding.length} for a ${input.ndim}-D input`);
  return wrap(native.call(op('aten::pad'), handleOf(input, 'input'), padding, mode, value ?? null));
}
