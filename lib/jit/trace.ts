// torch.jit.trace: libtorch's tracer records the ops a forward runs. Every op
// of this package goes through libtorch's dispatcher, whose Tracer key writes
// each call into a torch::jit graph; the weights (tensors that are not inputs)
// become constants. Like PyTorch's tracer it records one path through the code:
// a forward that reads tensor values (item(), a copy to JS) is refused, since
// control flow that depends on the data cannot be recorded.
import { Module } from '../nn/modules/module.js';
import { type Handle, native } from '../native.js';
import { tidy } from '../tensor/scope.js';
import { Tensor, handleOf, wrap } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import { objectsOf } from './objects.js';
import { ScriptModule } from './scriptModule.js';

/** Options of {@link trace}. */
export interface TraceOptions {
  /**
   * Runs the compiled module on the example input and checks that it gives the
   * forward's output (to `checkTolerance`), as torch.jit.trace's `check_trace`. Default true.
   */
  checkTrace?: boolean;
  /** Relative tolerance of that check (default 1e-5). */
  checkTolerance?: number;
}

type Forward = (...inputs: Tensor[]) => Tensor | Tensor[];

/**
 * Compiles a module (or a function of tensors) into a TorchScript
 * {@link ScriptModule} by running it once on `exampleInputs` under libtorch's
 * tracer (`torch.jit.trace`). The module runs in its current mode: call
 * `model.eval()` first for inference. The weights are shared with the model
 * (not copied) until the result is frozen. Shapes the forward reads become
 * constants; the batch dimension may differ at run time in this package's layers.
 * An int8 model's pre-packed weights (from `quantization.quantize`) become
 * attributes of the compiled module, as in PyTorch's traced quantized modules.
 */
export function trace(module: Module<any, any> | Forward, exampleInputs: Tensor | Tensor[], options: TraceOptions = {}): ScriptModule {
  checkOptions('jit.trace', options, ['checkTrace', 'checkTolerance']);
  // A ScriptModule is callable too, but is compiled already (PyTorch's trace returns it unchanged, with a warning).
  if (module instanceof ScriptModule) throw new TypeError('jit.trace: the module is a ScriptModule, compiled already; trace the nn.Module it came from');
  const forward: Forward = module instanceof Module ? (...xs) => module(...xs) : typeof module === 'function' ? module : notTraceable(module);
  const inputs = Array.isArray(exampleInputs) ? exampleInputs : [exampleInputs];
  const handles = inputs.map((x, i) => handleOf(x, `jit.trace: example input ${i}`));
  let outputs: Tensor[] = [];
  let single = true;
  let script: ReturnType<typeof native.jitTrace>;
  try {
    script = native.jitTrace(
      (traced: Handle[]) => {
        // The outputs outlive the scope until the addon has read them.
        outputs = tidy(() => {
          const out = forward(...traced.map(wrap));
          single = out instanceof Tensor;
          if (out instanceof Tensor) return [out];
          if (Array.isArray(out) && out.length > 0 && out.every((t) => t instanceof Tensor)) return out;
          throw new TypeError(`jit.trace: the forward must return a tensor or an array of tensors, got ${describe(out)}`);
        });
        return single ? outputs[0]._h : outputs.map((t) => t._h);
      },
      handles,
      module instanceof Module ? [...module.parameters(), ...module.buffers()].map((t) => t._h) : [],
      // Quantized packed weights: attributes of the TorchScript module, read by the graph through self.
      module instanceof Module ? objectsOf(module) : [],
    );
  } finally {
    for (const t of outputs) t.dispose();
  }
  const compiled = new ScriptModule(
    script,
    inputs.map((x) => x.shape),
  );
  if (options.checkTrace ?? true) {
    try {
      checkTrace(compiled, forward, inputs, options.checkTolerance ?? 1e-5);
    } catch (e) {
      compiled.dispose();
      throw e;
    }
  }
  return compiled;
}

function notTraceable(m: unknown): never {
  throw new TypeError(`jit.trace: expected an nn.Module or a function, got ${describe(m)}`);
}

function checkTrace(compiled: ScriptModule, forward: Forward, inputs: Tensor[], rtol: number): void {
  tidy(() => {
    const eager = forward(...inputs);
    const got = compiled.forward(...inputs);
    const [a, b] = [Array.isArray(eager) ? eager : [eager], Array.isArray(got) ? got : [got]];
    if (a.length !== b.length) throw new Error(`jit.trace: the compiled module returns ${b.length} outputs, the forward ${a.length}`);
    a.forEach((e, i) => {
      const scale = Math.max(e.abs().max().item() as number, 1e-30);
      const diff = e.sub(b[i]).abs().max().item() as number;
      if (!(diff <= rtol * scale)) {
        throw new Error(
          `jit.trace: the compiled module does not reproduce the forward on the example input (output ${i} differs by ${diff.toExponential(2)}, ` +
            `relative ${(diff / scale).toExponential(2)}): the forward depends on something the trace cannot record (randomness such as dropout in training mode, or state)`,
        );
      }
    });
  });
}
