// torch.jit: compile a module into a TorchScript graph, optimize it for
// inference, run it off the event loop, save and load it.
export { ScriptModule } from './scriptModule.js';
export type { Graph, GraphConstant, GraphNode } from './scriptModule.js';
export { trace } from './trace.js';
export type { TraceOptions } from './trace.js';
export { freeze, optimizeForInference } from './freeze.js';
export { save, load } from './serialization.js';
