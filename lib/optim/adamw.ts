// torch.optim.AdamW, the single-tensor path (`_single_tensor_adamw` with
// capturable=False) of the torch release the addon runs on (releases.ts): Adam's
// step with the weight decay decoupled from the gradient.
import type { Tensor } from '../tensor/tensor.js';
import { Adam, type AdamOptions, type AdamParamGroup } from './adam.js';
import type { ParamsInput } from './optimizer.js';
import { rules } from './releases.js';

/**
 * AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay — parameters
 * shrink by `lr * weightDecay` each step instead of the decay entering the
 * gradient. `weightDecay` defaults to 1e-2. State as {@link Adam}'s.
 */
export class AdamW extends Adam {
  constructor(params: ParamsInput<AdamOptions>, opts: AdamOptions = {}) {
    // AdamW's defaults have their own order in PyTorch (foreach before maximize); 1.13 has no differentiable/fused.
    super(params, opts, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 1e-2,
      amsgrad: opts.amsgrad ?? false,
      foreach: null,
      maximize: opts.maximize ?? false,
      capturable: false,
      ...(rules.adamwDifferentiableFused ? { differentiable: false, fused: null } : {}),
    });
  }

  // Decoupled weight decay, applied even when it is 0 (a multiply by 1 changes nothing).
  protected override weightDecay(param: Tensor, grad: Tensor, group: AdamParamGroup): Tensor {
    param.mul_(1 - group.lr * group.weightDecay);
    return grad;
  }
}
