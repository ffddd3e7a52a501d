// The layers VGG needs, with PyTorch's arguments, defaults, initialisation and repr.
import * as F from './functional.js';
import type { AvgPool2dOptions, MaxPool2dOptions } from './functional.js';
import * as init from './init.js';
import { Module, Parameter } from './module.js';
import { type DType } from '../tensor/dtype.js';
import { empty, ones, tensor, zeros } from '../tensor/creation.js';
import { type Reduction, Tensor, reductionCode } from '../tensor/tensor.js';
import { pyFloat, pyValue } from '../utils/pyrepr.js';
import { checkBoolean, checkInt, checkIntPair, checkOneOf, checkOptions, describe } from '../utils/args.js';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** Options shared by layers that create parameters. */
export interface FactoryOptions {
  device?: string;
  dtype?: DType;
}

// PyTorch's reset_parameters of Conv2d and Linear: the same draws in the same order.
// (fanIn is never 0 here: channel and feature counts are checked to be positive.)
function resetWeightAndBias(weight: Tensor, bias: Tensor | null): void {
  init.kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = init.calculateFanInAndFanOut(weight);
    const bound = 1 / Math.sqrt(fanIn);
    init.uniform_(bias, -bound, bound);
  }
}

const checkPositiveInt = (v: unknown, what: string, layer: string): void => checkInt(layer, what, v, 1);
const FACTORY = ['device', 'dtype'];

/** Spatial output size of a convolution or pooling window (PyTorch's formula, ceil mode included). */
function windowOut(size: number, kernel: number, stride: number, padding: number, dilation: number, ceil: boolean): number {
  const span = size + 2 * padding - dilation * (kernel - 1) - 1;
  let out = Math.floor((ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1);
  if (ceil && (out - 1) * stride >= size + padding) out--;
  return out;
}

function expectSpatial(layer: string, shape: number[]): void {
  if (shape.length !== 3 && shape.length !== 4) {
    throw new RangeError(`${layer}: expected a (C, H, W) or (N, C, H, W) input, got shape [${shape.join(', ')}]`);
  }
}

export interface Conv2dOptions extends FactoryOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  paddingMode?: 'zeros' | 'reflect' | 'replicate' | 'circular';
}

