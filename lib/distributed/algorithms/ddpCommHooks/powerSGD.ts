// torch/distributed/algorithms/ddp_comm_hooks/powerSGD_hook.py: PowerSGDState and powerSGD_hook.
// The state and the hook live in C++ (native/distributed.cc), since the Reducer runs hooks on
// libtorch's autograd threads; PowerSGDState holds the native state and reads it back.
// PyTorch 1.13 and 2.6 differ here in logging only: no release switches.
import { native, type PowerSGDStateHandle } from '../../../native.js';
import { checkBoolean, checkInt, checkOptions, describe } from '../../../utils/args.js';
import { isAvailable, ProcessGroup } from '../../distributedC10d.js';
import { CommHook } from './defaultHooks.js';

/** Options of {@link PowerSGDState}, PyTorch's keyword arguments in camelCase, with its defaults. */
export interface PowerSGDStateOptions {
  /** Rank of the low-rank approximation P Qᵀ of each compressed gradient matrix. Default 1. */
  matrixApproximationRank?: number;
  /** Iterations of plain averaging allreduce before compression starts. Default 1000; > 1 with error feedback or warm start. */
  startPowerSGDIter?: number;
  /** A gradient is compressed only if its size exceeds its compressed size times this. Default 2. */
  minCompressionRate?: number;
  /** Add each bucket's compression error of the last step to its next gradient. Default true. */
  useErrorFeedback?: boolean;
  /** Start each step's power iteration from the last step's Q instead of a random one. Default true. */
  warmStart?: boolean;
  /** Added to the column norms in Gram-Schmidt to avoid 0/0 on vanishing gradients. Default 0. */
  orthogonalizationEpsilon?: number;
  /** Seed of the random Q initialisations (numpy's RandomState; the same on every rank). Default 0. */
  randomSeed?: number;
}

const OPTIONS = [
  'matrixApproximationRank',
  'startPowerSGDIter',
  'minCompressionRate',
  'useErrorFeedback',
  'warmStart',
  'orthogonalizationEpsilon',
  'randomSeed',
] as const;

function checkFinite(fn: string, what: string, v: unknown, min: number): asserts v is number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    throw new (typeof v === 'number' ? RangeError : TypeError)(`${fn}: ${what} must be a finite number ≥ ${min}, got ${describe(v)}`);
}

/**
 * `PowerSGDState`: the hyperparameters of {@link powerSGDHook} and its state over training (the
 * iteration counter, each bucket's compression error and last P and Q). One state goes with one
 * DDP model, as in PyTorch; pass it as `registerCommHook(state, powerSGDHook)`.
 */
export class PowerSGDState {
  /** The group the hook communicates over (`null`: the world). */
  readonly processGroup: ProcessGroup | null;
  readonly matrixApproximationRank: number;
  readonly startPowerSGDIter: number;
  readonly minCompressionRate: number;
  readonly useErrorFeedback: boolean;
  readonly warmStart: boolean;
  readonly orthogonalizationEpsilon: number;
  readonly randomSeed: number;
  /** @internal the native state (an External) */
  readonly _h: PowerSGDStateHandle;

  constructor(processGroup: ProcessGroup | null, options: PowerSGDStateOptions = {}) {
    const fn = 'PowerSGDState()';
    if (processGroup !== null && !(processGroup instanceof ProcessGroup))
      throw new TypeError(`${fn}: processGroup must be a ProcessGroup or null, got ${describe(processGroup)}`);
    checkOptions(fn, options, OPTIONS);
    const o = {
      matrixApproximationRank: options.matrixApproximationRank ?? 1,
      startPowerSGDIter: options.startPowerSGDIter ?? 1000,
      minCompressionRate: options.minCompressionRate ?? 2,
      useErrorFeedback: options.useErrorFeedback ?? true,
      warmStart: options.warmStart ?? true,
      orthogonalizationEpsilon: options.orthogonalizationEpsilon ?? 0,
      randomSeed: options.randomSeed ?? 0,
    };
    checkInt(fn, 'matrixApproximationRank', o.matrixApproximationRank, 1);
    checkInt(fn, 'startPowerSGDIter', o.startPowerSGDIter, 0);
    checkFinite(fn, 'minCompressionRate', o.minCompressionRate, 0);
    checkBoolean(fn, 'useErrorFeedback', o.useErrorFeedback, false);
    checkBoolean(fn, 'warmStart', o.warmStart, false);
    checkFinite(fn, 'orthogonalizationEpsilon', o.orthogonalizationEpsilon, 0);
    checkInt(fn, 'randomSeed', o.randomSeed, 0);
    if (o.randomSeed > 0xffffffff) throw new RangeError(`${fn}: randomSeed must be between 0 and 2**32 - 1 (numpy's RandomState), got ${o.randomSeed}`);
    // PyTorch's ValueError: the buckets are rebuilt after the first iteration, so per-bucket state can start only after it
    if ((o.useErrorFeedback || o.warmStart) && o.startPowerSGDIter <= 1)
      throw new RangeError(
        `${fn}: startPowerSGDIter must be > 1 if useErrorFeedback or warmStart is enabled, ` +
          `because PowerSGD can only be applied after the first two iterations in DDP; got ${o.startPowerSGDIter}`,
      );
    if (!isAvailable()) throw new Error(`${fn}: torch.distributed is not available in this build of vgg-torch (no Gloo)`);
    this.processGroup = processGroup;
    this.matrixApproximationRank = o.matrixApproximationRank;
    this.startPowerSGDIter = o.startPowerSGDIter;
    this.minCompressionRate = o.minCompressionRate;
    this.useErrorFeedback = o.useErrorFeedback;
    this.warmStart = o.warmStart;
    this.orthogonalizationEpsilon = o.orthogonalizationEpsilon;
    this.randomSeed = o.randomSeed;
    this._h = native.distPowerSGDStateNew(
      o.matrixApproximationRank,
      o.startPowerSGDIter,
      o.minCompressionRate,
      o.useErrorFeedback,
      o.warmStart,
      o.orthogonalizationEpsilon,
      o.randomSeed,
    );
  }

  /** `iter`: the iterations (backwards through DDP) the hook has run, counted at each step's last bucket. */
  get iter(): number {
    return native.distPowerSGDStateInfo(this._h)[0];
  }

  /**
   * `compression_stats()`: `[compressRate, numelBeforeCompression, numelAfterCompression]`
   * over all compressing steps so far (rate 0 before the first).
   */
  compressionStats(): [number, number, number] {
    const [, before, after] = native.distPowerSGDStateInfo(this._h);
    return [after > 0 ? before / after : 0, before, after];
  }
}

/**
 * `powerSGD_hook` (Vogels et al., 2019): for the first `startPowerSGDIter` iterations a plain
 * averaging allreduce; then each gradient matrix M (a tensor viewed as `shape[0]` rows) worth
 * compressing is sent as two low-rank factors, P = M Q and Q = Mᵀ P (orthogonalized, summed
 * over the group), and rebuilt as P Qᵀ; the others (1-D biases, small matrices) are summed as
 * they are. Its state is a {@link PowerSGDState}. Each bucket runs to the end inside the hook,
 * so collectives start in the same order on every rank.
 */
export const powerSGDHook = new CommHook('powerSGD_hook', 'powerSGD');
