// nn.CrossEntropyLoss (torch/nn/modules/loss.py).
import * as F from '../functional.js';
import type { CrossEntropyOptions } from '../functional.js';
import { type Reduction, type Tensor, reductionCode } from '../../tensor/tensor.js';
import { checkInt, parseArgs } from '../../utils/args.js';
import { Module } from './module.js';

/**
 * Cross-entropy between logits and class indices or probabilities (`nn.CrossEntropyLoss`), with
 * `F.crossEntropy`'s options: as in Python, `weight` positionally or by name, the others by
 * name only: `new nn.CrossEntropyLoss({ labelSmoothing: 0.1 })`, `new nn.CrossEntropyLoss(w, { reduction: 'sum' })`.
 */
export class CrossEntropyLoss extends Module<[Tensor, Tensor], Tensor> {
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly labelSmoothing: number;
  declare weight: Tensor | null;

  constructor(options?: CrossEntropyOptions);
  constructor(weight: Tensor | null | undefined, options?: Omit<CrossEntropyOptions, 'weight'>);
  constructor(...args: unknown[]) {
    super();
    const opts = parseArgs<CrossEntropyOptions>('CrossEntropyLoss', args, ['weight', 'ignoreIndex', 'reduction', 'labelSmoothing'], {
      keywordOnly: ['ignoreIndex', 'reduction', 'labelSmoothing'],
    });
    if (opts.reduction !== undefined) reductionCode(opts.reduction);
    if (opts.ignoreIndex !== undefined) checkInt('CrossEntropyLoss', 'ignoreIndex', opts.ignoreIndex);
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.reduction = opts.reduction ?? 'mean';
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, {
      weight: this.weight,
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
      labelSmoothing: this.labelSmoothing,
    });
  }
}