/** 2-D convolution (`nn.Conv2d`), initialised as PyTorch's `reset_parameters`. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  readonly paddingMode: 'zeros' | 'reflect' | 'replicate' | 'circular';
  weight: Parameter;
  bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super();
    checkOptions('Conv2d', opts, [...FACTORY, 'stride', 'padding', 'dilation', 'groups', 'bias', 'paddingMode']);
    checkPositiveInt(inChannels, 'inChannels', 'Conv2d');
    checkPositiveInt(outChannels, 'outChannels', 'Conv2d');
    checkIntPair('Conv2d', 'kernelSize', kernelSize, 1);
    F.checkConvArgs('Conv2d', opts.stride ?? 1, opts.padding ?? 0, opts.dilation ?? 1, opts.groups ?? 1);
    checkOneOf('Conv2d', 'paddingMode', opts.paddingMode ?? 'zeros', ['zeros', 'reflect', 'replicate', 'circular']);
    checkBoolean('Conv2d', 'bias', opts.bias);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.padding = typeof opts.padding === 'string' ? opts.padding : pair(opts.padding ?? 0);
    this.dilation = pair(opts.dilation ?? 1);
    this.groups = opts.groups ?? 1;
    this.paddingMode = opts.paddingMode ?? 'zeros';
    if (inChannels % this.groups !== 0) throw new RangeError(`Conv2d: inChannels (${inChannels}) must be divisible by groups (${this.groups})`);
    if (outChannels % this.groups !== 0) throw new RangeError(`Conv2d: outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    if (this.padding === 'same' && this.stride.some((s) => s !== 1)) {
      throw new RangeError("Conv2d: padding='same' is not supported for strided convolutions");
    }
    const factory = { dtype: opts.dtype, device: opts.device };
    this.weight = new Parameter(empty([outChannels, inChannels / this.groups, ...this.kernelSize], factory));
    this.bias = (opts.bias ?? true) ? new Parameter(empty([outChannels], factory)) : null;
    this.resetParameters();
  }

  /** kaiming-uniform with a = √5 for the weight, U(-1/√fanIn, 1/√fanIn) for the bias. */
  resetParameters(): void {
    resetWeightAndBias(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    if (this.paddingMode !== 'zeros' && typeof this.padding !== 'string') {
      const [ph, pw] = this.padding;
      const padded = F.pad(x, [pw, pw, ph, ph], this.paddingMode);
      try {
        return F.conv2d(padded, this.weight, this.bias, this.stride, 0, this.dilation, this.groups);
      } finally {
        padded.dispose();
      }
    }
    return F.conv2d(x, this.weight, this.bias, this.stride, this.padding, this.dilation, this.groups);
  }

  outputShape(shape: number[]): number[] {
    expectSpatial('Conv2d', shape);
    const [h, w] = shape.slice(-2);
    const pad = this.padding === 'valid' ? [0, 0] : this.padding;
    const out = pad === 'same' ? [h, w]
      : [0, 1].map((i) => windowOut([h, w][i], this.kernelSize[i], this.stride[i], pad[i], this.dilation[i], false));
    return [...shape.slice(0, -3), this.outChannels, ...out];
  }

  extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyValue(this.kernelSize)}, stride=${pyValue(this.stride)}`;
    if (typeof this.padding === 'string' || this.padding.some((p) => p !== 0)) s += `, padding=${pyValue(this.padding)}`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=${pyValue(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ', bias=False';
    if (this.paddingMode !== 'zeros') s += `, padding_mode=${this.paddingMode}`;
    return s;
  }
}

export interface BatchNorm2dOptions extends FactoryOptions {
  eps?: number;
  /** null: a cumulative moving average instead of an exponential one. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Batch normalisation over (N, C, H, W) (`nn.BatchNorm2d`). */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  weight: Parameter | null;
  bias: Parameter | null;
  declare runningMean: Tensor | null;
  declare runningVar: Tensor | null;
  declare numBatchesTracked: Tensor | null;

  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    checkOptions('BatchNorm2d', opts, [...FACTORY, 'eps', 'momentum', 'affine', 'trackRunningStats']);
    checkPositiveInt(numFeatures, 'numFeatures', 'BatchNorm2d');
    if (opts.eps !== undefined && !(typeof opts.eps === 'number' && opts.eps > 0 && Number.isFinite(opts.eps))) {
      throw new RangeError(`BatchNorm2d: eps must be a positive number, got ${describe(opts.eps)}`);
    }
    if (opts.momentum != null && !(typeof opts.momentum === 'number' && opts.momentum >= 0 && opts.momentum <= 1)) {
      throw new RangeError(`BatchNorm2d: momentum must be a number in [0, 1] or null, got ${describe(opts.momentum)}`);
    }
    checkBoolean('BatchNorm2d', 'affine', opts.affine);
    checkBoolean('BatchNorm2d', 'trackRunningStats', opts.trackRunningStats);
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    const factory = { dtype: opts.dtype, device: opts.device };
    this.weight = this.affine ? new Parameter(ones([numFeatures], factory)) : null;
    this.bias = this.affine ? new Parameter(zeros([numFeatures], factory)) : null;
    if (this.trackRunningStats) {
      this.registerBuffer('runningMean', zeros([numFeatures], factory));
      this.registerBuffer('runningVar', ones([numFeatures], factory));
      this.registerBuffer('numBatchesTracked', tensor(0, { dtype: 'int64', device: opts.device }));
    } else {
      this.registerBuffer('runningMean', null);
      this.registerBuffer('runningVar', null);
      this.registerBuffer('numBatchesTracked', null);
    }
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new RangeError(`expected 4D input (got ${x.ndim}D input)`);
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.numBatchesTracked) {
      this.numBatchesTracked.add_(1);
      if (this.momentum === null) factor = 1 / (this.numBatchesTracked.item() as number);
    }
    const useBatchStats = this.training || (this.runningMean === null && this.runningVar === null);
    const track = !this.training || this.trackRunningStats;
    return F.batchNorm(x, track ? this.runningMean : null, track ? this.runningVar : null, {
      weight: this.weight, bias: this.bias, training: useBatchStats, momentum: factor, eps: this.eps,
    });
  }

  extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${this.momentum === null ? 'None' : pyFloat(this.momentum)}, ` +
      `affine=${pyValue(this.affine)}, track_running_stats=${pyValue(this.trackRunningStats)}`;
  }
}

