// nn.Identity and nn.Linear (torch/nn/modules/linear.py).
import * as F from '../functional.js';
import { empty } from '../../tensor/creation.js';
import type { Tensor } from '../../tensor/tensor.js';
import { pyValue } from '../../utils/pyrepr.js';
import { checkBoolean, parseArgs } from '../../utils/args.js';
import { Module, Parameter } from './module.js';
import { FACTORY, type FactoryOptions, checkPositiveInt, resetWeightAndBias } from './utils.js';

/** Returns its input (`nn.Identity`): a placeholder, e.g. for a removed avgpool. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** The options of {@link Linear}: `bias` a flag (whether to learn one), as in `nn.Linear`. */
export interface LinearLayerOptions extends FactoryOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * `y = x Wᵀ + b` (`nn.Linear`), initialised as PyTorch's `reset_parameters`. The arguments
 * after `outFeatures` go positionally or by name: `new nn.Linear(512, 10, { bias: false })`,
 * `new nn.Linear(512, 10, false)`.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, options?: LinearLayerOptions);
  constructor(inFeatures: number, outFeatures: number, bias?: boolean, device?: string, dtype?: FactoryOptions['dtype']);
  constructor(inFeatures: number, outFeatures: number, ...args: unknown[]) {
    super();
    const opts = parseArgs<LinearLayerOptions>('Linear', args, ['bias', ...FACTORY]);
    checkPositiveInt(inFeatures, 'inFeatures', 'Linear');
    checkPositiveInt(outFeatures, 'outFeatures', 'Linear');
    checkBoolean('Linear', 'bias', opts.bias);
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
