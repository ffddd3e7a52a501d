// torch.optim.lr_scheduler: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
// LinearLR, OneCycleLR and SequentialLR, as PyTorch computes them (the same
// learning rates in 1.13 and 2.6; the releases' other differences, in warnings
// and verbose printing, are switches in releases.ts).
//
// Learning rates are Python float arithmetic, which JS doubles reproduce exactly
// when every expression keeps PyTorch's operation order. So each `getLr` is the
// chainable (recursive) form PyTorch's `get_lr` uses, and the closed form runs
// only where PyTorch runs it (`step(epoch)`, and SequentialLR's `step(0)` at a
// milestone). `**` and `math.cos` go through libm as CPython's do (pymath.ts).
import { describe } from '../tensor/tensor.js';
import { checkOptions } from '../utils/args.js';
import { Optimizer, camelCase } from './optimizer.js';
import { pyCos, pyPow } from './pymath.js';
import { rules } from './releases.js';
import { warnOnce } from './warnings.js';

const ORDER_WARNING =
  'Detected call of `lr_scheduler.step()` before `optimizer.step()`. ' +
  'In PyTorch 1.1.0 and later, you should call them in the opposite order: ' +
  '`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this ' +
  'will result in PyTorch skipping the first value of the learning rate schedule. ' +
  'See more details at https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate';
const OVERRIDDEN_WARNING =
  'Seems like `optimizer.step()` has been overridden after learning rate scheduler ' +
  'initialization. Please, make sure to call `optimizer.step()` before ' +
  '`lr_scheduler.step()`. See more details at ' +
  'https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate';
const EPOCH_DEPRECATION_WARNING =
  'The epoch parameter in `scheduler.step()` was not necessary and is being ' +
  'deprecated where possible. Please use `scheduler.step()` to step the ' +
  'scheduler. During the deprecation, if epoch is different from None, the ' +
  'closed form is used instead of the new chainable form, where available. ' +
  'Please open an issue if you are unable to replicate your use case: ' +
  'https://github.com/pytorch/pytorch/issues/new/choose.';
const GET_LR_WARNING = 'To get the last learning rate computed by the scheduler, please use `get_last_lr()`.';
const VERBOSE_WARNING = 'The verbose parameter is deprecated. Please use get_last_lr() to access the learning rate.';
const PRINT_LR_WARNING =
  '`LRScheduler.print_lr()` is being deprecated. To fetch the learning rate, please use `get_last_lr()` instead. ' +
  'For more details, see https://github.com/pytorch/pytorch/issues/99270.';

/** torch 2.x's `_check_verbose_deprecated_warning`: a given `verbose` (even false) is deprecated. */
function checkVerbose(verbose: boolean | undefined): void {
  if (rules.schedulerVerboseDeprecated && verbose !== undefined) warnOnce(VERBOSE_WARNING);
}

/** Python's true division, which raises on a zero divisor where JS would return Infinity or NaN. */
function pyDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError('float division by zero');
  return a / b;
}

/** Python's `'{:.4e}'.format(x)`: `1.0000e-01`. */
function sci(x: number): string {
  return x.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2');
}

/** A deep copy of a state value (arrays, Maps, plain objects); bigints from a .pth reader become numbers. */
function copyValue(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(copyValue);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [copyValue(k), copyValue(x)]));
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copyValue(x)]));
  }
  return v;
}