/** 2-D max pooling (`nn.MaxPool2d`). */
export class MaxPool2d extends Module {
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly ceilMode: boolean;

  constructor(kernelSize: Pair, opts: MaxPool2dOptions = {}) {
    super();
    checkOptions('MaxPool2d', opts, ['stride', 'padding', 'dilation', 'ceilMode']);
    F.checkPoolArgs('MaxPool2d', kernelSize, opts);
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.ceilMode = opts.ceilMode ?? false;
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode });
  }
  outputShape(shape: number[]): number[] {
    expectSpatial('MaxPool2d', shape);
    const [k, s, p, d] = [this.kernelSize, this.stride, this.padding, this.dilation].map(pair);
    const [h, w] = shape.slice(-2);
    return [...shape.slice(0, -2), windowOut(h, k[0], s[0], p[0], d[0], this.ceilMode), windowOut(w, k[1], s[1], p[1], d[1], this.ceilMode)];
  }
  extraRepr(): string {
    return `kernel_size=${pyValue(this.kernelSize)}, stride=${pyValue(this.stride)}, padding=${pyValue(this.padding)}, ` +
      `dilation=${pyValue(this.dilation)}, ceil_mode=${pyValue(this.ceilMode)}`;
  }
}

/** 2-D average pooling (`nn.AvgPool2d`). */
export class AvgPool2d extends Module {
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;

  constructor(kernelSize: Pair, opts: AvgPool2dOptions = {}) {
    super();
    checkOptions('AvgPool2d', opts, ['stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride']);
    F.checkPoolArgs('AvgPool2d', kernelSize, opts);
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.ceilMode = opts.ceilMode ?? false;
    this.countIncludePad = opts.countIncludePad ?? true;
    this.divisorOverride = opts.divisorOverride ?? null;
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernelSize, {
      stride: this.stride, padding: this.padding, ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad, divisorOverride: this.divisorOverride,
    });
  }
  outputShape(shape: number[]): number[] {
    expectSpatial('AvgPool2d', shape);
    const [k, s, p] = [this.kernelSize, this.stride, this.padding].map(pair);
    const [h, w] = shape.slice(-2);
    return [...shape.slice(0, -2), windowOut(h, k[0], s[0], p[0], 1, this.ceilMode), windowOut(w, k[1], s[1], p[1], 1, this.ceilMode)];
  }
  extraRepr(): string {
    return `kernel_size=${pyValue(this.kernelSize)}, stride=${pyValue(this.stride)}, padding=${pyValue(this.padding)}`;
  }
}

/** Average pooling to a fixed output size (`nn.AdaptiveAvgPool2d`); a null entry keeps that input size. */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: number | [number | null, number | null];
  constructor(outputSize: number | [number | null, number | null]) {
    super();
    F.checkAdaptiveSize('AdaptiveAvgPool2d', outputSize);
    this.outputSize = outputSize;
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
  outputShape(shape: number[]): number[] {
    expectSpatial('AdaptiveAvgPool2d', shape);
    const size = typeof this.outputSize === 'number' ? [this.outputSize, this.outputSize] : this.outputSize;
    const hw = shape.slice(-2);
    return [...shape.slice(0, -2), ...size.map((s, i) => s ?? hw[i])];
  }
  extraRepr(): string {
    return `output_size=${pyValue(this.outputSize)}`;
  }
}

