// Which torch.optim the optimizers and schedulers follow: the Python algorithm
// and state-dict layout of the torch release whose libtorch the addon runs on
// (`version.torch`), so that the same inputs give PyTorch's numbers bit for bit.
//
// Every difference between releases is one named switch here, true from the
// release that introduced it. "Verified" means: read in that release's
// torch/optim sources, and for 1.13 and 2.6 also matched bit for bit by the
// live-oracle tests (Debian 12's libtorch 1.13 and Debian 13's 2.6); 2.13 (pip)
// was read and printed only, no addon runs on it here. The release given for a
// change between 1.13 and 2.6 (2.0–2.5), or after 2.6 (2.7–2.12), is PyTorch's
// history as far as known, unverified.
//
// Known differences of releases after 2.6 that are not followed (read in 2.13,
// unverified elsewhere): Adam's `decoupled_weight_decay` option and AdamW as
// Adam with it (param_groups gain `decoupled_weight_decay`, AdamW's key order
// becomes Adam's); the schedulers' `_is_initial` flag, their state dicts
// without `verbose`, and SequentialLR's step counts. On such a release the
// rules of 2.6 apply where no switch says otherwise.
import { releaseOf, version } from '../runtime.js';

/** The switches of one torch release; see {@link optimRules}. */
export interface OptimRules {
  /**
   * Adam/AdamW: the first moment is `exp_avg.lerp_(grad, 1 - beta1)`, not
   * `exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)` (different roundings).
   * pytorch#104796 (July 2023): 2.1. Verified: 1.13 mul/add; 2.6, 2.13 lerp.
   */
  adamLerp: boolean;
  /**
   * Adam/AdamW: `bias_correction2 ** 0.5` (libm's pow) instead of
   * `math.sqrt(bias_correction2)` (2.0–2.1's `_dispatch_sqrt` still called
   * math.sqrt). Verified: 1.13 sqrt; 2.6, 2.13 `** 0.5`. From 2.2, unverified.
   */
  adamPowHalf: boolean;
  /** Adam/AdamW: `fused` defaults to None (1.13's Adam: False). Verified 1.13, 2.6, 2.13; from 2.0, unverified. */
  adamFusedNone: boolean;
  /**
   * AdamW's param groups gain `differentiable` and `fused` (1.13 has neither).
   * Verified 1.13, 2.6 (2.13 reorders them, see the header). From 2.0, unverified.
   */
  adamwDifferentiableFused: boolean;
  /**
   * Adam/AdamW `__setstate__` converts a number `step` (checkpoints before 1.12)
   * per parameter; 1.13 looks at the first state only and converts all or none.
   * Verified 1.13, 2.6, 2.13; from 2.0 (capturable/fused step handling), unverified.
   */
  adamStepUpgradeEach: boolean;
  /**
   * SGD: param groups gain `fused` (None; `__setstate__` fills in False), and
   * without momentum no state is stored (1.13 stores `momentum_buffer: None`
   * for every parameter with a gradient). Verified 1.13, 2.6, 2.13. Fused SGD,
   * pytorch#94791: 2.2, unverified.
   */
  sgdFused: boolean;
  /** SGD: `lr` defaults to 1e-3 (required in 1.13). pytorch#114467 (Nov 2023): 2.2. Verified 1.13, 2.6, 2.13. */
  sgdDefaultLr: boolean;
  /**
   * LR schedulers: `verbose` is deprecated (a warning at construction when it
   * is given) and `step()` prints nothing. Verified 1.13 prints, 2.6 warns;
   * 2.2, unverified.
   */
  schedulerVerboseDeprecated: boolean;
  /**
   * LR schedulers: the order warning ("`lr_scheduler.step()` before
   * `optimizer.step()`") asks whether the optimizer ever stepped
   * (`_opt_called`); 1.13 counts its steps since the scheduler was made.
   * Verified 1.13, 2.6, 2.13; 2.2, unverified.
   */
  schedulerOptCalled: boolean;
  /**
   * SequentialLR undoes the initial step of nested schedulers recursively
   * (`recursive_undo`) instead of `last_epoch -= 1` on each given one.
   * Verified 1.13, 2.6; 2.2, unverified.
   */
  sequentialRecursiveUndo: boolean;
  /**
   * OneCycleLR: stepping past the end says "Tried to step {n} times", not
   * {n + 1}. Verified 1.13, 2.6; 2.1, unverified.
   */
  oneCycleStepCount: boolean;
  /**
   * LBFGS: the strong-Wolfe line search may evaluate at most `max_eval`
   * minus the evaluations so far (`max_ls`), not 25. Read in 2.13, not in 2.6
   * (pytorch#135026, Sept 2024); from 2.7, unverified.
   */
  lbfgsLineSearchWithinMaxEval: boolean;
}

/** The switches for a torch version string, e.g. `optimRules('2.6.0')`. */
export function optimRules(torchVersion: string): Readonly<OptimRules> {
  const [major, minor] = releaseOf(torchVersion);
  const since = (ma: number, mi: number): boolean => major > ma || (major === ma && minor >= mi);
  return Object.freeze({
    adamLerp: since(2, 1),
    adamPowHalf: since(2, 2),
    adamFusedNone: since(2, 0),
    adamwDifferentiableFused: since(2, 0),
    adamStepUpgradeEach: since(2, 0),
    sgdFused: since(2, 2),
    sgdDefaultLr: since(2, 2),
    schedulerVerboseDeprecated: since(2, 2),
    schedulerOptCalled: since(2, 2),
    sequentialRecursiveUndo: since(2, 2),
    oneCycleStepCount: since(2, 1),
    lbfgsLineSearchWithinMaxEval: since(2, 7),
  });
}

/** The switches of the libtorch the addon runs on. */
export const rules: Readonly<OptimRules> = optimRules(version.torch);