function checkInt(value: unknown, what: string, ok: (x: number) => boolean = () => true, rule = 'an integer'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || !ok(value)) {
    throw new RangeError(`${what} must be ${rule}, got ${describe(value)}`);
  }
  return value;
}
function checkNum(value: unknown, what: string): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${what} must be a number, got ${describe(value)}`);
  return value;
}

type CountedStep = ((...args: unknown[]) => unknown) & { _withCounter?: boolean };

/** Options every scheduler takes. */
export interface SchedulerOptions {
  /** The index of the last epoch when resuming (default -1: start a new schedule). */
  lastEpoch?: number;
  /**
   * Print each learning-rate change, as PyTorch 1.13 does (default false).
   * From torch 2.2 PyTorch deprecates it: giving it warns and nothing is printed.
   */
  verbose?: boolean;
}

/**
 * Base class of the learning-rate schedulers (`torch.optim.lr_scheduler._LRScheduler`).
 *
 * Call `optimizer.step()` first, then `scheduler.step()`, once per epoch (or
 * per batch for OneCycleLR). Calling the scheduler first, as older tutorials do,
 * skips the schedule's first value; PyTorch's warning about it is printed once.
 */
export abstract class LRScheduler {
  /** The optimizer whose groups' `lr` this scheduler sets. */
  readonly optimizer: Optimizer;
  /** Each group's `initialLr` when the schedule started. */
  baseLrs: number[] = [];
  /** The index of the last epoch (the number of `step()` calls made, minus one). */
  lastEpoch = -1;
  verbose = false;
  /** @internal PyTorch's `_step_count`. */
  _stepCount = 0;
  /** @internal PyTorch's `_get_lr_called_within_step`. */
  _getLrCalledWithinStep = false;
  /** @internal PyTorch's `_last_lr`. */
  _lastLr: number[] = [];

  protected constructor(optimizer: Optimizer) {
    if (!(optimizer instanceof Optimizer)) throw new TypeError(`${new.target.name}: argument 'optimizer' must be an Optimizer, got ${describe(optimizer)}`);
    this.optimizer = optimizer;
  }

  /**
   * PyTorch's `_LRScheduler.__init__`, run by each subclass once its own
   * fields are set (they are read by the initial step).
   */
  protected init(opts: SchedulerOptions): void {
    const lastEpoch = checkInt(opts.lastEpoch ?? -1, 'lastEpoch', (x) => x >= -1, 'an integer >= -1');
    const groups = this.optimizer.paramGroups;
    if (lastEpoch === -1) {
      for (const g of groups) if (g.initialLr === undefined) g.initialLr = g.lr;
    } else {
      groups.forEach((g, i) => {
        if (g.initialLr === undefined) {
          throw new Error(`param 'initial_lr' is not specified in param_groups[${i}] when resuming an optimizer`);
        }
      });
    }
    this.baseLrs = groups.map((g) => g.initialLr as number);
    this.lastEpoch = lastEpoch;
    // Count optimizer.step() calls, as PyTorch's `with_counter` wrapper does, so
    // the first scheduler.step() can tell whether the optimizer stepped yet.
    const opt = this.optimizer;
    const current = opt.step as unknown as CountedStep;
    if (!current._withCounter) {
      const counted: CountedStep = (...args: unknown[]) => {
        opt._stepCount += 1;
        return current.apply(opt, args);
      };
      counted._withCounter = true;
      (opt as unknown as { step: CountedStep }).step = counted;
    }
    checkVerbose(opts.verbose);
    this.verbose = opts.verbose ?? false;
    this.initialStep();
  }

  /** @internal resets the step counts and performs the initial step (PyTorch's `_initial_step`). */
  initialStep(): void {
    // torch 1.13 counts the optimizer's steps from here; 2.x only asks whether it ever stepped (`_opt_called`).
    if (!rules.schedulerOptCalled) this.optimizer._stepCount = 0;
    this._stepCount = 0;
    this.step();
  }

  /** The learning rate of each group as last set by this scheduler. */
  getLastLr(): number[] {
    return [...this._lastLr];
  }

  /**
   * The chainable form: each group's next learning rate from its current one.
   * Meant to be called by `step()`; call {@link getLastLr} to read the rate.
   */
  abstract getLr(): number[];

  /** The closed form PyTorch uses when `step(epoch)` is given an epoch, where the scheduler has one. */
  protected closedFormLr?(): number[];

  /** PyTorch's warning when `get_lr()` is called outside `step()`. */
  protected warnOutsideStep(): void {
    if (!this._getLrCalledWithinStep) warnOnce(GET_LR_WARNING, `${this.constructor.name}.getLr`);
  }

  /** Prints a learning-rate change when `verbose`, in PyTorch's words (deprecated from torch 2.2, with PyTorch's warning). */
  printLr(isVerbose: boolean, group: number, lr: number, epoch?: number): void {
    if (rules.schedulerVerboseDeprecated) warnOnce(PRINT_LR_WARNING);
    if (!isVerbose) return;
    if (epoch === undefined) {
      console.log(`Adjusting learning rate of group ${group} to ${sci(lr)}.`);
    } else {
      const e = Number.isInteger(epoch) ? `${epoch < 0 ? '-' : ''}${String(Math.abs(epoch)).padStart(5, '0')}` : epoch.toFixed(2);
      console.log(`Epoch ${e}: adjusting learning rate of group ${group} to ${sci(lr)}.`);
    }
  }

  /**
   * Advances the schedule by one epoch and sets each group's `lr`. Passing
   * `epoch` is deprecated in PyTorch (it warns and jumps to the closed form).
   */
  step(epoch?: number): void {
    if (this._stepCount === 1) {
      const s = this.optimizer.step as unknown as CountedStep;
      if (!s._withCounter) warnOnce(OVERRIDDEN_WARNING);
      else if (this.optimizer._stepCount < 1) warnOnce(ORDER_WARNING);
    }
    this._stepCount += 1;
    let values: number[];
    this._getLrCalledWithinStep = true;
    try {
      if (epoch === undefined) {
        this.lastEpoch += 1;
        values = this.getLr();
      } else {
        warnOnce(EPOCH_DEPRECATION_WARNING);
        this.lastEpoch = checkNum(epoch, 'epoch');
        values = this.closedFormLr ? this.closedFormLr() : this.getLr();
      }
    } finally {
      this._getLrCalledWithinStep = false;
    }
    const groups = this.optimizer.paramGroups;
    const n = Math.min(groups.length, values.length);
    for (let i = 0; i < n; i++) {
      groups[i].lr = values[i];
      if (!rules.schedulerVerboseDeprecated) this.printLr(this.verbose, i, values[i], epoch);
    }
    this._lastLr = groups.map((g) => g.lr);
  }

  /** This scheduler's own attributes: [PyTorch name, property] in PyTorch's `__dict__` order. */
  protected ownStateKeys(): [string, string][] {
    return [];
  }
  private stateKeys(): [string, string][] {
    return [
      ...this.ownStateKeys(),
      ['base_lrs', 'baseLrs'],
      ['last_epoch', 'lastEpoch'],
      ['verbose', 'verbose'],
      ['_step_count', '_stepCount'],
      ['_get_lr_called_within_step', '_getLrCalledWithinStep'],
      ['_last_lr', '_lastLr'],
    ];
  }

  /**
   * The scheduler's state as PyTorch's `state_dict()`: every attribute but the
   * optimizer, with PyTorch's names (`last_epoch`, `base_lrs`, `_step_count`, …).
   */
  stateDict(): Record<string, unknown> {
    const self = this as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [py, ts] of this.stateKeys()) out[py] = copyValue(self[ts]);
    return out;
  }

  /**
   * Loads a state from {@link LRScheduler.stateDict} or from PyTorch. As PyTorch's, it
   * overwrites attributes; entries this scheduler does not have are ignored.
   */
  loadStateDict(stateDict: Record<string, unknown> | Map<string, unknown>): void {
    if (stateDict === null || typeof stateDict !== 'object') {
      throw new TypeError(`loadStateDict(): expected a state dict object, got ${describe(stateDict)}`);
    }
    const self = this as unknown as Record<string, unknown>;
    // A .pth reader returns Python dicts as Maps.
    const src = stateDict instanceof Map ? (Object.fromEntries(stateDict) as Record<string, unknown>) : stateDict;
    for (const [py, ts] of this.stateKeys()) if (py in src) self[ts] = this.importValue(py, copyValue(src[py]));
  }

  /** Converts a loaded value where TypeScript keeps another form (MultiStepLR's milestones). */
  protected importValue(_key: string, value: unknown): unknown {
    return value;
  }
}

// ---- StepLR ---------------------------------------------------------------------

/** Options of {@link StepLR}. */
export interface StepLROptions extends SchedulerOptions {
  /** Period of learning-rate decay, in epochs. */
  stepSize: number;
  /** Multiplicative factor of the decay (default 0.1). */
  gamma?: number;
}

/** Multiplies each group's learning rate by `gamma` every `stepSize` epochs (`StepLR`). */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;
  constructor(optimizer: Optimizer, opts: StepLROptions) {
    super(optimizer);
    checkOptions('StepLR', opts, ['stepSize', 'gamma', 'lastEpoch', 'verbose'], { what: 'options' });
    this.stepSize = checkInt(opts?.stepSize, 'stepSize', (x) => x > 0, 'a positive integer');
    this.gamma = checkNum(opts.gamma ?? 0.1, 'gamma');
    this.init(opts);
  }
  protected ownStateKeys(): [string, string][] {
    return [
      ['step_size', 'stepSize'],
      ['gamma', 'gamma'],
    ];
  }
  getLr(): number[] {
    this.warnOutsideStep();
    const groups = this.optimizer.paramGroups;
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * this.gamma);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * pyPow(this.gamma, Math.floor(this.lastEpoch / this.stepSize)));
  }
}

// ---- MultiStepLR ----------------------------------------------------------------

/** Options of {@link MultiStepLR}. */
export interface MultiStepLROptions extends SchedulerOptions {
  /** Epoch indices at which to decay; a repeated milestone decays that many times. */
  milestones: number[];
  /** Multiplicative factor of the decay (default 0.1). */
  gamma?: number;
}

/** Multiplies each group's learning rate by `gamma` at each milestone epoch (`MultiStepLR`). */
export class MultiStepLR extends LRScheduler {
  /** Milestone → how many times it was listed (PyTorch's `Counter`). */
  milestones: Map<number, number>;
  gamma: number;
  constructor(optimizer: Optimizer, opts: MultiStepLROptions) {
    super(optimizer);
    checkOptions('MultiStepLR', opts, ['milestones', 'gamma', 'lastEpoch', 'verbose'], { what: 'options' });
    if (!Array.isArray(opts?.milestones)) throw new TypeError(`milestones must be an array of integers, got ${describe(opts?.milestones)}`);
    this.milestones = new Map();
    for (const m of opts.milestones) {
      checkInt(m, 'each milestone');
      this.milestones.set(m, (this.milestones.get(m) ?? 0) + 1);
    }
    this.gamma = checkNum(opts.gamma ?? 0.1, 'gamma');
    this.init(opts);
  }
  protected ownStateKeys(): [string, string][] {
    return [
      ['milestones', 'milestones'],
      ['gamma', 'gamma'],
    ];
  }
  protected importValue(key: string, value: unknown): unknown {
    if (key !== 'milestones') return value;
    const entries = value instanceof Map ? [...value] : Object.entries(value as object);
    return new Map(entries.map(([k, v]) => [Number(k), Number(v)]));
  }
  getLr(): number[] {
    this.warnOutsideStep();
    const groups = this.optimizer.paramGroups;
    const count = this.milestones.get(this.lastEpoch);
    if (count === undefined) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * pyPow(this.gamma, count));
  }
  protected closedFormLr(): number[] {
    // bisect_right over the sorted milestones (with repeats): how many are <= lastEpoch.
    let passed = 0;
    for (const [m, n] of this.milestones) if (m <= this.lastEpoch) passed += n;
    return this.baseLrs.map((b) => b * pyPow(this.gamma, passed));
  }
}

// ---- ExponentialLR --------------------------------------------------------------

/** Options of {@link ExponentialLR}. */
export interface ExponentialLROptions extends SchedulerOptions {
  /** Multiplicative factor of the decay, every epoch. */
  gamma: number;
}

/** Multiplies each group's learning rate by `gamma` every epoch (`ExponentialLR`). */
export class ExponentialLR extends LRScheduler {
  gamma: number;
  constructor(optimizer: Optimizer, opts: ExponentialLROptions) {
    super(optimizer);
    checkOptions('ExponentialLR', opts, ['gamma', 'lastEpoch', 'verbose'], { what: 'options' });
    this.gamma = checkNum(opts?.gamma, 'gamma');
    this.init(opts);
  }
  protected ownStateKeys(): [string, string][] {
    return [['gamma', 'gamma']];
  }
  getLr(): number[] {
    this.warnOutsideStep();
    const groups = this.optimizer.paramGroups;
    if (this.lastEpoch === 0) return groups.map((g) => g.lr);
    return groups.map((g) => g.lr * this.gamma);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * pyPow(this.gamma, this.lastEpoch));
  }
}

// ---- CosineAnnealingLR ----------------------------------------------------------

/** Options of {@link CosineAnnealingLR}. */
export interface CosineAnnealingLROptions extends SchedulerOptions {
  /** Half-period of the cosine, in epochs (PyTorch's `T_max`). */
  tMax: number;
  /** The minimum learning rate (default 0). */
  etaMin?: number;
}

/**
 * Cosine annealing from each group's initial rate down to `etaMin` over `tMax`
 * epochs (`CosineAnnealingLR`), in PyTorch's recursive form: past `tMax` the
 * rate climbs back up, and changes made to `lr` from outside are kept.
 */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;
  constructor(optimizer: Optimizer, opts: CosineAnnealingLROptions) {
    super(optimizer);
    checkOptions('CosineAnnealingLR', opts, ['tMax', 'etaMin', 'lastEpoch', 'verbose'], { what: 'options' });
    this.tMax = checkNum(opts?.tMax, 'tMax');
    if (!(this.tMax > 0)) throw new RangeError(`tMax must be positive, got ${this.tMax}`);
    this.etaMin = checkNum(opts.etaMin ?? 0, 'etaMin');
    this.init(opts);
  }
  protected ownStateKeys(): [string, string][] {
    return [
      ['T_max', 'tMax'],
      ['eta_min', 'etaMin'],
    ];
  }
  getLr(): number[] {
    this.warnOutsideStep();
    const groups = this.optimizer.paramGroups;
    const { lastEpoch: e, tMax, etaMin } = this;
    if (e === 0) return groups.map((g) => g.lr);
    if (this._stepCount === 1 && e > 0) {
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + pyCos((e * Math.PI) / tMax))) / 2);
    }
    if ((e - 1 - tMax) % (2 * tMax) === 0) {
      const c = pyCos(Math.PI / tMax);
      return groups.map((g, i) => g.lr + ((this.baseLrs[i] - etaMin) * (1 - c)) / 2);
    }
    const ratio = (1 + pyCos((Math.PI * e) / tMax)) / (1 + pyCos((Math.PI * (e - 1)) / tMax));
    return groups.map((g) => ratio * (g.lr - etaMin) + etaMin);
  }
  protected closedFormLr(): number[] {
    const c = pyCos((Math.PI * this.lastEpoch) / this.tMax);
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + c)) / 2);
  }
}

// ---- LinearLR -------------------------------------------------------------------

/** Options of {@link LinearLR}. */
export interface LinearLROptions extends SchedulerOptions {
  /** Factor applied in the first epoch, in (0, 1] (default 1/3). */
  startFactor?: number;
  /** Factor reached after `totalIters` epochs, in [0, 1] (default 1). */
  endFactor?: number;
  /** Epochs over which the factor moves from `startFactor` to `endFactor` (default 5). */
  totalIters?: number;
}

/**
 * Scales each group's learning rate by a factor moving linearly from
 * `startFactor` to `endFactor` over `totalIters` epochs (`LinearLR`), the usual warm-up.
 */
export class LinearLR extends LRScheduler {
  startFactor: number;
  endFactor: number;
  totalIters: number;
  constructor(optimizer: Optimizer, opts: LinearLROptions = {}) {
    super(optimizer);
    checkOptions('LinearLR', opts, ['startFactor', 'endFactor', 'totalIters', 'lastEpoch', 'verbose'], { what: 'options' });
    this.startFactor = checkNum(opts.startFactor ?? 1 / 3, 'startFactor');
    this.endFactor = checkNum(opts.endFactor ?? 1, 'endFactor');
    // PyTorch 1.13 accepts a start factor of 0 and then divides by zero at the
    // second step; later releases reject it, and so does this.
    if (this.startFactor > 1 || this.startFactor <= 0) {
      throw new RangeError('Starting multiplicative factor expected to be greater than 0 and less or equal to 1.');
    }
    if (this.endFactor > 1 || this.endFactor < 0) throw new RangeError('Ending multiplicative factor expected to be between 0 and 1.');
    this.totalIters = checkInt(opts.totalIters ?? 5, 'totalIters', (x) => x > 0, 'a positive integer');
    this.init(opts);
  }
  protected ownStateKeys(): [string, string][] {
    return [
      ['start_factor', 'startFactor'],
      ['end_factor', 'endFactor'],
      ['total_iters', 'totalIters'],
    ];
  }
  getLr(): number[] {
    this.warnOutsideStep();
    const groups = this.optimizer.paramGroups;
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    if (e === 0) return groups.map((g) => g.lr * s);
    if (e > n) return groups.map((g) => g.lr);
    const factor = 1 + pyDiv(f - s, n * s + (e - 1) * (f - s));
    return groups.map((g) => g.lr * factor);
  }
  protected closedFormLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((f - s) * Math.min(n, e)) / n));
  }
}

// ---- OneCycleLR -----------------------------------------------------------------

/** Options of {@link OneCycleLR}. */
export interface OneCycleLROptions extends SchedulerOptions {
  /** Peak learning rate, one for all groups or one per group. */
  maxLr: number | number[];
  /** Steps in the cycle; or give `epochs` and `stepsPerEpoch`. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent increasing the rate (default 0.3). */
  pctStart?: number;
  /** `'cos'` (default) or `'linear'`. */
  annealStrategy?: 'cos' | 'linear';
  /** Cycle momentum (SGD's `momentum`, or Adam's first beta) inversely to the rate (default true). */
  cycleMomentum?: boolean;
  /** Lowest momentum (default 0.85), one value or one per group. */
  baseMomentum?: number | number[];
  /** Highest momentum (default 0.95), one value or one per group. */
  maxMomentum?: number | number[];
  /** initial lr = maxLr / divFactor (default 25). */
  divFactor?: number;
  /** min lr = initial lr / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** Three phases (up, down to initial, annihilate) instead of two (default false). */
  threePhase?: boolean;
}

/** One phase of a OneCycleLR schedule, in PyTorch's layout (group keys in snake_case). */
export interface OneCyclePhase {
  end_step: number;
  start_lr: string;
  end_lr: string;
  start_momentum: string;
  end_momentum: string;
}

/**
 * The 1cycle policy (`OneCycleLR`): the rate rises from `maxLr / divFactor` to
 * `maxLr` and anneals far below the start, while momentum cycles the other way.
 * Step it after every batch; stepping more than `totalSteps` times is an error.
 */
export class OneCycleLR extends LRScheduler {
  totalSteps: number;
  _schedulePhases: OneCyclePhase[];
  annealStrategy: 'cos' | 'linear';
  cycleMomentum: boolean;
  useBeta1 = false;

  constructor(optimizer: Optimizer, opts: OneCycleLROptions) {
    super(optimizer);
    checkOptions(
      'OneCycleLR',
      opts,
      [
        'maxLr',
        'totalSteps',
        'epochs',
        'stepsPerEpoch',
        'pctStart',
        'annealStrategy',
        'cycleMomentum',
        'baseMomentum',
        'maxMomentum',
        'divFactor',
        'finalDivFactor',
        'threePhase',
        'lastEpoch',
        'verbose',
      ],
      { what: 'options' },
    );
    if (opts === null || typeof opts !== 'object') throw new TypeError('OneCycleLR: options with maxLr are required');
    if (opts.totalSteps === undefined && opts.epochs === undefined && opts.stepsPerEpoch === undefined) {
      throw new Error('You must define either totalSteps OR (epochs AND stepsPerEpoch)');
    } else if (opts.totalSteps !== undefined) {
      if (!Number.isInteger(opts.totalSteps) || opts.totalSteps <= 0) {
        throw new RangeError(`Expected positive integer totalSteps, but got ${opts.totalSteps}`);
      }
      this.totalSteps = opts.totalSteps;
    } else {
      if (!Number.isInteger(opts.epochs) || (opts.epochs as number) <= 0) throw new RangeError(`Expected positive integer epochs, but got ${opts.epochs}`);
      if (!Number.isInteger(opts.stepsPerEpoch) || (opts.stepsPerEpoch as number) <= 0) {
        throw new RangeError(`Expected positive integer stepsPerEpoch, but got ${opts.stepsPerEpoch}`);
      }
      this.totalSteps = (opts.epochs as number) * (opts.stepsPerEpoch as number);
    }
    const pctStart = opts.pctStart ?? 0.3;
    const total = this.totalSteps;
    this._schedulePhases = opts.threePhase
      ? [
          { end_step: pctStart * total - 1, start_lr: 'initial_lr', end_lr: 'max_lr', start_momentum: 'max_momentum', end_momentum: 'base_momentum' },
          { end_step: 2 * pctStart * total - 2, start_lr: 'max_lr', end_lr: 'initial_lr', start_momentum: 'base_momentum', end_momentum: 'max_momentum' },
          { end_step: total - 1, start_lr: 'initial_lr', end_lr: 'min_lr', start_momentum: 'max_momentum', end_momentum: 'max_momentum' },
        ]
      : [
          { end_step: pctStart * total - 1, start_lr: 'initial_lr', end_lr: 'max_lr', start_momentum: 'max_momentum', end_momentum: 'base_momentum' },
          { end_step: total - 1, start_lr: 'max_lr', end_lr: 'min_lr', start_momentum: 'base_momentum', end_momentum: 'max_momentum' },
        ];
    if (typeof pctStart !== 'number' || !(pctStart >= 0 && pctStart <= 1)) {
      throw new RangeError(`Expected float between 0 and 1 pctStart, but got ${String(pctStart)}`);
    }
    const strategy = opts.annealStrategy ?? 'cos';
    if (strategy !== 'cos' && strategy !== 'linear') {
      throw new RangeError(`annealStrategy must be one of 'cos' or 'linear', instead got ${String(strategy)}`);
    }
    this.annealStrategy = strategy;

    const groups = this.optimizer.paramGroups;
    const lastEpoch = opts.lastEpoch ?? -1;
    const divFactor = checkNum(opts.divFactor ?? 25, 'divFactor');
    const finalDivFactor = checkNum(opts.finalDivFactor ?? 1e4, 'finalDivFactor');
    const maxLrs = this.formatParam('maxLr', opts.maxLr);
    if (lastEpoch === -1) {
      groups.forEach((g, i) => {
        g.initialLr = maxLrs[i] / divFactor;
        g.maxLr = maxLrs[i];
        g.minLr = g.initialLr / finalDivFactor;
      });
    }
    this.cycleMomentum = opts.cycleMomentum ?? true;
    if (this.cycleMomentum) {
      const defaults = this.optimizer.defaults;
      if (!('momentum' in defaults) && !('betas' in defaults)) {
        throw new Error('optimizer must support momentum with `cycleMomentum` option enabled');
      }
      this.useBeta1 = 'betas' in defaults;
      const maxMomentums = this.formatParam('maxMomentum', opts.maxMomentum ?? 0.95);
      const baseMomentums = this.formatParam('baseMomentum', opts.baseMomentum ?? 0.85);
      if (lastEpoch === -1) {
        groups.forEach((g, i) => {
          if (this.useBeta1) g.betas = [maxMomentums[i], ...(g.betas as number[]).slice(1)];
          else g.momentum = maxMomentums[i];
          g.maxMomentum = maxMomentums[i];
          g.baseMomentum = baseMomentums[i];
        });
      }
    }
    this.init(opts);
  }

  private formatParam(name: string, param: number | number[]): number[] {
    const n = this.optimizer.paramGroups.length;
    if (Array.isArray(param)) {
      if (param.length !== n) throw new RangeError(`expected ${n} values for ${name}, got ${param.length}`);
      return param.map((x) => checkNum(x, name));
    }
    return new Array<number>(n).fill(checkNum(param, name));
  }

  protected importValue(key: string, value: unknown): unknown {
    // Phases read from a .pth file are Maps (Python dicts).
    if (key === '_schedule_phases' && Array.isArray(value)) {
      return value.map((phase) => (phase instanceof Map ? Object.fromEntries(phase) : phase));
    }
    return value;
  }

  protected ownStateKeys(): [string, string][] {
    // PyTorch 1.13 stores the bound method `anneal_func`; 2.x stores `_anneal_func_type`, which is what is kept here.
    const keys: [string, string][] = [
      ['total_steps', 'totalSteps'],
      ['_schedule_phases', '_schedulePhases'],
      ['_anneal_func_type', 'annealStrategy'],
      ['cycle_momentum', 'cycleMomentum'],
    ];
    if (this.cycleMomentum) keys.push(['use_beta1', 'useBeta1']);
    return keys;
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.annealStrategy === 'linear') return (end - start) * pct + start;
    const cosOut = pyCos(Math.PI * pct) + 1;
    return end + ((start - end) / 2.0) * cosOut;
  }

  getLr(): number[] {
    this.warnOutsideStep();
    const stepNum = this.lastEpoch;
    if (stepNum > this.totalSteps) {
      // torch 1.13 counts one step too many here.
      const steps = rules.oneCycleStepCount ? stepNum : stepNum + 1;
      throw new RangeError(`Tried to step ${steps} times. The specified number of total steps is ${this.totalSteps}`);
    }
    const phases = this._schedulePhases;
    const lrs: number[] = [];
    for (const group of this.optimizer.paramGroups) {
      const value = (key: string): number => group[camelCase(key)] as number;
      let startStep = 0;
      let lr = 0;
      let momentum = 0;
      for (let i = 0; i < phases.length; i++) {
        const endStep = phases[i].end_step;
        if (stepNum <= endStep || i === phases.length - 1) {
          const pct = pyDiv(stepNum - startStep, endStep - startStep);
          lr = this.anneal(value(phases[i].start_lr), value(phases[i].end_lr), pct);
          if (this.cycleMomentum) momentum = this.anneal(value(phases[i].start_momentum), value(phases[i].end_momentum), pct);
          break;
        }
        startStep = phases[i].end_step;
      }
      lrs.push(lr);
      if (this.cycleMomentum) {
        if (this.useBeta1) group.betas = [momentum, ...(group.betas as number[]).slice(1)];
        else group.momentum = momentum;
      }
    }
    return lrs;
  }
}

// ---- SequentialLR ---------------------------------------------------------------

/** Options of {@link SequentialLR}. */
export interface SequentialLROptions {
  /** The schedulers to run one after another, all on this optimizer. */
  schedulers: LRScheduler[];
  /** The epochs at which to switch to the next scheduler (one fewer than `schedulers`). */
  milestones: number[];
  /** The index of the last epoch (default -1). */
  lastEpoch?: number;
  /** Does nothing, as in PyTorch (from torch 2.2 giving it warns that it is deprecated). */
  verbose?: boolean;
}

/**
 * Runs schedulers one after another, switching at each milestone
 * (`SequentialLR`), e.g. a LinearLR warm-up followed by CosineAnnealingLR. As in
 * PyTorch 1.13, each later scheduler starts with `step(0)` (its closed form),
 * which prints PyTorch's deprecation warning about the epoch argument once.
 */
export class SequentialLR extends LRScheduler {
  _schedulers: LRScheduler[];
  _milestones: number[];

  constructor(optimizer: Optimizer, opts: SequentialLROptions) {
    super(optimizer);
    checkOptions('SequentialLR', opts, ['schedulers', 'milestones', 'lastEpoch', 'verbose'], { what: 'options' });
    const schedulers = opts?.schedulers;
    const milestones = opts?.milestones;
    if (!Array.isArray(schedulers) || schedulers.length === 0 || !schedulers.every((s) => s instanceof LRScheduler)) {
      throw new TypeError('SequentialLR: schedulers must be a non-empty array of LR schedulers');
    }
    if (!Array.isArray(milestones)) throw new TypeError(`SequentialLR: milestones must be an array of integers, got ${describe(milestones)}`);
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) {
        throw new Error(
          'Sequential Schedulers expects all schedulers to belong to the same optimizer, but ' +
            `got schedulers at index ${i} to be different than the optimizer passed in.`,
        );
      }
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new Error(
        'Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, ' +
          `but got number of schedulers ${schedulers.length} and the number of milestones to be equal to ${milestones.length}`,
      );
    }
    checkVerbose(opts.verbose);
    this._schedulers = schedulers;
    this._milestones = milestones.map((m) => checkInt(m, 'each milestone'));
    this.lastEpoch = checkInt(opts.lastEpoch ?? -1, 'lastEpoch') + 1;
    // Reset learning rates to their initial values, undo the step each scheduler
    // took when it was made, and take the initial step of the first one only.
    for (const g of this.optimizer.paramGroups) g.lr = g.initialLr as number;
    // torch 2.x undoes the steps of a nested SequentialLR's schedulers instead of its own (`recursive_undo`).
    const undo = (s: LRScheduler): void => {
      if (rules.sequentialRecursiveUndo && s instanceof SequentialLR) s._schedulers.forEach(undo);
      else s.lastEpoch -= 1;
    };
    schedulers.forEach(undo);
    schedulers[0].initialStep();
    this._lastLr = schedulers[0].getLastLr();
  }

  /** Not used: SequentialLR delegates to the scheduler of the current phase. */
  getLr(): number[] {
    throw new Error('SequentialLR has no getLr(); it delegates step() to its schedulers');
  }

  /** Advances the schedule by one epoch, through the scheduler of the current phase. */
  step(): void {
    this.lastEpoch += 1;
    // bisect_right: the number of milestones <= lastEpoch
    let idx = 0;
    while (idx < this._milestones.length && this._milestones[idx] <= this.lastEpoch) idx++;
    const scheduler = this._schedulers[idx];
    if (idx > 0 && this._milestones[idx - 1] === this.lastEpoch) scheduler.step(0);
    else scheduler.step();
    this._lastLr = scheduler.getLastLr();
  }

  /** PyTorch's layout: `_milestones`, `last_epoch`, `_last_lr`, then `_schedulers` (each one's state dict). */
  stateDict(): Record<string, unknown> {
    return {
      _milestones: [...this._milestones],
      last_epoch: this.lastEpoch,
      _last_lr: [...this._lastLr],
      _schedulers: this._schedulers.map((s) => s.stateDict()),
    };
  }

  loadStateDict(stateDict: Record<string, unknown> | Map<string, unknown>): void {
    if (stateDict === null || typeof stateDict !== 'object') {
      throw new TypeError(`loadStateDict(): expected a state dict object, got ${describe(stateDict)}`);
    }
    if (stateDict instanceof Map) stateDict = Object.fromEntries(stateDict) as Record<string, unknown>;
    const subs = stateDict._schedulers;
    if (subs !== undefined && (!Array.isArray(subs) || subs.length !== this._schedulers.length)) {
      throw new Error(`loadStateDict(): expected ${this._schedulers.length} scheduler states in '_schedulers'`);
    }
    if ('_milestones' in stateDict) this._milestones = (copyValue(stateDict._milestones) as number[]).map(Number);
    if ('last_epoch' in stateDict) this.lastEpoch = Number(stateDict.last_epoch);
    if ('_last_lr' in stateDict) this._lastLr = copyValue(stateDict._last_lr) as number[];
    if (Array.isArray(subs)) subs.forEach((s, i) => this._schedulers[i].loadStateDict(s as Record<string, unknown>));
  }
}
