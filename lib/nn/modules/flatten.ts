// nn.Flatten (torch/nn/modules/flatten.py).
import type { Tensor } from '../../tensor/tensor.js';
import { checkInt, parseArgs } from '../../utils/args.js';
import { Module } from './module.js';

/** The options of {@link Flatten}, as `Tensor.flatten`'s (`start_dim`, `end_dim`). */
export interface FlattenOptions {
  /** Default 1 (keep the batch dimension). */
  startDim?: number;
  /** Default -1. */
  endDim?: number;
}

/**
 * Flattens dimensions `startDim`…`endDim` into one (`nn.Flatten`), given positionally or by
 * name: `new nn.Flatten(0)`, `new nn.Flatten({ startDim: 2 })` as `nn.Flatten(start_dim=2)`.
 */
export class Flatten extends Module {
  readonly startDim: number;
  readonly endDim: number;
  constructor(options?: FlattenOptions);
  constructor(startDim?: number, endDim?: number);
  constructor(...args: unknown[]) {
    super();
    const { startDim = 1, endDim = -1 } = parseArgs<FlattenOptions>('Flatten', args, ['startDim', 'endDim']);
    checkInt('Flatten', 'startDim', startDim);
    checkInt('Flatten', 'endDim', endDim);
    this.startDim = startDim;
    this.endDim = endDim;
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
