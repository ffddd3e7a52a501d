// torch.jit for vgg-torch: trace a model into a libtorch graph, run it off the
// event loop, optimize it for inference, save and load TorchScript.
import { ScriptModule, type JitGraph } from './script.js';

export { ScriptModule } from './script.js';
export type { JitGraph, JitNode, JitConstant, InputSpec } from './script.js';
export { trace } from './trace.js';
export type { TraceOptions } from './trace.js';
export { freeze, optimizeForInference } from './freeze.js';
export { save, load } from './serialization.js';

/** The plain-JS description of `engine`'s forward graph (same as `engine.graph()`). */
export function graphOf(engine: ScriptModule): JitGraph {
  if (!(engine instanceof ScriptModule)) throw new TypeError('jit.graphOf(): argument \'engine\' must be a ScriptModule');
  return engine.graph();
}
