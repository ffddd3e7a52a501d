// torch.optim.SGD, the single-tensor path (`_single_tensor_sgd`) of the torch
// release the addon runs on (releases.ts), operation for operation so results
// are bitwise PyTorch's.
import { noGrad } from '../autograd.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { Optimizer, type ParamGroup, type ParamsInput, checkNumber } from './optimizer.js';
import { rules } from './releases.js';

/** Options of {@link SGD}, as in `torch.optim.SGD` (camelCase). */
export interface SGDOptions {
  /** Learning rate: with torch 1.13 required, here or in every parameter group; from torch 2.2 it defaults to 1e-3. */
  lr?: number;
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Dampening for momentum (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (default false); needs momentum > 0 and zero dampening. */
  nesterov?: boolean;
  /** Maximize the objective instead of minimizing it (default false). */
  maximize?: boolean;
}

/** A parameter group of {@link SGD}. `foreach`, `differentiable` and (torch 2.x) `fused` are carried for PyTorch's state-dict layout only. */
export interface SGDParamGroup extends ParamGroup {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/**
 * Stochastic gradient descent, optionally with momentum (`torch.optim.SGD`).
 *
 * ```ts
 * const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
 * opt.zeroGrad();
 * loss.backward();
 * opt.step();
 * ```
 *
 * State per parameter: `momentumBuffer` (`momentum_buffer` in the state dict).
 * Without momentum, torch 1.13 records it as null for every parameter that had
 * a gradient and torch 2.x records no state; this does as the running torch does.
 */
export class SGD extends Optimizer<SGDParamGroup> {
  constructor(params: ParamsInput<SGDOptions>, opts: SGDOptions = {}) {
    // PyTorch's defaults, in its order (the state dict lists options in this order).
    super(
      params,
      {
        lr: opts.lr ?? (rules.sgdDefaultLr ? 1e-3 : undefined),
        momentum: opts.momentum ?? 0,
        dampening: opts.dampening ?? 0,
        weightDecay: opts.weightDecay ?? 0,
        nesterov: opts.nesterov ?? false,
        maximize: opts.maximize ?? false,
        foreach: null,
        differentiable: false,
        ...(rules.sgdFused ? { fused: null } : {}),
      },
      opts,
    );
  }

  /** As PyTorch's `__setstate__`: torch 2.x fills a missing `fused` with False, not the constructor's None. */
  protected override fillGroupDefaults(group: Record<string, unknown>): void {
    const hadFused = 'fused' in group;
    super.fillGroupDefaults(group);
    if (rules.sgdFused && !hadFused) group.fused = false;
  }

  protected checkOptions(o: Record<string, unknown>): void {
    if (o.lr !== undefined) checkNumber(o.lr, 'learning rate', (x) => x >= 0);
    checkNumber(o.momentum, 'momentum value', (x) => x >= 0);
    checkNumber(o.dampening, 'dampening value', (x) => !Number.isNaN(x));
    checkNumber(o.weightDecay, 'weightDecay value', (x) => x >= 0);
    if (o.nesterov && ((o.momentum as number) <= 0 || o.dampening !== 0)) {
      throw new RangeError('Nesterov momentum requires a momentum and zero dampening');
    }
  }

  /** One SGD step over every parameter that has a gradient; returns the closure's loss, if one is given. */
  step<T = unknown>(closure?: () => T): T | undefined {
    const loss = this.runClosure(closure);
    noGrad(() => {
      for (const group of this.paramGroups) {
        const { weightDecay, momentum, lr, dampening, nesterov, maximize } = group;
        for (const param of group.params) {
          // One tidy per parameter: temporaries are freed as soon as Python's would be.
          tidy(() => {
            const grad = param.grad;
            if (grad === null) return;
            let dP: Tensor = maximize ? grad.neg() : grad;
            if (weightDecay !== 0) dP = dP.add(param, weightDecay);
            if (momentum !== 0) {
              const state = this.stateOf(param);
              let buf = (state.momentumBuffer as Tensor | null | undefined) ?? null;
              if (buf === null) {
                buf = keep(dP.clone());
                state.momentumBuffer = buf;
              } else {
                buf.mul_(momentum).add_(dP, 1 - dampening);
              }
              dP = nesterov ? dP.add(buf, momentum) : buf;
            } else if (!rules.sgdFused) {
              // torch 1.13 stores None for every parameter with a gradient when momentum is 0.
              this.stateOf(param).momentumBuffer ??= null;
            }
            param.add_(dP, -lr);
          });
        }
      }
    });
    return loss;
  }
}
