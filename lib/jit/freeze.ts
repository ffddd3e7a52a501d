// torch.jit.freeze and torch.jit.optimize_for_inference (torch/jit/_freeze.py):
// libtorch's passes on a compiled module, for inference.
import { native } from '../native.js';
import type { ScriptModule } from './scriptModule.js';
import { ScriptModule as Script } from './scriptModule.js';

/**
 * `torch.jit.freeze`: a copy whose weights are constants, with dropout removed,
 * BatchNorm folded into the preceding convolutions and linear layers' weights
 * pre-transposed (libtorch's frozen-graph passes). The module must be traced in eval mode.
 * An int8 model's pre-packed weights are not copied: the frozen module shares
 * them (nothing modifies them), so it runs on the very weights `forward` does.
 */
export function freeze(module: ScriptModule): ScriptModule {
  return new Script(native.jitFreeze(module.live('freeze'), false), copyShapes(module), module.optimized);
}

/**
 * `torch.jit.optimize_for_inference`: {@link freeze}, then the oneDNN (MKLDNN)
 * passes: convolutions and linear layers on pre-packed oneDNN weights in
 * blocked layouts, conv+ReLU fused. Outputs agree with eager to about 1e-5
 * relative (a different summation order), not bitwise.
 */
export function optimizeForInference(module: ScriptModule): ScriptModule {
  return new Script(native.jitFreeze(module.live('optimizeForInference'), true), copyShapes(module), true);
}

function copyShapes(m: ScriptModule): number[][] | null {
  return m.inputShapes ? m.inputShapes.map((s) => [...s]) : null;
}
