// nn.Module.predict / forwardAsync: a module compiled for inference on first
// use, cached per input shape (the batch dimension aside) and compiled again
// when its weights change in place (their version counters move).
import type { InferenceCompiler, Module } from '../nn/modules/module.js';
import { native } from '../native.js';
import type { Tensor } from '../tensor/tensor.js';
import { dispose } from '../tensor/scope.js';
import { freeze, optimizeForInference } from './freeze.js';
import type { ScriptModule } from './scriptModule.js';
import { trace } from './trace.js';

interface Compiled {
  script: ScriptModule;
  version: number;
}

const cache = new WeakMap<Module<any, any>, Map<string, Compiled>>();

function weightsVersion(m: Module<any, any>): number {
  return native.jitVersion([...m.parameters(), ...m.buffers()].map((t) => t._h));
}

function compiled(m: Module<any, any>, inputs: Tensor[]): ScriptModule {
  const key = inputs.map((x) => `${x.dtype}[${x.shape.slice(1).join(',')}]`).join(';');
  let perShape = cache.get(m);
  if (!perShape) cache.set(m, (perShape = new Map()));
  const version = weightsVersion(m);
  const hit = perShape.get(key);
  if (hit && hit.version === version && !hit.script.isDisposed) return hit.script;
  hit?.script.dispose();
  const training = m.training;
  m.eval();
  try {
    const traced = trace(m, inputs);
    try {
      perShape.set(key, { script: optimizedOrFrozen(traced, inputs), version: weightsVersion(m) });
      return perShape.get(key)!.script;
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
    const script = compiled(m, inputs);
    return async ? script.forwardAsync(...inputs) : script.forward(...inputs);
  },
  release(m) {
    for (const c of cache.get(m)?.values() ?? []) c.script.dispose();
    cache.delete(m);
  },
};

