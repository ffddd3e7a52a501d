// torch.optim.Adam, the single-tensor path (`_single_tensor_adam` with
// capturable=False) of the torch release the addon runs on (releases.ts),
// operation for operation so results are bitwise PyTorch's.
import { noGrad } from '../autograd.js';
import { zeros, zerosLike } from '../tensor/creation.js';
import { keep, tidy } from '../tensor/scope.js';
import { Tensor, describe } from '../tensor/tensor.js';
import { Optimizer, type ParamGroup, type ParamsInput, type StateValue, checkNumber } from './optimizer.js';
import { pyPow } from './pymath.js';
import { rules } from './releases.js';

/** Options of {@link Adam} and {@link AdamW}, as in torch.optim (camelCase). */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]); each in [0, 1). */
  betas?: [number, number];
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled weight decay (default 1e-2). */
  weightDecay?: number;
  /** The AMSGrad variant (default false). */
  amsgrad?: boolean;
  /** Maximize the objective instead of minimizing it (default false). */
  maximize?: boolean;
}

/**
 * A parameter group of {@link Adam} / {@link AdamW}. `foreach`, `capturable`,
 * `differentiable` and `fused` are carried for PyTorch's state-dict layout only;
 * the single-tensor update always runs.
 */
export interface AdamParamGroup extends ParamGroup {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

/** Validation shared by Adam and AdamW, with PyTorch's messages. */
export function checkAdamOptions(o: Record<string, unknown>): void {
  checkNumber(o.lr, 'learning rate', (x) => x >= 0);
  checkNumber(o.eps, 'epsilon value', (x) => x >= 0);
  const betas = o.betas;
  if (!Array.isArray(betas) || betas.length !== 2) {
    throw new TypeError(`betas must be an array of two numbers, got ${describe(betas)}`);
  }
  checkNumber(betas[0], 'beta parameter at index 0', (x) => x >= 0 && x < 1);
  checkNumber(betas[1], 'beta parameter at index 1', (x) => x >= 0 && x < 1);
  checkNumber(o.weightDecay, 'weightDecay value', (x) => x >= 0);
}

/** The lazily created state: `step` is a float32 scalar tensor on the CPU, as PyTorch's with capturable=False and fused off. */
export function initAdamState(state: Record<string, StateValue>, param: Tensor, amsgrad: boolean): void {
  state.step = keep(zeros([], { dtype: 'float32' }));
  state.expAvg = keep(zerosLike(param));
  state.expAvgSq = keep(zerosLike(param));
  if (amsgrad) state.maxExpAvgSq = keep(zerosLike(param));
}

/**
 * PyTorch's `__setstate__` for Adam/AdamW: checkpoints from before 1.12 stored
 * `step` as a number. 1.13 converts every state when the first one's `step` is
 * not a tensor; 2.x converts each such state (`rules.adamStepUpgradeEach`).
 */
export function upgradeAdamState(state: Map<Tensor, Record<string, StateValue>>, created: Tensor[]): void {
  const all = [...state.values()].filter((s) => Object.keys(s).length !== 0);
  const stale = rules.adamStepUpgradeEach ? all.filter((s) => !(s.step instanceof Tensor)) : all.length !== 0 && !(all[0].step instanceof Tensor) ? all : [];
  for (const s of stale) {
    const step = keep(zeros([], { dtype: 'float32' }).fill_(Number(s.step)));
    created.push(step);
    s.step = step;
  }
}

/**
 * `1 - beta ** step` and its square root for each (beta, step) once per
 * optimizer step: computing them costs native calls (see pymath.ts) and every
 * parameter usually shares them.
 */
export class BiasCorrections {
  private readonly cache = new Map<string, number>();
  private cached(key: string, compute: () => number): number {
    let v = this.cache.get(key);
    if (v === undefined) {
      v = compute();
      this.cache.set(key, v);
    }
    return v;
  }
  get(beta: number, step: number): number {
    return this.cached(`${beta}:${step}`, () => 1 - pyPow(beta, step));
  }
  /** The square root of {@link BiasCorrections.get}: `math.sqrt(bc)` in 1.13 (IEEE sqrt, correctly rounded), `bc ** 0.5` (libm's pow) in 2.x. */
  sqrt(beta: number, step: number): number {
    return this.cached(`${beta}:${step}:sqrt`, () => {
      const bc = this.get(beta, step);
      return rules.adamPowHalf ? pyPow(bc, 0.5) : Math.sqrt(bc);
    });
  }
}

/**
 * The denominator and the parameter update shared by Adam and AdamW (from
 * `step = step_t.item()` on), in PyTorch's order of operations.
 */
export function adamUpdate(
  param: Tensor,
  expAvg: Tensor,
  expAvgSq: Tensor,
  maxExpAvgSq: Tensor | undefined,
  step: number,
  group: AdamParamGroup,
  corrections: BiasCorrections,
): void {
  const [beta1, beta2] = group.betas;
  const biasCorrection1 = corrections.get(beta1, step);
  const stepSize = group.lr / biasCorrection1;
  const biasCorrection2Sqrt = corrections.sqrt(beta2, step);
  let denom: Tensor;
  if (group.amsgrad) {
    if (maxExpAvgSq === undefined) throw new Error("amsgrad is set but the parameter's state has no 'max_exp_avg_sq'");
    // torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    maxExpAvgSq.copy_(maxExpAvgSq.max(expAvgSq));
    denom = maxExpAvgSq.sqrt().div(biasCorrection2Sqrt).add_(group.eps);
  } else {
    denom = expAvgSq.sqrt().div(biasCorrection2Sqrt).add_(group.eps);
  }
  param.addcdiv_(expAvg, denom, -stepSize);
}

/**
 * Adam (`torch.optim.Adam`), with optional AMSGrad, L2 weight decay and maximize.
 *
 * State per parameter: `step` (a float32 scalar tensor, as PyTorch stores it
 * since 1.12), `expAvg`, `expAvgSq`, and with AMSGrad `maxExpAvgSq` — in the state dict
 * `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`.
 */
export class Adam extends Optimizer<AdamParamGroup> {
  /** @param defaults internal: the group defaults of a subclass (AdamW), in its PyTorch key order. */
  constructor(params: ParamsInput<AdamOptions>, opts: AdamOptions = {}, defaults?: Record<string, unknown>) {
    super(
      params,
      defaults ?? {
        lr: opts.lr ?? 1e-3,
        betas: opts.betas ?? [0.9, 0.999],
        eps: opts.eps ?? 1e-8,
        weightDecay: opts.weightDecay ?? 0,
        amsgrad: opts.amsgrad ?? false,
        maximize: opts.maximize ?? false,
        foreach: null,
        capturable: false,
        differentiable: false,
        fused: rules.adamFusedNone ? null : false,
      },
      opts,
    );
  }

