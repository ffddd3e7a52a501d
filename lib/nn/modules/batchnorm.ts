// nn.BatchNorm2d (torch/nn/modules/batchnorm.py).
import * as F from '../functional.js';
import { ones, tensor, zeros } from '../../tensor/creation.js';
import type { Tensor } from '../../tensor/tensor.js';
import { pyFloat, pyValue } from '../../utils/pyrepr.js';
import { checkBoolean, describe, parseArgs } from '../../utils/args.js';
import { Module, Parameter } from './module.js';
import { FACTORY, type FactoryOptions, checkPositiveInt } from './utils.js';

/** The options of {@link BatchNorm2d}; `eps` and `momentum` are `F.batchNorm`'s. */
export interface BatchNorm2dOptions extends FactoryOptions {
  eps?: number;
  /** null: a cumulative moving average instead of an exponential one. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** nn.BatchNorm2d's arguments after `numFeatures`, in its order. */
const BATCH_NORM_2D_ARGS = ['eps', 'momentum', 'affine', 'trackRunningStats', ...FACTORY];

/**
 * Batch normalisation over (N, C, H, W) (`nn.BatchNorm2d`). The arguments after `numFeatures`
 * go positionally in nn.BatchNorm2d's order, by name in an options object, or both:
 * `new nn.BatchNorm2d(64, { momentum: 0.01 })` as `nn.BatchNorm2d(64, momentum=0.01)`,
 * `new nn.BatchNorm2d(64, 1e-3, 0.01)` as `nn.BatchNorm2d(64, 1e-3, 0.01)`.
 */
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

  constructor(numFeatures: number, options?: BatchNorm2dOptions);
  constructor(
    numFeatures: number,
    eps?: number,
    momentum?: number | null,
    affine?: boolean,
    trackRunningStats?: boolean,
    device?: string,
    dtype?: FactoryOptions['dtype'],
  );
  constructor(numFeatures: number, ...args: unknown[]) {
    super();
    const opts = parseArgs<BatchNorm2dOptions>('BatchNorm2d', args, BATCH_NORM_2D_ARGS);
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
      weight: this.weight,
      bias: this.bias,
      training: useBatchStats,
      momentum: factor,
      eps: this.eps,
    });
  }

  extraRepr(): string {
    return (
      `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${this.momentum === null ? 'None' : pyFloat(this.momentum)}, ` +
      `affine=${pyValue(this.affine)}, track_running_stats=${pyValue(this.trackRunningStats)}`
    );
  }
}
