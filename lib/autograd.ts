// Grad-mode switches. libtorch keeps them thread-local; an async function keeps
// the mode until its promise settles (like `with torch.no_grad():` around an await).
import { native } from './native.js';
import { checkFunction } from './utils/args.js';

/**
 * @internal Runs `fn` between `enter()` and `exit()`; `exit` runs when `fn` throws, and for an
 * async `fn` when its promise settles. Shared by the grad modes and `autocast`.
 */
export function withMode<T>(enter: () => void, exit: () => void, fn: () => T): T {
  enter();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    exit();
    throw e;
  }
  if (result instanceof Promise) return result.finally(exit) as T;
  exit();
  return result;
}

function gradMode<T>(enabled: boolean, fn: () => T): T {
  checkFunction(enabled ? 'enableGrad()' : 'noGrad()', 'fn', fn);
  const previous = native.isGradEnabled();
  return withMode(
    () => native.setGradEnabled(enabled),
    () => native.setGradEnabled(previous),
    fn,
  );
}

/** Runs `fn` without recording operations for autograd (`torch.no_grad()`). */
export const noGrad = <T>(fn: () => T): T => gradMode(false, fn);
/** Runs `fn` with gradient recording on, inside a {@link noGrad} region too (`torch.enable_grad()`). */
export const enableGrad = <T>(fn: () => T): T => gradMode(true, fn);
/** Whether operations are being recorded for autograd. */
export const isGradEnabled = (): boolean => native.isGradEnabled();
/** Switches gradient recording on or off until switched again (`torch.set_grad_enabled`). */
export const setGradEnabled = (enabled: boolean): void => native.setGradEnabled(enabled);

/**
 * Runs `fn` in libtorch's inference mode (`torch.inference_mode()`): no autograd
 * bookkeeping at all, the fastest way to evaluate a model. Tensors made inside
 * cannot later be used in autograd.
 */
export function inferenceMode<T>(fn: () => T, enabled = true): T {
  checkFunction('inferenceMode()', 'fn', fn);
  return withMode(
    () => native.enterInferenceMode(enabled),
    () => native.exitInferenceMode(),
    fn,
  );
}
export const isInferenceModeEnabled = (): boolean => native.isInferenceModeEnabled();
