// nn.ReLU (torch/nn/modules/activation.py).
import * as F from '../functional.js';
import type { ReluOptions } from '../functional.js';
import type { Tensor } from '../../tensor/tensor.js';
import { checkBoolean, parseArgs } from '../../utils/args.js';
import { Module } from './module.js';

/**
 * `max(0, x)` (`nn.ReLU`); `inplace` overwrites the input. `inplace` positionally or by name:
 * `new nn.ReLU(true)`, `new nn.ReLU({ inplace: true })` as `nn.ReLU(inplace=True)`.
 */
export class ReLU extends Module {
  readonly inplace: boolean;
  constructor(options?: ReluOptions);
  constructor(inplace?: boolean);
  constructor(...args: unknown[]) {
    super();
    const { inplace = false } = parseArgs<ReluOptions>('ReLU', args, ['inplace']);
    checkBoolean('ReLU', 'inplace', inplace);
    this.inplace = inplace;
  }
  forward(x: Tensor): Tensor {
    return F.relu(x, this.inplace);
  }
  extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}
