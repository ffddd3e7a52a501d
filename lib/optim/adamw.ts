// torch.optim.AdamW, the single-tensor path of PyTorch 1.13 (`_single_tensor_adamw`
// with capturable=False), operation for operation so results are bitwise PyTorch's.
import { noGrad } from '../autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type AdamOptions, type AdamParamGroup, BiasCorrections, adamUpdate, checkAdamOptions, initAdamState, upgradeAdamState,
} from './adam.js';
import { Optimizer, type ParamsInput, type StateValue } from './optimizer.js';

/**
 * AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay — parameters
 * shrink by `lr * weightDecay` each step instead of the decay entering the
 * gradient. `weightDecay` defaults to 1e-2. State as {@link Adam}'s.
 */
export class AdamW extends Optimizer<AdamParamGroup> {
  constructor(params: ParamsInput<AdamOptions>, opts: AdamOptions = {}) {
    // AdamW's defaults have their own order in PyTorch (foreach before maximize, no differentiable/fused).
    super(params, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 1e-2,
      amsgrad: opts.amsgrad ?? false,
      foreach: null,
      maximize: opts.maximize ?? false,
      capturable: false,
    });
  }

  protected checkOptions(o: Record<string, unknown>): void {
    checkAdamOptions(o);
  }

  protected upgradeState(state: Map<Tensor, Record<string, StateValue>>, created: Tensor[]): void {
    upgradeAdamState(state, created);
  }

  /** One AdamW step over every parameter that has a gradient; returns the closure's loss, if one is given. */
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
            const grad = group.maximize ? g.neg() : g;
            const stepT = state.step as Tensor;
            stepT.add_(1);
            // Decoupled weight decay, applied even when it is 0 (a multiply by 1 changes nothing).
            param.mul_(1 - group.lr * group.weightDecay);
            const expAvg = state.expAvg as Tensor;
            const expAvgSq = state.expAvgSq as Tensor;
            expAvg.mul_(beta1).add_(grad, 1 - beta1);
            expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
            const step = stepT.item() as number;
            adamUpdate(param, expAvg, expAvgSq, state.maxExpAvgSq as Tensor | undefined, step, group, corrections);
          });
        }
      }
    });
    return loss;
  }
}
