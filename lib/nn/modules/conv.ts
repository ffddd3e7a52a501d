// nn.Conv2d (torch/nn/modules/conv.py).
import * as F from '../functional.js';
import { empty } from '../../tensor/creation.js';
import type { Tensor } from '../../tensor/tensor.js';
import { pyValue } from '../../utils/pyrepr.js';
import { checkBoolean, checkIntPair, checkOneOf, parseArgs } from '../../utils/args.js';
import { Module, Parameter } from './module.js';
import { FACTORY, type FactoryOptions, type Pair, checkPositiveInt, expectSpatial, pair, resetWeightAndBias, windowOut } from './utils.js';

export type PaddingMode = 'zeros' | 'reflect' | 'replicate' | 'circular';

/**
 * The options of {@link Conv2d}: `F.conv2d`'s names (`stride`, `padding`, `dilation`, `groups`),
 * with `bias` a flag (whether to learn one), as in `nn.Conv2d`.
 */
export interface Conv2dOptions extends Omit<F.ConvOptions, 'bias'>, FactoryOptions {
  /** Required, positionally or by name. */
  kernelSize?: Pair;
  /** Learn an additive bias (default true). */
  bias?: boolean;
  paddingMode?: PaddingMode;
}

/** nn.Conv2d's arguments after `outChannels`, in its order. */
const CONV2D_ARGS = ['kernelSize', 'stride', 'padding', 'dilation', 'groups', 'bias', 'paddingMode', ...FACTORY];

/**
 * 2-D convolution (`nn.Conv2d`), initialised as PyTorch's `reset_parameters`. The arguments
 * after `outChannels` go positionally in nn.Conv2d's order, by name in an options object, or both:
 *
 * ```ts
 * new nn.Conv2d(3, 64, 3, { padding: 1 });            // nn.Conv2d(3, 64, 3, padding=1)
 * new nn.Conv2d(3, 64, { kernelSize: 3, stride: 2 }); // nn.Conv2d(3, 64, kernel_size=3, stride=2)
 * new nn.Conv2d(3, 64, 3, 1, 1);                      // nn.Conv2d(3, 64, 3, 1, 1)
 * ```
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  readonly paddingMode: PaddingMode;
  weight: Parameter;
  bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, options: Conv2dOptions & { kernelSize: Pair });
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options?: Omit<Conv2dOptions, 'kernelSize'>);
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Pair,
    stride?: Pair,
    padding?: Pair | 'same' | 'valid',
    dilation?: Pair,
    groups?: number,
    bias?: boolean,
    paddingMode?: PaddingMode,
    device?: string,
    dtype?: FactoryOptions['dtype'],
  );
  constructor(inChannels: number, outChannels: number, ...args: unknown[]) {
    super();
    const opts = parseArgs<Conv2dOptions>('Conv2d', args, CONV2D_ARGS, { required: ['kernelSize'] });
    checkPositiveInt(inChannels, 'inChannels', 'Conv2d');
    checkPositiveInt(outChannels, 'outChannels', 'Conv2d');
    checkIntPair('Conv2d', 'kernelSize', opts.kernelSize, 1);
    F.checkConvArgs('Conv2d', opts.stride ?? 1, opts.padding ?? 0, opts.dilation ?? 1, opts.groups ?? 1);
    checkOneOf('Conv2d', 'paddingMode', opts.paddingMode ?? 'zeros', ['zeros', 'reflect', 'replicate', 'circular']);
    checkBoolean('Conv2d', 'bias', opts.bias);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(opts.kernelSize!);
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
    const out = pad === 'same' ? [h, w] : [0, 1].map((i) => windowOut([h, w][i], this.kernelSize[i], this.stride[i], pad[i], this.dilation[i], false));
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
