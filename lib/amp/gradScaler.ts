// torch.amp.GradScaler (torch/amp/grad_scaler.py; torch.cuda.amp.GradScaler before 2.3): dynamic
// loss scaling for float16 training. The loss is multiplied by the scale before backward(); before
// the optimizer steps, the gradients are divided by it and checked for infs/NaNs, and a step with
// any is skipped; update() then backs the scale off, or grows it after `growthInterval` clean steps.
// The math is libtorch's, through the dispatcher, as in PyTorch: aten's
// `_amp_foreach_non_finite_check_and_unscale_` and `_amp_update_scale_`. Which release's rules
// apply (CPU support, the scale's shape) is lib/amp/releases.ts's.
import { noGrad } from '../autograd.js';
import { native, op } from '../native.js';
import { Optimizer } from '../optim/optimizer.js';
import { warnOnce } from '../optim/warnings.js';
import { cuda } from '../runtime.js';
import { full } from '../tensor/creation.js';
import { dispose, keep, tidy } from '../tensor/scope.js';
import { type Device, Tensor, wrap } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import { type AmpRules, ampRulesNow } from './releases.js';

/** The device types a GradScaler takes here: `'cuda'` (PyTorch's default) and `'cpu'`. */
export type GradScalerDeviceType = 'cpu' | 'cuda';

/** `torch.amp.GradScaler`'s keyword arguments. */
export interface GradScalerOptions {
  /** The initial scale factor (default 2**16). A finite number above 0. */
  initScale?: number;
  /** What `update()` multiplies the scale by after `growthInterval` steps without infs/NaNs (default 2; must be > 1). */
  growthFactor?: number;
  /** What `update()` multiplies the scale by after a step with infs/NaNs (default 0.5; must be < 1). */
  backoffFactor?: number;
  /** How many consecutive steps without infs/NaNs grow the scale (default 2000; a positive integer). */
  growthInterval?: number;
  /** `false` turns scaling off: `scale()` returns its input, `step()` just steps, the rest do nothing (default true). */
  enabled?: boolean;
}

/**
 * `GradScaler.state_dict()` with PyTorch's keys: the scale (a number), the factors, the growth
 * interval and the count of consecutive clean steps. Empty (`{}`) for a disabled scaler.
 */
export interface GradScalerStateDict {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

/** What {@link GradScaler.loadStateDict} takes: a state dict as `stateDict()` returns it, or PyTorch's as `load()` reads it (a Map). */
export type GradScalerStateDictInput = Partial<Record<keyof GradScalerStateDict, number | bigint>> | Map<string, unknown>;

/** torch.amp.grad_scaler.OptState: where an optimizer stands in the current iteration. */
enum OptState {
  READY = 0,
  UNSCALED = 1,
  STEPPED = 2,
}

/** `_per_optimizer_states[id(optimizer)]`: the stage, and one found-inf flag tensor per device. */
interface PerOptimizerState {
  stage: OptState;
  foundInfPerDevice: Map<Device, Tensor>;
}

const CUDA_MISSING = 'torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.';

function checkNumber(fn: string, what: string, v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`${fn}: option '${what}' must be a number, got ${describe(v)}`);
  if (Number.isNaN(v)) throw new RangeError(`${fn}: option '${what}' must be a number, got NaN`);
  return v;
}