  /** Adam's L2 penalty enters the gradient; AdamW overrides this with decoupled decay. */
  protected weightDecay(param: Tensor, grad: Tensor, group: AdamParamGroup): Tensor {
    return group.weightDecay !== 0 ? grad.add(param, group.weightDecay) : grad;
  }

  protected checkOptions(o: Record<string, unknown>): void {
    checkAdamOptions(o);
  }

  protected upgradeState(state: Map<Tensor, Record<string, StateValue>>, created: Tensor[]): void {
    upgradeAdamState(state, created);
  }

  /** One Adam step over every parameter that has a gradient; returns the closure's loss, if one is given. */
  step<T = unknown>(closure?: () => T): T | undefined {
    const loss = this.runClosure(closure);
    const corrections = new BiasCorrections();
    noGrad(() => {
      for (const group of this.paramGroups) {
        const [beta1, beta2] = group.betas;
        for (const param of group.params) {
          tidy(() => {
            const g = param.grad;
            if (g === null) return;
            const state = this.stateOf(param);
            if (Object.keys(state).length === 0) initAdamState(state, param, group.amsgrad);
            const stepT = state.step as Tensor;
            const grad = this.weightDecay(param, group.maximize ? g.neg() : g, group);
            stepT.add_(1);
            const expAvg = state.expAvg as Tensor;
            const expAvgSq = state.expAvgSq as Tensor;
            if (rules.adamLerp) expAvg.lerp_(grad, 1 - beta1);
            else expAvg.mul_(beta1).add_(grad, 1 - beta1);
            expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2); // grad.conj() is grad for real tensors
            const step = stepT.item() as number;
            adamUpdate(param, expAvg, expAvgSq, state.maxExpAvgSq as Tensor | undefined, step, group, corrections);
          });
        }
      }
    });
    return loss;
  }
}
