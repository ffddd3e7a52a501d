// nn.BatchNorm2d and nn.SyncBatchNorm (torch/nn/modules/batchnorm.py).
import * as F from '../functional.js';
import { type ProcessGroup, isInitialized, resolveGroup } from '../../distributed/distributedC10d.js';
import { ones, tensor, zeros } from '../../tensor/creation.js';
import { Tensor } from '../../tensor/tensor.js';
import { pyFloat, pyValue } from '../../utils/pyrepr.js';
import { checkBoolean, describe, parseArgs } from '../../utils/args.js';
import { syncBatchNorm } from './_functions.js';
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
 * @internal What nn.BatchNorm2d and nn.SyncBatchNorm share (PyTorch's `_BatchNorm`): the
 * affine parameters, the running statistics and their momentum.
 */
export abstract class BatchNormBase extends Module {
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

  protected constructor(layer: string, numFeatures: number, opts: BatchNorm2dOptions) {
    super();
    checkPositiveInt(numFeatures, 'numFeatures', layer);
    if (opts.eps !== undefined && !(typeof opts.eps === 'number' && opts.eps > 0 && Number.isFinite(opts.eps))) {
      throw new RangeError(`${layer}: eps must be a positive number, got ${describe(opts.eps)}`);
    }
    if (opts.momentum != null && !(typeof opts.momentum === 'number' && opts.momentum >= 0 && opts.momentum <= 1)) {
      throw new RangeError(`${layer}: momentum must be a number in [0, 1] or null, got ${describe(opts.momentum)}`);
    }
    checkBoolean(layer, 'affine', opts.affine);
    checkBoolean(layer, 'trackRunningStats', opts.trackRunningStats);
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

  /** One training step's bookkeeping: counts the batch and returns the running-average factor. */
  protected averageFactor(): number {
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.numBatchesTracked) {
      this.numBatchesTracked.add_(1);
      if (this.momentum === null) factor = 1 / (this.numBatchesTracked.item() as number);
    }
    return factor;
  }

  /** Plain batch norm with this module's state, as `_BatchNorm.forward`. */
  protected batchNorm(x: Tensor, factor: number): Tensor {
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

/**
 * Batch normalisation over (N, C, H, W) (`nn.BatchNorm2d`). The arguments after `numFeatures`
 * go positionally in nn.BatchNorm2d's order, by name in an options object, or both:
 * `new nn.BatchNorm2d(64, { momentum: 0.01 })` as `nn.BatchNorm2d(64, momentum=0.01)`,
 * `new nn.BatchNorm2d(64, 1e-3, 0.01)` as `nn.BatchNorm2d(64, 1e-3, 0.01)`.
 */
export class BatchNorm2d extends BatchNormBase {
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
    super('BatchNorm2d', numFeatures, parseArgs<BatchNorm2dOptions>('BatchNorm2d', args, BATCH_NORM_2D_ARGS));
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new RangeError(`expected 4D input (got ${x.ndim}D input)`);
    return this.batchNorm(x, this.averageFactor());
  }
}

/** The options of {@link SyncBatchNorm}: {@link BatchNorm2dOptions} and the group to synchronise over. */
export interface SyncBatchNormOptions extends BatchNorm2dOptions {
  /** The ranks whose batches are normalised together (default: the world; null: the world). */
  processGroup?: ProcessGroup | null;
}

/** nn.SyncBatchNorm's arguments after `numFeatures`, in its order. */
const SYNC_BATCH_NORM_ARGS = ['eps', 'momentum', 'affine', 'trackRunningStats', 'processGroup', ...FACTORY];

/**
 * Batch normalisation with the statistics of the whole process group (`nn.SyncBatchNorm`): in
 * training, each forward all-gathers every rank's per-channel mean, inverse deviation and count,
 * so N ranks at batch B normalise (and update the running statistics) as one process at batch
 * N·B would; the backward all-reduces the per-channel gradient sums. Input (N, C, …) of any rank
 * from 2. In eval mode, before `distributed.initProcessGroup()`, or in a group of one rank it is
 * plain batch norm. Convert a model's BatchNorm2d layers with {@link SyncBatchNorm.convertSyncBatchnorm},
 * then wrap it in `nn.parallel.DistributedDataParallel`. Unlike PyTorch's (CUDA only), it trains on
 * CPU tensors, vgg-torch's Gloo groups; on CUDA it runs without gradients only (its backward is a
 * JS tensor hook, which a CUDA backward cannot call). A second backward through one forward
 * (`retainGraph`) is an error: the saved statistics are freed by the first.
 */
export class SyncBatchNorm extends BatchNormBase {
  /** The group the statistics are synchronised over; null: the world. */
  processGroup: ProcessGroup | null;

  constructor(numFeatures: number, options?: SyncBatchNormOptions);
  constructor(
    numFeatures: number,
    eps?: number,
    momentum?: number | null,
    affine?: boolean,
    trackRunningStats?: boolean,
    processGroup?: ProcessGroup | null,
    device?: string,
    dtype?: FactoryOptions['dtype'],
  );
  constructor(numFeatures: number, ...args: unknown[]) {
    const opts = parseArgs<SyncBatchNormOptions>('SyncBatchNorm', args, SYNC_BATCH_NORM_ARGS);
    if (opts.processGroup != null) resolveGroup('SyncBatchNorm', opts.processGroup);
    super('SyncBatchNorm', numFeatures, opts);
    this.processGroup = opts.processGroup ?? null;
  }

  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw new TypeError(`SyncBatchNorm: input must be a Tensor, got ${describe(x)}`);
    if (x.ndim < 2) throw new RangeError(`SyncBatchNorm: expected at least 2D input (got ${x.ndim}D input)`);
    if (x.shape[1] === 0) throw new RangeError('SyncBatchNorm: number of input channels should be non-zero');
    if (x.shape[1] !== this.numFeatures) {
      throw new RangeError(`SyncBatchNorm: input has ${x.shape[1]} channels (dimension 1), but numFeatures is ${this.numFeatures}`);
    }
    const factor = this.averageFactor();
    const bnTraining = this.training || (this.runningMean === null && this.runningVar === null);
    // As PyTorch: no statistics are synchronised in eval mode or before initProcessGroup().
    if (this.processGroup && !isInitialized()) {
      throw new Error('SyncBatchNorm: its processGroup belongs to a default process group that was destroyed (initProcessGroup() again and convert anew)');
    }
    const group = bnTraining && this.training && isInitialized() ? resolveGroup('SyncBatchNorm', this.processGroup ?? undefined) : null;
    if (!group || group.size() < 2) return this.batchNorm(x, factor);
    const track = this.trackRunningStats;
    return syncBatchNorm(x, this.weight, this.bias, track ? this.runningMean : null, track ? this.runningVar : null, this.eps, factor, group);
  }

  /**
   * `nn.SyncBatchNorm.convert_sync_batchnorm`: replaces every BatchNorm2d of `module`'s tree with a
   * SyncBatchNorm over `processGroup` (default: the world), in place. The new layers take over the
   * old ones' parameters and buffers (the same tensors: weights, running statistics,
   * `num_batches_tracked`, `requiresGrad`) and training mode, so state-dict keys are unchanged.
   * Returns `module`, or the new layer when `module` itself is a BatchNorm2d.
   */
  static convertSyncBatchnorm(module: BatchNorm2d, processGroup?: ProcessGroup | null): SyncBatchNorm;
  /** {@link SyncBatchNorm.convertSyncBatchnorm} of a model: converted in place and returned. */
  static convertSyncBatchnorm<M extends Module<any, any>>(module: M, processGroup?: ProcessGroup | null): M;
  static convertSyncBatchnorm<M extends Module<any, any>>(module: M, processGroup?: ProcessGroup | null): M | SyncBatchNorm {
    const fn = 'SyncBatchNorm.convertSyncBatchnorm()';
    if (!(module instanceof Module)) throw new TypeError(`${fn}: module must be an nn.Module, got ${describe(module)}`);
    if (processGroup != null) resolveGroup(fn, processGroup);
    return convert(module, processGroup ?? null);
  }
}

function convert<M extends Module<any, any>>(module: M, processGroup: ProcessGroup | null): M | SyncBatchNorm {
  if (module instanceof BatchNorm2d) {
    const bn = module as BatchNorm2d;
    const out = new SyncBatchNorm(bn.numFeatures, {
      eps: bn.eps,
      momentum: bn.momentum,
      affine: bn.affine,
      trackRunningStats: bn.trackRunningStats,
      processGroup,
      dtype: bn.runningMean?.dtype ?? bn.weight?.dtype,
    });
    // The converted layer owns the original's tensors, not copies (as PyTorch assigns them).
    for (const t of [out.weight, out.bias, out.runningMean, out.runningVar, out.numBatchesTracked]) t?.dispose();
    out.weight = bn.weight;
    out.bias = bn.bias;
    out.runningMean = bn.runningMean;
    out.runningVar = bn.runningVar;
    out.numBatchesTracked = bn.numBatchesTracked;
    out.training = bn.training;
    return out;
  }
  const slots = module as unknown as Record<string, unknown>;
  for (const key of Object.keys(slots)) {
    const child = slots[key];
    if (!key.startsWith('_') && child instanceof Module) slots[key] = convert(child, processGroup);
  }
  return module;
}
