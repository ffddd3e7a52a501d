// nn.Module.predict / forwardAsync: a module compiled for inference on first
// use, cached per input shape (the batch dimension aside) and per autocast
// state, and compiled again when its weights change in place (their version
// counters move).
//
// Under autocast the graph itself holds the casts: libtorch's Autocast keys
// dispatch above its Tracer, so a trace under autocast records each cast
// (aten::to) and each op at the type autocast chose; freezing folds the weights'
// casts into bfloat16 (or float16) constants. forwardAsync's worker thread does
// not see the JS thread's autocast (libtorch keeps it per thread), so the casts
// must be in the graph; the addon also runs the worker under the caller's state,
// so that both paths run the same ops under the same switches.
import type { InferenceCompiler, Module } from '../nn/modules/module.js';
import { native } from '../native.js';
import { type Tensor, handleOf } from '../tensor/tensor.js';
import { dispose } from '../tensor/scope.js';
import { freeze, optimizeForInference } from './freeze.js';
import { objectsOf } from './objects.js';
import type { ScriptModule } from './scriptModule.js';
import { trace } from './trace.js';

interface Compiled {
  script: ScriptModule;
  version: number;
}

const cache = new WeakMap<Module<any, any>, Map<string, Compiled>>();

/** The calling thread's autocast for the inputs' device type: the dtype it casts to, or null when off. */
function autocastFor(inputs: Tensor[]): { device: 'cpu' | 'cuda'; dtype: number } | null {
  if (inputs.length === 0) return null;
  const device = inputs[0].device === 'cpu' ? 'cpu' : 'cuda';
  return native.autocastIsEnabled(device) ? { device, dtype: native.autocastGetDtype(device) } : null;
}

/**
 * Traces with libtorch's cast-weight cache off (torch.jit.trace's advice under
 * autocast): a cast cached outside the trace would enter the graph as a
 * constant instead of as a recorded cast of the weight.
 */
function traceUncached(m: Module<any, any>, inputs: Tensor[]): ScriptModule {
  const before = native.autocastIsCacheEnabled();
  native.autocastSetCacheEnabled(false);
  try {
    return trace(m, inputs);
  } finally {
    native.autocastSetCacheEnabled(before);
  }
}

function weightsVersion(m: Module<any, any>): number {
  return native.jitVersion([...m.parameters(), ...m.buffers()].map((t) => t._h));
}

function compiled(m: Module<any, any>, inputs: Tensor[], what: string): ScriptModule {
  // Checked before the cache key reads their dtypes and device.
  inputs.forEach((x, i) => handleOf(x, `${m.typeName()}.${what}: input ${i}`));
  const amp = autocastFor(inputs);
  const key = inputs.map((x) => `${x.dtype}[${x.shape.slice(1).join(',')}]`).join(';') + (amp ? ` autocast(${amp.device}, ${amp.dtype})` : '');
  let perShape = cache.get(m);
  if (!perShape) {
    perShape = new Map();
    cache.set(m, perShape);
  }
  const version = weightsVersion(m);
  const hit = perShape.get(key);
  if (hit && hit.version === version && !hit.script.isDisposed) return hit.script;
  hit?.script.dispose();
  const training = m.training;
  m.eval();
  try {
    const traced = amp ? traceUncached(m, inputs) : trace(m, inputs);
    try {
      // An int8 model (its packed weights are attributes): frozen only. optimizeForInference's
      // oneDNN passes rewrite float convolutions and linear layers and leave an int8 graph as
      // freeze made it (seen on 1.13), so its trial run would be wasted; frozen, the graph runs
      // forward's kernels on forward's packed weights (shared, not re-packed): the same bits.
      // Under autocast, frozen only too: the oneDNN conversion takes float32 weights only and
      // leaves a bfloat16 graph's convolutions as they are, but it splits linear into matmul
      // and add, which in bfloat16 rounds twice where eager's addmm rounds once; the frozen
      // graph runs eager autocast's kernels (bfloat16 oneDNN convolutions) on the cast weights.
      const script = objectsOf(m).length > 0 || amp ? freeze(traced) : optimizedOrFrozen(traced, inputs);
      perShape.set(key, { script, version: weightsVersion(m) });
      return script;
    } finally {
      traced.dispose();
    }
  } finally {
    m.train(training);
  }
}

/**
 * optimizeForInference, unless its oneDNN graph cannot run these inputs (its
 * adaptive average pooling needs the output size to divide the input size,
 * which torchvision's VGGs meet at 224×224 but not at every size): then the
 * frozen graph.
 */
function optimizedOrFrozen(traced: ScriptModule, inputs: Tensor[]): ScriptModule {
  const optimized = optimizeForInference(traced);
  try {
    dispose(optimized.forward(...inputs));
    return optimized;
  } catch {
    optimized.dispose();
    return freeze(traced);
  }
}

/** @internal Module.predict/forwardAsync's compiler; lib/index.ts registers it. */
export const inferenceCompiler: InferenceCompiler = {
  run(m, inputs, async) {
    if (!async) return compiled(m, inputs, 'predict').forward(...inputs);
    // forwardAsync rejects, as a promise should, when compiling fails (a bad input, a disposed int8 layer).
    let script: ScriptModule;
    try {
      script = compiled(m, inputs, 'forwardAsync');
    } catch (e) {
      return Promise.reject(e);
    }
    return script.forwardAsync(...inputs);
  },
  release(m) {
    for (const c of cache.get(m)?.values() ?? []) c.script.dispose();
    cache.delete(m);
  },
};