/** `y = x Wᵀ + b` (`nn.Linear`), initialised as PyTorch's `reset_parameters`. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, opts: FactoryOptions & { bias?: boolean } = {}) {
    super();
    checkOptions('Linear', opts, [...FACTORY, 'bias']);
    checkPositiveInt(inFeatures, 'inFeatures', 'Linear');
    checkPositiveInt(outFeatures, 'outFeatures', 'Linear');
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const factory = { dtype: opts.dtype, device: opts.device };
    this.weight = new Parameter(empty([outFeatures, inFeatures], factory));
    this.bias = (opts.bias ?? true) ? new Parameter(empty([outFeatures], factory)) : null;
    this.resetParameters();
  }
  /** kaiming-uniform with a = √5 for the weight, U(-1/√fanIn, 1/√fanIn) for the bias. */
  resetParameters(): void {
    resetWeightAndBias(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
  outputShape(shape: number[]): number[] {
    if (shape[shape.length - 1] !== this.inFeatures) {
      throw new RangeError(`Linear: expected ${this.inFeatures} input features, got shape [${shape.join(', ')}]`);
    }
    return [...shape.slice(0, -1), this.outFeatures];
  }
  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${pyValue(this.bias !== null)}`;
  }
}

/** `max(0, x)` (`nn.ReLU`); `inplace` overwrites the input. */
export class ReLU extends Module {
  constructor(readonly inplace = false) {
    super();
    checkBoolean('ReLU', 'inplace', inplace);
  }
  forward(x: Tensor): Tensor {
    return F.relu(x, this.inplace);
  }
  extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}

/** Zeroes elements with probability `p` in training (`nn.Dropout`). */
export class Dropout extends Module {
  readonly p: number;
  readonly inplace: boolean;
  constructor(p = 0.5, inplace = false) {
    super();
    F.checkDropout(p);
    checkBoolean('Dropout', 'inplace', inplace);
    this.p = p;
    this.inplace = inplace;
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training, this.inplace);
  }
  extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=${pyValue(this.inplace)}`;
  }
}

/** Flattens dimensions `startDim`…`endDim` into one (`nn.Flatten`). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
    checkInt('Flatten', 'startDim', startDim);
    checkInt('Flatten', 'endDim', endDim);
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
  outputShape(shape: number[]): number[] {
    const n = shape.length;
    const s = this.startDim < 0 ? this.startDim + n : this.startDim;
    const e = this.endDim < 0 ? this.endDim + n : this.endDim;
    return [...shape.slice(0, s), shape.slice(s, e + 1).reduce((a, b) => a * b, 1), ...shape.slice(e + 1)];
  }
  extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** Returns its input (`nn.Identity`): a placeholder, e.g. for a removed avgpool. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Cross-entropy between logits and class indices or probabilities (`nn.CrossEntropyLoss`). */
export class CrossEntropyLoss extends Module<[Tensor, Tensor], Tensor> {
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly labelSmoothing: number;
  declare weight: Tensor | null;

  constructor(opts: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {}) {
    super();
    checkOptions('CrossEntropyLoss', opts, ['weight', 'ignoreIndex', 'reduction', 'labelSmoothing']);
    if (opts.reduction !== undefined) reductionCode(opts.reduction);
    if (opts.ignoreIndex !== undefined) checkInt('CrossEntropyLoss', 'ignoreIndex', opts.ignoreIndex);
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.reduction = opts.reduction ?? 'mean';
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, {
      weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction, labelSmoothing: this.labelSmoothing,
    });
  }
}
