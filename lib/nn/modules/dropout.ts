// nn.Dropout (torch/nn/modules/dropout.py).
import * as F from '../functional.js';
import type { DropoutOptions } from '../functional.js';
import type { Tensor } from '../../tensor/tensor.js';
import { pyFloat, pyValue } from '../../utils/pyrepr.js';
import { checkBoolean, parseArgs } from '../../utils/args.js';
import { Module } from './module.js';

/**
 * Zeroes elements with probability `p` in training (`nn.Dropout`), with `F.dropout`'s `p` and
 * `inplace` (`training` is the module's mode), positionally or by name: `new nn.Dropout(0.2)`,
 * `new nn.Dropout({ p: 0.2, inplace: true })` as `nn.Dropout(p=0.2, inplace=True)`.
 */
export class Dropout extends Module {
  readonly p: number;
  readonly inplace: boolean;
  constructor(options?: Omit<DropoutOptions, 'training'>);
  constructor(p: number | undefined, options?: Pick<DropoutOptions, 'inplace'>);
  constructor(p?: number, inplace?: boolean);
  constructor(...args: unknown[]) {
    super();
    const { p = 0.5, inplace = false } = parseArgs<DropoutOptions>('Dropout', args, ['p', 'inplace']);
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
