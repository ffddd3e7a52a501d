// Helpers shared by the layers (torch/nn/modules/utils.py and the bits PyTorch repeats per file).
import * as init from '../init.js';
import type { DType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { checkInt } from '../../utils/args.js';

/** A size given once for both spatial dimensions, or as (height, width). */
export type Pair = number | [number, number];

/**
 * PyTorch's `_pair`: a value for both spatial dimensions → `[v, v]`; an array → its first two
 * entries (a one-entry array, as torchvision's sizes allow, → that entry twice). It does not
 * check what it is given: callers check first (checkIntPair) or after (transforms' sizes).
 */
export function pair<T>(v: T | readonly T[]): [T, T] {
  if (!Array.isArray(v)) return [v as T, v as T];
  return v.length === 1 ? [v[0], v[0]] : [v[0], v[1]];
}

/** Options shared by layers that create parameters. */
export interface FactoryOptions {
  device?: string;
  dtype?: DType;
}

/** The factory option names, for the layers' lists of allowed options. */
export const FACTORY = ['device', 'dtype'] as const;

// PyTorch's reset_parameters of Conv2d and Linear: the same draws in the same order.
// (fanIn is never 0 here: channel and feature counts are checked to be positive.)
export function resetWeightAndBias(weight: Tensor, bias: Tensor | null): void {
  init.kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = init.calculateFanInAndFanOut(weight);
    const bound = 1 / Math.sqrt(fanIn);
    init.uniform_(bias, -bound, bound);
  }
}

export const checkPositiveInt = (v: unknown, what: string, layer: string): void => checkInt(layer, what, v, 1);

/** Spatial output size of a convolution or pooling window (PyTorch's formula, ceil mode included). */
export function windowOut(size: number, kernel: number, stride: number, padding: number, dilation: number, ceil: boolean): number {
  const span = size + 2 * padding - dilation * (kernel - 1) - 1;
  let out = Math.floor((ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1);
  if (ceil && (out - 1) * stride >= size + padding) out--;
  return out;
}

export function expectSpatial(layer: string, shape: number[]): void {
  if (shape.length !== 3 && shape.length !== 4) {
    throw new RangeError(`${layer}: expected a (C, H, W) or (N, C, H, W) input, got shape [${shape.join(', ')}]`);
  }
}