function checkInterval(fn: string, what: string, v: unknown): number {
  if (typeof v === 'bigint') v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${fn}: ${what} must be an integer, got ${describe(v)}`);
  if (v < 1) throw new RangeError(`${fn}: ${what} must be a positive integer, got ${describe(v)}`);
  return v;
}

/**
 * Dynamic loss scaling for mixed-precision training (`torch.amp.GradScaler`), the partner of
 * {@link autocast} with float16: small float16 gradients underflow to zero unless the loss is
 * scaled up before `backward()`. One scaler serves the whole training run:
 *
 * ```ts
 * const scaler = new amp.GradScaler('cpu');
 * for (const [x, y] of loader) {
 *   opt.zeroGrad();
 *   const loss = autocast('cpu', { dtype: 'float16' }, () => F.crossEntropy(model(x), y));
 *   scaler.scale(loss).backward(); // scaled gradients
 *   scaler.step(opt);              // unscales them; skips the step if any is inf/NaN
 *   scaler.update();               // backs the scale off after a skip, grows it after growthInterval clean steps
 * }
 * ```
 *
 * As in PyTorch: the scale is a float32 tensor made on the first `scale()`, on the device of what
 * it scales; `unscale_(opt)` may be called once between `backward()` and `step(opt)` (to clip the
 * gradients, say); a step closure is refused. The running libtorch's release decides, as PyTorch's
 * Python of that release does: from PyTorch 2.3 `'cpu'` works (its kernels are libtorch's); before
 * (libtorch 1.13) GradScaler is CUDA's only, and without CUDA it warns "torch.cuda.amp.GradScaler
 * is enabled, but CUDA is not available.  Disabling." and is disabled, whatever the device type.
 * `'cuda'` without CUDA does the same in every release. A disabled scaler returns `scale()`'s input
 * as it is, `step(opt)` just calls `opt.step()`, `getScale()` is 1 and `stateDict()` is `{}`.
 *
 * The scale tensors outlive any `tidy` scope; {@link GradScaler.dispose} frees them (PyTorch has no such call).
 */
export class GradScaler {
  /** The device type given (`torch.amp.GradScaler`'s `_device`). */
  readonly device: GradScalerDeviceType;
  private enabled: boolean;
  private initScale: number;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private initGrowthTracker = 0;
  private _scale: Tensor | null = null;
  private _growthTracker: Tensor | null = null;
  private perOptimizer = new Map<Optimizer, PerOptimizerState>();
  private readonly rules: Readonly<AmpRules>;

  /**
   * @param device `'cuda'` (the default, as in PyTorch) or `'cpu'`.
   * @param opts `initScale`, `growthFactor`, `backoffFactor`, `growthInterval`, `enabled` (see {@link GradScalerOptions}).
   */
  constructor(device: GradScalerDeviceType = 'cuda', opts: GradScalerOptions = {}) {
    const FN = 'GradScaler()';
    if (typeof device !== 'string') throw new TypeError(`${FN}: argument 'device' must be a string, got ${describe(device)}`);
    if (device !== 'cpu' && device !== 'cuda') throw new RangeError(`${FN}: argument 'device' must be 'cpu' or 'cuda', got ${describe(device)}`);
    checkOptions(FN, opts, ['initScale', 'growthFactor', 'backoffFactor', 'growthInterval', 'enabled']);
    this.rules = ampRulesNow;
    this.device = device;
    const enabled = opts.enabled ?? true;
    if (typeof enabled !== 'boolean') throw new TypeError(`${FN}: option 'enabled' must be a boolean, got ${describe(enabled)}`);
    this.initScale = checkNumber(FN, 'initScale', opts.initScale ?? 2 ** 16);
    this.growthFactor = checkNumber(FN, 'growthFactor', opts.growthFactor ?? 2.0);
    this.backoffFactor = checkNumber(FN, 'backoffFactor', opts.backoffFactor ?? 0.5);
    this.growthInterval = checkInterval(FN, "option 'growthInterval'", opts.growthInterval ?? 2000);

    this.enabled = enabled;
    if (enabled && !cuda.isAvailable() && (device === 'cuda' || !this.rules.cpuGradScaler)) {
      // PyTorch's warning (torch.cuda.amp.GradScaler before 2.3 is CUDA's whatever one wants).
      warnOnce(CUDA_MISSING);
      this.enabled = false;
    } else if (enabled && device === 'cpu' && !this.rules.cpuGradScaler) {
      // CUDA is there, but this release's GradScaler and aten kernels are CUDA's only.
      warnOnce("GradScaler('cpu') needs PyTorch 2.3 or later (libtorch has no CPU kernels for it before).  Disabling.");
      this.enabled = false;
    }
    if (this.enabled) {
      // PyTorch asserts these only when enabled.
      if (!(this.growthFactor > 1.0))
        throw new RangeError(`${FN}: option 'growthFactor' must be > 1.0 (The growth factor must be > 1.0.), got ${this.growthFactor}`);
      if (!(this.backoffFactor < 1.0))
        throw new RangeError(`${FN}: option 'backoffFactor' must be < 1.0 (The backoff factor must be < 1.0.), got ${this.backoffFactor}`);
      if (!Number.isFinite(this.initScale) || this.initScale <= 0) {
        throw new RangeError(`${FN}: option 'initScale' must be a finite number above 0, got ${this.initScale}`);
      }
    }
  }

  private checkScaleGrowthTracker(funcname: string): [Tensor, Tensor] {
    const fix = 'This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration.';
    if (this._scale === null || this._growthTracker === null) throw new Error(`GradScaler.${funcname}(): Attempted ${funcname} but _scale is None.  ${fix}`);
    return [this._scale, this._growthTracker];
  }

  private lazyInitScaleGrowthTracker(device: Device): void {
    const shape = this.rules.gradScalerScalarScale ? [] : [1];
    this._scale = keep(full(shape, this.initScale, { dtype: 'float32', device }));
    this._growthTracker = keep(full(shape, this.initGrowthTracker, { dtype: 'int32', device }));
  }

  private stateOf(optimizer: Optimizer): PerOptimizerState {
    let s = this.perOptimizer.get(optimizer);
    if (s === undefined) {
      s = { stage: OptState.READY, foundInfPerDevice: new Map() };
      this.perOptimizer.set(optimizer, s);
    }
    return s;
  }

  /**
   * Multiplies a tensor, or an array of them (nested arrays too), by the scale (`scaler.scale(outputs)`):
   * the scaled loss to call `backward()` on. A disabled scaler returns `outputs` itself.
   *
   * @param outputs a Tensor or an array of Tensors; other iterables give an array.
   */
  scale(outputs: Tensor): Tensor;
  scale(outputs: readonly Tensor[]): Tensor[];
  scale(outputs: Iterable<Tensor | Iterable<Tensor>>): unknown[];
  scale(outputs: Tensor | Iterable<Tensor | Iterable<Tensor>>): Tensor | unknown[] {
    // Checked when disabled too: a wrong type should not pass silently because CUDA is missing.
    checkOutputs(outputs);
    if (!this.enabled) return outputs as Tensor | unknown[];
    const scaleTo = (t: Tensor): Tensor => {
      if (this._scale === null) this.lazyInitScaleGrowthTracker(t.device);
      const s = this._scale as Tensor;
      if (s.device === t.device) return t.mul(s);
      // _MultiDeviceReplicator: a copy of the scale on the output's device.
      return tidy(() => t.mul(s.to(t.device)));
    };
    const apply = (v: unknown): unknown => {
      if (v instanceof Tensor) return scaleTo(v);
      checkOutputs(v); // what a generator gives is only seen here
      return [...(v as Iterable<unknown>)].map(apply);
    };
    return apply(outputs) as Tensor | unknown[];
  }

  /**
   * Divides the gradients of `optimizer`'s parameters by the scale, in place, and records whether
   * any is inf or NaN (`scaler.unscale_(optimizer)`). Optional: `step()` does it when it was not
   * called; call it between `backward()` and `step()` to work on the real gradients (clipping).
   * Once per optimizer per iteration: a second call before `update()`, or one after `step()`, is an Error.
   */
  unscale_(optimizer: Optimizer): void {
    checkOptimizer('unscale_', optimizer);
    if (!this.enabled) return;
    const [scale] = this.checkScaleGrowthTracker('unscale_');
    const state = this.stateOf(optimizer);
    if (state.stage === OptState.UNSCALED) {
      throw new Error('GradScaler.unscale_(): unscale_() has already been called on this optimizer since the last update().');
    }
    if (state.stage === OptState.STEPPED) throw new Error('GradScaler.unscale_(): unscale_() is being called after step().');
    state.foundInfPerDevice = tidy(() => {
      // FP32 division can be imprecise for certain compile options, so PyTorch takes the reciprocal in FP64.
      const invScale = wrap(native.call(op('aten::reciprocal'), scale.double()._h)).float();
      const foundInf = full(this.rules.gradScalerScalarScale ? [] : [1], 0.0, { dtype: 'float32', device: scale.device });
      return this.unscaleGrads(optimizer, invScale, foundInf, false);
    });
    state.stage = OptState.UNSCALED;
  }

  /** `_unscale_grads_`: the gradients grouped by device and dtype, one libtorch call per group. */
  private unscaleGrads(optimizer: Optimizer, invScale: Tensor, foundInf: Tensor, allowFp16: boolean): Map<Device, Tensor> {
    const perDeviceInvScale = new Map<Device, Tensor>();
    const perDeviceFoundInf = new Map<Device, Tensor>();
    const replica = (cache: Map<Device, Tensor>, master: Tensor, device: Device): Tensor => {
      let t = cache.get(device);
      if (t === undefined) {
        t = master.to(device, { copy: true });
        cache.set(device, t);
      }
      return t;
    };
    const grouped = new Map<Device, Map<string, Tensor[]>>();
    noGrad(() => {
      for (const group of optimizer.paramGroups) {
        for (const param of group.params) {
          const grad = param.grad;
          if (grad === null) continue;
          if (!allowFp16 && grad.dtype === 'float16') {
            throw new TypeError(
              "GradScaler.unscale_(): Attempting to unscale FP16 gradients. The parameters of argument 'optimizer' must be float32 (autocast keeps them so); their gradients are float16.",
            );
          }
          let byDtype = grouped.get(grad.device);
          if (byDtype === undefined) {
            byDtype = new Map();
            grouped.set(grad.device, byDtype);
          }
          const list = byDtype.get(grad.dtype);
          if (list === undefined) byDtype.set(grad.dtype, [grad]);
          else list.push(grad);
        }
      }
      for (const [device, byDtype] of grouped) {
        for (const grads of byDtype.values()) {
          native.call(
            op('aten::_amp_foreach_non_finite_check_and_unscale_'),
            grads.map((g) => g._h),
            replica(perDeviceFoundInf, foundInf, device)._h,
            replica(perDeviceInvScale, invScale, device)._h,
          );
        }
      }
    });
    for (const t of perDeviceFoundInf.values()) keep(t);
    return perDeviceFoundInf;
  }

  /**
   * Unscales the gradients (unless `unscale_` did) and calls `optimizer.step(...args)` if none is
   * inf or NaN (`scaler.step(optimizer)`); returns the step's result, or undefined when skipped.
   * Once per optimizer per iteration: a second call before `update()` is an Error. A closure is
   * refused while enabled, as in PyTorch; a disabled scaler just calls `optimizer.step(...args)`.
   */
  step<T = unknown>(optimizer: Optimizer, ...args: unknown[]): T | undefined {
    checkOptimizer('step', optimizer);
    const stepFn = optimizer.step as (...a: unknown[]) => T | undefined;
    if (!this.enabled) return stepFn.apply(optimizer, args);
    if (args.some((a) => typeof a === 'function')) {
      throw new TypeError(
        'GradScaler.step(): a closure among the arguments for optimizer.step(): Closure use is not currently supported if GradScaler is enabled.',
      );
    }
    this.checkScaleGrowthTracker('step');
    const state = this.stateOf(optimizer);
    if (state.stage === OptState.STEPPED) throw new Error('GradScaler.step(): step() has already been called since the last update().');
    if (state.stage === OptState.READY) this.unscale_(optimizer);
    if (state.foundInfPerDevice.size === 0) {
      throw new Error("GradScaler.step(): No inf checks were recorded for this optimizer (none of argument 'optimizer''s parameters has a gradient).");
    }
    let retval: T | undefined;
    // _maybe_opt_step: step only if no device found an inf/NaN.
    let found = 0;
    for (const t of state.foundInfPerDevice.values()) found += t.item() as number;
    if (!found) retval = stepFn.apply(optimizer, args);
    state.stage = OptState.STEPPED;
    return retval;
  }

  /**
   * Updates the scale at the end of an iteration (`scaler.update(new_scale=None)`): times
   * `backoffFactor` if any optimizer's step this iteration found an inf/NaN, times `growthFactor`
   * after `growthInterval` consecutive clean iterations (libtorch's `_amp_update_scale_`). With
   * `newScale` (a number, or a one-element float32 tensor without grad on the scaler's device),
   * the scale is set to it instead.
   */
  update(newScale?: number | Tensor): void {
    const FN = 'GradScaler.update()';
    if (newScale !== undefined && typeof newScale !== 'number' && !(newScale instanceof Tensor)) {
      throw new TypeError(`${FN}: argument 'newScale' must be a number or a Tensor, got ${describe(newScale)}`);
    }
    if (!this.enabled) return;
    const [scale, growthTracker] = this.checkScaleGrowthTracker('update');
    if (newScale !== undefined) {
      if (typeof newScale === 'number') {
        if (Number.isNaN(newScale)) throw new RangeError(`${FN}: argument 'newScale' must be a number, got NaN`);
        scale.fill_(newScale);
      } else {
        const reason = 'new_scale should be a float or a 1-element torch.cuda.FloatTensor or torch.FloatTensor with requires_grad=False.';
        if (newScale.isDisposed) throw new TypeError(`${FN}: argument 'newScale' is a disposed Tensor`);
        if (newScale.dtype !== 'float32' || newScale.numel() !== 1 || newScale.requiresGrad || deviceType(newScale.device) !== deviceType(scale.device)) {
          throw new TypeError(
            `${FN}: argument 'newScale': ${reason} Got ${newScale.dtype} ${JSON.stringify(newScale.shape)} on ${newScale.device}${newScale.requiresGrad ? ' requiring grad' : ''}`,
          );
        }
        noGrad(() => scale.copy_(newScale.reshape(scale.shape)));
      }
    } else {
      const foundInfs = [...this.perOptimizer.values()].flatMap((s) => [...s.foundInfPerDevice.values()]);
      if (foundInfs.length === 0) throw new Error(`${FN}: No inf checks were recorded prior to update() (call step(optimizer) first).`);
      tidy(() => {
        const onScaleDevice = foundInfs.map((t) => (t.device === scale.device ? t : t.to(scale.device)));
        const combined = onScaleDevice[0];
        for (let i = 1; i < onScaleDevice.length; i++) combined.add_(onScaleDevice[i]);
        native.call(op('aten::_amp_update_scale_'), scale._h, growthTracker._h, combined._h, this.growthFactor, this.backoffFactor, this.growthInterval);
      });
    }
    // Ready for the next iteration.
    this.clearOptimizerStates();
  }

  private clearOptimizerStates(): void {
    for (const s of this.perOptimizer.values()) dispose([...s.foundInfPerDevice.values()]);
    this.perOptimizer = new Map();
  }

  /** The current scale as a number (`get_scale()`): `initScale` before the first `scale()`, 1 when disabled. */
  getScale(): number {
    if (!this.enabled) return 1.0;
    return this._scale === null ? this.initScale : (this._scale.item() as number);
  }

  /** The factor the scale grows by (`get_growth_factor()`). */
  getGrowthFactor(): number {
    return this.growthFactor;
  }

  /** Sets the factor the scale grows by (`set_growth_factor()`). */
  setGrowthFactor(newFactor: number): void {
    this.growthFactor = checkNumber('GradScaler.setGrowthFactor()', 'newFactor', newFactor);
  }

  /** The factor the scale backs off by (`get_backoff_factor()`). */
  getBackoffFactor(): number {
    return this.backoffFactor;
  }

  /** Sets the factor the scale backs off by (`set_backoff_factor()`). */
  setBackoffFactor(newFactor: number): void {
    this.backoffFactor = checkNumber('GradScaler.setBackoffFactor()', 'newFactor', newFactor);
  }

  /** The number of clean steps that grow the scale (`get_growth_interval()`). */
  getGrowthInterval(): number {
    return this.growthInterval;
  }

  /** Sets the number of clean steps that grow the scale (`set_growth_interval()`). */
  setGrowthInterval(newInterval: number): void {
    this.growthInterval = checkInterval('GradScaler.setGrowthInterval()', "argument 'newInterval'", newInterval);
  }

  private getGrowthTracker(): number {
    if (!this.enabled) return 0;
    return this._growthTracker === null ? this.initGrowthTracker : (this._growthTracker.item() as number);
  }

  /** Whether this scaler scales (`is_enabled()`): false when made with `enabled: false` or disabled for want of CUDA/CPU support. */
  isEnabled(): boolean {
    return this.enabled;
  }

  /**
   * The scaler's state (`state_dict()`) with PyTorch's keys: `scale`, `growth_factor`,
   * `backoff_factor`, `growth_interval`, `_growth_tracker`; `{}` when disabled. Call it after
   * `update()`. `save()` writes it for PyTorch's `load_state_dict` (integral numbers as Python ints).
   */
  stateDict(): GradScalerStateDict | Record<string, never> {
    if (!this.enabled) return {};
    return {
      scale: this.getScale(),
      growth_factor: this.growthFactor,
      backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval,
      _growth_tracker: this.getGrowthTracker(),
    };
  }

  /**
   * Loads a state from {@link stateDict} or PyTorch's `scaler.state_dict()` (as `load()` reads it:
   * a Map) (`load_state_dict()`). A disabled scaler ignores it; an empty one is an Error, as in
   * PyTorch (it came from a disabled scaler).
   */
  loadStateDict(stateDict: GradScalerStateDictInput): void {
    const FN = 'GradScaler.loadStateDict()';
    if (stateDict === null || typeof stateDict !== 'object' || Array.isArray(stateDict) || stateDict instanceof Tensor) {
      throw new TypeError(`${FN}: argument 'stateDict' must be an object or a Map, got ${describe(stateDict)}`);
    }
    const get = (k: string): unknown => (stateDict instanceof Map ? stateDict.get(k) : (stateDict as Record<string, unknown>)[k]);
    if (!this.enabled) return;
    const size = stateDict instanceof Map ? stateDict.size : Object.keys(stateDict).length;
    if (size === 0) {
      throw new Error(`${FN}: The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler.`);
    }
    const num = (k: string): number => {
      let v = get(k);
      if (typeof v === 'bigint') v = Number(v);
      if (typeof v !== 'number') throw new TypeError(`${FN}: argument 'stateDict' must hold a number at '${k}', got ${describe(v)}`);
      return v;
    };
    const scale = num('scale');
    const growthFactor = num('growth_factor');
    const backoffFactor = num('backoff_factor');
    const growthInterval = checkInterval(FN, "argument 'stateDict''s 'growth_interval'", get('growth_interval'));
    const growthTracker = num('_growth_tracker');
    if (!Number.isInteger(growthTracker) || growthTracker < 0) {
      throw new RangeError(`${FN}: argument 'stateDict''s '_growth_tracker' must be a non-negative integer, got ${growthTracker}`);
    }
    this.initScale = scale;
    this._scale?.fill_(scale);
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
    this.initGrowthTracker = growthTracker;
    this._growthTracker?.fill_(growthTracker);
  }

  /** Frees the scale and growth-tracker tensors and any pending inf flags; the scaler starts over lazily if used again. */
  dispose(): void {
    this.clearOptimizerStates();
    if (this._scale !== null) {
      this.initScale = this._scale.item() as number;
      this.initGrowthTracker = this._growthTracker!.item() as number;
    }
    dispose([this._scale, this._growthTracker].filter((t): t is Tensor => t !== null));
    this._scale = null;
    this._growthTracker = null;
  }
}

const deviceType = (d: Device): string => d.split(':')[0];

function checkOptimizer(fn: string, optimizer: unknown): asserts optimizer is Optimizer {
  if (!(optimizer instanceof Optimizer)) {
    throw new TypeError(`GradScaler.${fn}(): argument 'optimizer' must be an optim.Optimizer, got ${describe(optimizer)}`);
  }
}

function checkOutputs(outputs: unknown, depth = 0): void {
  const bad = () => new TypeError(`GradScaler.scale(): argument 'outputs' must be a Tensor or an iterable of Tensors, got ${describe(outputs)}`);
  if (outputs instanceof Tensor) {
    if (outputs.isDisposed) throw new TypeError("GradScaler.scale(): argument 'outputs' holds a disposed Tensor");
    return;
  }
  if (
    outputs === null ||
    typeof outputs !== 'object' ||
    outputs instanceof Map ||
    typeof (outputs as Iterable<unknown>)[Symbol.iterator] !== 'function' ||
    depth > 32
  )
    throw bad();
  // A generator would be used up here: only arrays are looked into before scaling.
  if (Array.isArray(outputs)) for (const v of outputs) checkOutputs(v, depth + 1);
}
