// jit.trace (torch/jit/_trace.py): records a forward into a libtorch graph.
// Every op of this package goes through libtorch's dispatcher, so libtorch's own
// tracer (torch::jit::tracer) records the JS forward as it runs once on the
// example input; the weights become constants of the graph (sharing the model's
// storage). Only the path the example input took is recorded: a forward that
// reads tensor values (item(), toTypedArray()) is refused while tracing, and
// the graph's output is checked against the eager one.
import { native, type JitHandle } from '../native.js';
import { noGrad } from '../autograd.js';
import { Tensor, handleOf } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/scope.js';
import { Module } from '../nn/modules/module.js';
import { checkOptions, describe } from '../utils/args.js';
import { ScriptModule } from './script.js';

/** Options of {@link trace}. */
export interface TraceOptions {
  /** Compare the graph's output on the example input with the eager forward's (default true), as `check_trace`. */
  checkTrace?: boolean;
  /** Relative tolerance of that check (default 1e-5). */
  rtol?: number;
  /** Absolute tolerance of that check (default 1e-6). */
  atol?: number;
}

/**
 * Compiles `module` (an `nn.Module`, or a function of one Tensor) into a
 * {@link ScriptModule} by running its forward once on `exampleInput` under
 * libtorch's tracer, like `torch.jit.trace`. Trace a model in `eval()` mode.
 * The engine takes inputs of the example's shape with any batch size.
 *
 * Control flow that depends on tensor values cannot be recorded: reading a
 * value during the trace throws, and a graph whose output on the example input
 * differs from the eager forward's is refused.
 */
export function trace(module: Module | ((x: Tensor) => Tensor), exampleInput: Tensor, opts: TraceOptions = {}): ScriptModule {
  checkOptions('jit.trace()', opts, ['checkTrace', 'rtol', 'atol']);
  const fn = module instanceof Module ? (x: Tensor) => module.forward(x) : module;
  if (typeof fn !== 'function') throw new TypeError(`jit.trace(): argument 'module' must be an nn.Module or a function, got ${describe(module)}`);
  const xh = handleOf(exampleInput, 'exampleInput');
  if (exampleInput.ndim < 1) throw new RangeError('jit.trace(): the example input needs a batch dimension, got a 0-d tensor');
  // The tracer bakes tensors that are not inputs into the graph as constants,
  // which it refuses for tensors that require grad: lift that while tracing.
  const params = module instanceof Module ? [...module.parameters()].filter((p) => p.requiresGrad) : [];
  let h: JitHandle;
  let eager: Tensor | undefined;
  try {
    for (const p of params) p.requiresGrad_(false);
    tidy(() => noGrad(() => {
      h = native.jitTrace(() => {
        const out = fn(exampleInput);
        if (!(out instanceof Tensor)) throw new TypeError(`jit.trace(): the forward must return a Tensor, got ${describe(out)}`);
        eager = keep(out);
        return out._h;
      }, xh);
    }));
  } finally {
    for (const p of params) p.requiresGrad_(true);
  }
  const engine = new ScriptModule(h!, { shape: exampleInput.shape, dtype: exampleInput.dtype }, 'trace');
  try {
    if (opts.checkTrace ?? true) checkTrace(engine, exampleInput, eager!, opts.rtol ?? 1e-5, opts.atol ?? 1e-6);
  } catch (e) {
    engine.dispose();
    throw e;
  } finally {
    if (eager !== exampleInput) eager!.dispose();
  }
  return engine;
}

function checkTrace(engine: ScriptModule, x: Tensor, eager: Tensor, rtol: number, atol: number): void {
  tidy(() => {
    const got = engine.forward(x);
    if (got.shape.join(',') === eager.shape.join(',') && got.allclose(eager, rtol, atol, true)) return;
    const diff = got.shape.join(',') === eager.shape.join(',')
      ? `max |difference| ${got.sub(eager).abs().max().item()}`
      : `shape [${got.shape.join(', ')}] instead of [${eager.shape.join(', ')}]`;
    throw new Error(`jit.trace(): the traced graph does not reproduce the eager forward on the example input (${diff}). ` +
      'The forward depends on something the tracer cannot record: random ops (a Dropout in training mode: call model.eval()), ' +
      'or control flow on tensor values.');
  });
}
