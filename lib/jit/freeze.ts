// torch.jit.freeze and torch.jit.optimize_for_inference (torch/jit/_freeze.py),
// with libtorch's own passes.
import { native } from '../native.js';
import { ScriptModule } from './script.js';

function checkEngine(fn: string, m: unknown): ScriptModule {
  if (!(m instanceof ScriptModule)) throw new TypeError(`${fn}: argument 'module' must be a ScriptModule (from jit.trace or jit.load)`);
  return m;
}

/**
 * A frozen copy of `module`: weights inlined as constants, BatchNorm folded into
 * the preceding convolutions, dropout removed, constants propagated (`torch.jit.freeze`).
 */
export function freeze(module: ScriptModule): ScriptModule {
  const m = checkEngine('jit.freeze()', module);
  return new ScriptModule(native.jitOptimize(m._handle(), 'freeze'), m.input, 'freeze');
}

/**
 * An inference copy of `module` (`torch.jit.optimize_for_inference`): frozen,
 * then convolutions and linear layers moved to oneDNN (MKLDNN) layouts with
 * pre-packed weights, and conv+ReLU fused.
 */
export function optimizeForInference(module: ScriptModule): ScriptModule {
  const m = checkEngine('jit.optimizeForInference()', module);
  return new ScriptModule(native.jitOptimize(m._handle(), 'inference'), m.input, 'inference');
}
