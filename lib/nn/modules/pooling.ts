// nn.MaxPool2d, nn.AvgPool2d and nn.AdaptiveAvgPool2d (torch/nn/modules/pooling.py).
import * as F from '../functional.js';
import type { AdaptiveSize, AvgPool2dOptions, MaxPool2dOptions } from '../functional.js';
import type { Tensor } from '../../tensor/tensor.js';
import { pyValue } from '../../utils/pyrepr.js';
import { parseArgs } from '../../utils/args.js';
import { Module } from './module.js';
import { type Pair, expectSpatial, pair, windowOut } from './utils.js';

/**
 * 2-D max pooling (`nn.MaxPool2d`), with `F.maxPool2d`'s options. `kernelSize`, `stride`,
 * `padding` and `dilation` go positionally or by name, `ceilMode` by name only (nn.MaxPool2d's
 * fifth argument is `return_indices`, which this layer does not have; see `F.maxPool2dWithIndices`):
 * `new nn.MaxPool2d(2)`, `new nn.MaxPool2d(3, 2, 1)`, `new nn.MaxPool2d(3, { stride: 2, ceilMode: true })`,
 * `new nn.MaxPool2d({ kernelSize: 2 })`.
 */
export class MaxPool2d extends Module {
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly ceilMode: boolean;

  constructor(options: MaxPool2dOptions & { kernelSize: Pair });
  constructor(kernelSize: Pair, options?: Omit<MaxPool2dOptions, 'kernelSize'>);
  constructor(kernelSize: Pair, stride?: Pair | null, padding?: Pair, dilation?: Pair, options?: Pick<MaxPool2dOptions, 'ceilMode'>);
  constructor(...args: unknown[]) {
    super();
    const opts = parseArgs<MaxPool2dOptions & { kernelSize: Pair }>('MaxPool2d', args, ['kernelSize', 'stride', 'padding', 'dilation', 'ceilMode'], {
      keywordOnly: ['ceilMode'],
      required: ['kernelSize'],
    });
    F.checkPoolArgs('MaxPool2d', opts.kernelSize, opts);
    this.kernelSize = opts.kernelSize;
    this.stride = opts.stride ?? opts.kernelSize;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.ceilMode = opts.ceilMode ?? false;
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernelSize, this.stride, this.padding, this.dilation, this.ceilMode);
  }
  outputShape(shape: number[]): number[] {
    expectSpatial('MaxPool2d', shape);
    const [k, s, p, d] = [this.kernelSize, this.stride, this.padding, this.dilation].map((v) => pair(v));
    const [h, w] = shape.slice(-2);
    return [...shape.slice(0, -2), windowOut(h, k[0], s[0], p[0], d[0], this.ceilMode), windowOut(w, k[1], s[1], p[1], d[1], this.ceilMode)];
  }
  extraRepr(): string {
    return (
      `kernel_size=${pyValue(this.kernelSize)}, stride=${pyValue(this.stride)}, padding=${pyValue(this.padding)}, ` +
      `dilation=${pyValue(this.dilation)}, ceil_mode=${pyValue(this.ceilMode)}`
    );
  }
}

/** nn.AvgPool2d's arguments, in its order (those of F.avg_pool2d after `input`). */
const AVG_POOL_2D_ARGS = ['kernelSize', 'stride', 'padding', 'ceilMode', 'countIncludePad', 'divisorOverride'];

/**
 * 2-D average pooling (`nn.AvgPool2d`), with `F.avgPool2d`'s options, positionally in
 * nn.AvgPool2d's order, by name, or both: `new nn.AvgPool2d(3, 1, 1)`,
 * `new nn.AvgPool2d(3, { padding: 1, countIncludePad: false })`, `new nn.AvgPool2d({ kernelSize: 2 })`.
 */
export class AvgPool2d extends Module {
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;

  constructor(options: AvgPool2dOptions & { kernelSize: Pair });
  constructor(kernelSize: Pair, options?: Omit<AvgPool2dOptions, 'kernelSize'>);
  constructor(kernelSize: Pair, stride?: Pair | null, padding?: Pair, ceilMode?: boolean, countIncludePad?: boolean, divisorOverride?: number | null);
  constructor(...args: unknown[]) {
    super();
    const opts = parseArgs<AvgPool2dOptions & { kernelSize: Pair }>('AvgPool2d', args, AVG_POOL_2D_ARGS, { required: ['kernelSize'] });
    F.checkPoolArgs('AvgPool2d', opts.kernelSize, opts);
    this.kernelSize = opts.kernelSize;
    this.stride = opts.stride ?? opts.kernelSize;
    this.padding = opts.padding ?? 0;
    this.ceilMode = opts.ceilMode ?? false;
    this.countIncludePad = opts.countIncludePad ?? true;
    this.divisorOverride = opts.divisorOverride ?? null;
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernelSize, this.stride, this.padding, this.ceilMode, this.countIncludePad, this.divisorOverride);
  }
  outputShape(shape: number[]): number[] {
    expectSpatial('AvgPool2d', shape);
    const [k, s, p] = [this.kernelSize, this.stride, this.padding].map((v) => pair(v));
    const [h, w] = shape.slice(-2);
    return [...shape.slice(0, -2), windowOut(h, k[0], s[0], p[0], 1, this.ceilMode), windowOut(w, k[1], s[1], p[1], 1, this.ceilMode)];
  }
  extraRepr(): string {
    return `kernel_size=${pyValue(this.kernelSize)}, stride=${pyValue(this.stride)}, padding=${pyValue(this.padding)}`;
  }
}

/**
 * Average pooling to a fixed output size (`nn.AdaptiveAvgPool2d`); a null entry keeps that input
 * size. `outputSize` positionally or by name: `new nn.AdaptiveAvgPool2d(7)`, `new nn.AdaptiveAvgPool2d({ outputSize: 7 })`.
 */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: AdaptiveSize;
  constructor(outputSize: AdaptiveSize);
  constructor(options: { outputSize: AdaptiveSize });
  constructor(...args: unknown[]) {
    super();
    const { outputSize } = parseArgs<{ outputSize: AdaptiveSize }>('AdaptiveAvgPool2d', args, ['outputSize'], { required: ['outputSize'] });
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
