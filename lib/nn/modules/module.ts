// nn.Module and nn.Parameter (torch/nn/modules/module.py, torch/nn/parameter.py): parameters,
// buffers and submodules found by name, as in PyTorch.
//
// Registration follows PyTorch's: assigning a Parameter or a Module to a
// property registers it (in assignment order); buffers are declared once with
// registerBuffer() and then assigned like any property. Property names are
// camelCase in TypeScript and snake_case in state-dict keys (`runningMean` →
// `running_mean`), so keys are exactly PyTorch's and checkpoints interoperate.
// Properties whose names start with `_` are private to the module.
import { native, op } from '../../native.js';
import { isGradEnabled, noGrad } from '../../autograd.js';
import { type DType, isFloatingDtype } from '../../tensor/dtype.js';
import { type Disposable, isKept, keep, moduleScope } from '../../tensor/scope.js';
import { Tensor, type Device, handleOf, isDeviceString, registerTensorHook, wrap } from '../../tensor/tensor.js';
import { callableInstance } from '../../utils/callable.js';
import { RemovableHandle } from '../../utils/hooks.js';
import { addIndent, snakeCase } from '../../utils/pyrepr.js';
import { checkBoolean, checkFunction, checkOptions, describe } from '../../utils/args.js';

/**
 * A tensor that is a module's learnable parameter (`nn.Parameter`).
 * `new Parameter(data)` takes ownership of `data`: the parameter is a new handle on
 * the same storage, cut from any graph, and `data` itself is disposed.
 * Parameters survive `tidy` scopes; they are freed with their module's `dispose()`.
 */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    super(native.call(op('aten::detach'), handleOf(data, 'data')));
    data.dispose();
    if (requiresGrad) native.call(op('aten::requires_grad_'), this._h, true);
    keep(this);
  }
}

/** Result of {@link Module.loadStateDict}. */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

type StateDictInput = Map<string, Tensor> | Record<string, Tensor>;

// Buffers that old checkpoints lack and PyTorch fills in itself.
const OPTIONAL_BUFFERS = new Set(['num_batches_tracked']);

/**
 * How a module is compiled for {@link Module.predict} and {@link Module.forwardAsync}.
 * lib/jit implements it, above nn, so the package entry (lib/index.ts) hands it
 * to nn with {@link setInferenceCompiler} when it assembles the package.
 * @internal
 */
export interface InferenceCompiler {
  run(module: Module<any, any>, inputs: Tensor[], async: boolean): Tensor | Tensor[] | Promise<Tensor | Tensor[]>;
  release(module: Module<any, any>): void;
}
let inferenceCompiler: InferenceCompiler | null = null;
/** @internal */
export function setInferenceCompiler(c: InferenceCompiler): void {
  inferenceCompiler = c;
}

/**
 * Base class of every layer and model (`torch.nn.Module`). Subclasses assign
 * parameters and submodules to properties and implement `forward`; a module is
 * run by calling it, `model(x)`, as in PyTorch (see the call signature).
 */
export interface Module<A extends unknown[] = [Tensor], R = Tensor> {
  /**
   * Runs the module (PyTorch's `__call__`): forward pre-hooks, `forward`,
   * forward hooks, and the backward hooks' wiring, in PyTorch's order. The
   * outermost call is one memory scope: every tensor created inside is freed
   * when it returns, except its result, tensors passed to `keep()` and tensors
   * stored on a module of the called tree. Calling `forward` directly skips all
   * of this, as in PyTorch.
   */
  // biome-ignore lint/style/useShorthandFunctionType: an interface, to merge the call signature into the class below.
  (...args: A): R;
}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface adds only the call signature, which the constructor provides.
export abstract class Module<A extends unknown[] = [Tensor], R = Tensor> {
  /** Training mode: affects Dropout and BatchNorm. */
  declare training: boolean;
  declare private readonly _bufferNames: Map<string, boolean>; // property → persistent

  constructor() {
    // The instance is a function, so `model(x)` works as in Python.
    const self = callableInstance<Module<A, R>>(new.target.prototype, callModule);
    self.training = true;
    Object.defineProperty(self, '_bufferNames', { value: new Map<string, boolean>(), enumerable: false });
    // biome-ignore lint/correctness/noConstructorReturn: the instance is the callable built above.
    return self;
  }

  /** The computation, written by each subclass; run the module by calling it (`model(x)`). */
  abstract forward(...args: A): R;

  /**
   * Whether `forward` runs its children as a chain, each on the previous one's
   * output, reading no output twice (`Sequential`): the call path then frees
   * each link as soon as the next child has consumed it.
   */
  protected get chainsChildren(): boolean {
    return false;
  }

  /**
   * Registers `hook(module, input)`, called before every `forward` of a call (PyTorch's
   * `register_forward_pre_hook`). `input` is the argument array; a returned value
   * replaces it (an array as the arguments, anything else as the single argument).
   */
  registerForwardPreHook(hook: (module: this, input: A) => unknown): RemovableHandle {
    checkFunction('registerForwardPreHook()', "argument 'hook'", hook);
    return addHook(this, 'pre', hook as ForwardPreHook);
  }

  /**
   * Registers `hook(module, input, output)`, called after every `forward`
   * (`register_forward_hook`); a value it returns replaces the output. The
   * output is freed once the next layer of an `nn.Sequential` has consumed it,
   * or when the outermost module call returns: pass a tensor you want to read
   * later to `keep()` (or clone it). An output the hook replaces is freed with
   * the call's other intermediates.
   */
  registerForwardHook(hook: (module: this, input: A, output: R) => unknown): RemovableHandle {
    checkFunction('registerForwardHook()', "argument 'hook'", hook);
    return addHook(this, 'forward', hook as ForwardHook);
  }

  /**
   * Registers `hook(module, gradInput, gradOutput)`, called during backward once
   * the gradients with respect to this module's inputs are computed
   * (`register_full_backward_hook`). `gradInput` has one entry per forward
   * argument (null where it is not a tensor that requires grad), `gradOutput` one
   * for the output. An array it returns replaces `gradInput`. As in PyTorch, the
   * inputs and outputs pass through identity autograd nodes, so an in-place
   * layer (ReLU(inplace)) cannot have one. The gradients are freed after the
   * hooks return unless passed to `keep()`. Supports modules with at most one
   * input that requires grad and one tensor output (every VGG layer); CPU only.
   */
  registerFullBackwardHook(hook: (module: this, gradInput: (Tensor | null)[], gradOutput: (Tensor | null)[]) => unknown): RemovableHandle {
    checkFunction('registerFullBackwardHook()', "argument 'hook'", hook);
    return addHook(this, 'backward', hook as BackwardHookFn);
  }

  /** Declares a buffer (persistent state such as BatchNorm's running mean) stored in `this[name]`. */
  protected registerBuffer(name: string, tensor: Tensor | null, persistent = true): void {
    if (tensor !== null) keep(tensor);
    this._bufferNames.set(name, persistent);
    (this as unknown as Record<string, unknown>)[name] = tensor;
  }

  private entries(): [string, unknown][] {
    return Object.entries(this).filter(([k]) => !k.startsWith('_') && k !== 'training');
  }

  /** Direct submodules with their state-dict names. */
  *namedChildren(): Generator<[string, Module<any, any>]> {
    for (const [k, v] of this.entries()) if (v instanceof Module) yield [snakeCase(k), v];
  }
  *children(): Generator<Module<any, any>> {
    for (const [, m] of this.namedChildren()) yield m;
  }
  /** This module and every descendant, depth first, each once. */
  *namedModules(prefix = '', seen = new Set<Module<any, any>>()): Generator<[string, Module<any, any>]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [name, child] of this.namedChildren()) {
      yield* child.namedModules(prefix ? `${prefix}.${name}` : name, seen);
    }
  }
  *modules(): Generator<Module<any, any>> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /** This module's own parameters (not its children's). */
  private *ownParameters(): Generator<[string, Parameter]> {
    for (const [k, v] of this.entries()) if (v instanceof Parameter) yield [snakeCase(k), v];
  }
  private *ownBuffers(persistentOnly: boolean): Generator<[string, Tensor]> {
    for (const [k, persistent] of this._bufferNames) {
      const v = (this as unknown as Record<string, unknown>)[k];
      if (v instanceof Tensor && (persistent || !persistentOnly)) yield [snakeCase(k), v];
    }
  }

  /** Every parameter with its dotted name (`features.0.weight`), each once. */
  *namedParameters(): Generator<[string, Parameter]> {
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.ownParameters()) {
        if (seen.has(p)) continue;
        seen.add(p);
        yield [prefix ? `${prefix}.${name}` : name, p];
      }
    }
  }
  *parameters(): Generator<Parameter> {
    for (const [, p] of this.namedParameters()) yield p;
  }
  *namedBuffers(): Generator<[string, Tensor]> {
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, b] of m.ownBuffers(false)) yield [prefix ? `${prefix}.${name}` : name, b];
    }
  }
  *buffers(): Generator<Tensor> {
    for (const [, b] of this.namedBuffers()) yield b;
  }

  /** Sets training mode here and in every descendant; returns this. */
  train(mode = true): this {
    checkBoolean('train()', "argument 'mode'", mode, false);
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  /** `train(false)` */
  eval(): this {
    return this.train(false);
  }

  /** Calls `fn` on every descendant, then on this module (as PyTorch does); returns this. */
  apply(fn: (m: Module<any, any>) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this);
    return this;
  }

  /** Sets `requiresGrad` of every parameter (e.g. `false` to freeze a feature extractor). */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }

  /** Clears every parameter's gradient: set to null (default), or filled with zeros. */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    checkOptions('zeroGrad()', opts, ['setToNone']);
    for (const p of this.parameters()) {
      if (opts.setToNone ?? true) {
        p.grad = null;
      } else {
        const g = p.grad;
        if (g) {
          g.zero_();
          g.dispose();
        }
      }
    }
  }

  /**
   * Moves or casts every parameter and buffer in place (`model.to('cuda')`,
   * `model.to('float64')`); parameter objects stay the same, as in PyTorch.
   * Integer buffers keep their dtype.
   */
  to(target: Device | DType | { device?: Device; dtype?: DType }): this {
    const opts = typeof target === 'string' ? (isDeviceString(target) ? { device: target } : { dtype: target as DType }) : target;
    noGrad(() => {
      for (const t of [...this.parameters(), ...this.buffers()]) {
        const moved = t.to({ device: opts.device, dtype: isFloatingDtype(t.dtype) ? opts.dtype : undefined });
        t.setData(moved);
        moved.dispose();
      }
    });
    return this;
  }

  /**
   * The state as PyTorch's `state_dict()`: parameters and persistent buffers in
   * registration order, with PyTorch's keys. Values are new handles on the same
   * storage, detached; dispose them (or call this inside `tidy`).
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      const p = prefix ? `${prefix}.` : '';
      for (const [name, t] of m.ownParameters()) out.set(p + name, t.detach());
      for (const [name, t] of m.ownBuffers(true)) out.set(p + name, t.detach());
    }
    return out;
  }

  /**
   * Copies a state dict into this module's parameters and buffers in place
   * (parameter identity is kept). With `strict` (default), one error lists every
   * missing key, every unexpected key and every shape mismatch. A missing
   * `num_batches_tracked` (old checkpoints) is accepted, as in PyTorch.
   */
  loadStateDict(stateDict: StateDictInput, opts: { strict?: boolean } = {}): LoadResult {
    checkOptions('loadStateDict()', opts, ['strict']);
    checkBoolean('loadStateDict()', 'strict', opts.strict);
    if (!(stateDict instanceof Map) && (stateDict === null || typeof stateDict !== 'object' || Array.isArray(stateDict))) {
      throw new TypeError(`loadStateDict(): argument 'stateDict' must be a Map or an object of Tensors, got ${describe(stateDict)}`);
    }
    const strict = opts.strict ?? true;
    const given = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
    const own = new Map<string, Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      const p = prefix ? `${prefix}.` : '';
      for (const [name, t] of m.ownParameters()) own.set(p + name, t);
      for (const [name, t] of m.ownBuffers(true)) own.set(p + name, t);
    }
    const missingKeys = [...own.keys()].filter((k) => !given.has(k) && !OPTIONAL_BUFFERS.has(k.split('.').pop()!));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    for (const [k, src] of given) {
      const dst = own.get(k);
      if (!dst) continue;
      if (!(src instanceof Tensor)) {
        mismatches.push(`While copying the parameter named "${k}", expected a Tensor in the state dict, got ${typeof src}.`);
      } else if (src.shape.join(',') !== dst.shape.join(',')) {
        mismatches.push(
          `size mismatch for ${k}: copying a param with shape [${src.shape.join(', ')}] from checkpoint, the shape in current model is [${dst.shape.join(', ')}].`,
        );
      }
    }
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length) problems.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    problems.push(...mismatches);
    if (problems.length) {
      throw new Error(`Error(s) in loading state_dict for ${this.typeName()}:\n\t${problems.join('\n\t')}`);
    }
    noGrad(() => {
      for (const [k, src] of given) own.get(k)?.copy_(src);
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Frees every parameter and buffer of this module and its descendants, and its compiled forms (see {@link predict}). */
  dispose(): void {
    inferenceCompiler?.release(this);
    for (const m of this.modules()) m.releaseOwn();
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }

  /**
   * Frees what this module holds besides parameters and buffers (such as
   * pre-packed quantized weights); {@link dispose} calls it on every descendant.
   */
  protected releaseOwn(): void {}

  /**
   * Inference through a compiled graph: the module is traced in eval mode
   * (`jit.trace`), optimized (`jit.optimizeForInference`: BatchNorm folded,
   * dropout removed, oneDNN pre-packed weights, conv+ReLU fused) and cached per
   * input shape (any batch size); it is compiled again when a weight changes in
   * place (an optimizer step, `loadStateDict`). Outputs agree with the eval-mode
   * call to about 1e-5 relative. An int8 model (`quantization.quantize`) runs
   * its frozen graph, bit for bit equal to calling it. Runs on this thread; see
   * {@link forwardAsync}.
   *
   * Mixed precision: inside `autocast(deviceType, …)` (for the inputs' device
   * type) the module is compiled under that autocast state, and cached apart
   * from its float32 form. The trace records autocast's casts and the ops at
   * the types autocast picks, and freezing folds the weights' casts into
   * bfloat16 (or float16) constants, so the graph gives what eager autocast
   * gives, bit for bit, with its dtypes (a VGG's logits are bfloat16); with
   * BatchNorm, folded into the convolutions, within a bfloat16 ulp or two:
   *
   * ```ts
   * const logits = autocast('cpu', { dtype: 'bfloat16' }, () => model.predict(x));
   * ```
   *
   * Such a graph is frozen, not optimized: libtorch's oneDNN inference passes take float32
   * weights only, and the frozen graph already runs bfloat16 oneDNN convolutions.
   * In an int8 model only the float ops left around the quantized ones
   * are on autocast's lists (libtorch's quantized kernels are not), as when it is called.
   */
  predict(...inputs: Tensor[]): R {
    return this.compiler().run(this, inputs, false) as R;
  }

  /**
   * {@link predict} on a libuv worker thread: the event loop keeps running while
   * the graph runs (the sync `forward` blocks it). Concurrent calls are safe.
   * Autocast is read when it is called, as by {@link predict}: inside
   * `autocast('cpu', () => model.forwardAsync(x))` the bfloat16 graph runs, and
   * the worker thread runs it under the caller's autocast state (libtorch keeps
   * that state per thread), so the promise gives predict's bits. The state
   * is read when the call starts; changing it later does not affect the run.
   */
  forwardAsync(...inputs: Tensor[]): Promise<R> {
    return this.compiler().run(this, inputs, true) as Promise<R>;
  }

  private compiler(): InferenceCompiler {
    if (!inferenceCompiler) throw new Error(`${this.typeName()}: compiled inference needs vgg-torch's jit (import it from 'vgg-torch')`);
    return inferenceCompiler;
  }

  /** The class name PyTorch would print. */
  typeName(): string {
    return this.constructor.name;
  }

  /** The text inside the parentheses of this module's repr (PyTorch's `extra_repr`). */
  extraRepr(): string {
    return '';
  }

  /** The module tree, line for line as PyTorch's `print(model)`. */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines = [...this.namedChildren()].map(([k, m]) => `(${k}): ${addIndent(m.toString(), 2)}`);
    const lines = [...extraLines, ...childLines];
    let main = `${this.typeName()}(`;
    if (lines.length) {
      main += extraLines.length === 1 && childLines.length === 0 ? extraLines[0] : `\n  ${lines.join('\n  ')}\n`;
    }
    return `${main})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /**
   * The output shape for an input shape, without running the module; used by
   * `summary` and to size classifiers. Layers that keep the shape need not override it.
   */
  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }
}

// ---- the call path (torch/nn/modules/module.py: __call__ → _call_impl) ----

type AnyModule = Module<any, any>;
type ForwardPreHook = (m: AnyModule, input: unknown[]) => unknown;
type ForwardHook = (m: AnyModule, input: unknown[], output: unknown) => unknown;
type BackwardHookFn = (m: AnyModule, gradInput: (Tensor | null)[], gradOutput: (Tensor | null)[]) => unknown;
interface HookTable {
  pre: Map<number, ForwardPreHook>;
  forward: Map<number, ForwardHook>;
  backward: Map<number, BackwardHookFn>;
}

// A module's hooks live outside it, so they are neither state-dict entries nor printed.
const hookTables = new WeakMap<AnyModule, HookTable>();

function addHook(m: AnyModule, kind: keyof HookTable, hook: ForwardPreHook | ForwardHook | BackwardHookFn): RemovableHandle {
  const t = hookTables.get(m) ?? { pre: new Map(), forward: new Map(), backward: new Map() };
  hookTables.set(m, t);
  const handle = new RemovableHandle(() => t.pre.delete(handle.id) || t.forward.delete(handle.id) || t.backward.delete(handle.id));
  (t[kind] as Map<number, unknown>).set(handle.id, hook);
  return handle;
}

/** A module call in progress; `last` is the result of its latest child call. */
interface Frame {
  module: AnyModule;
  args: unknown[];
  last: unknown;
}
const calls: Frame[] = [];

function callModule(m: AnyModule, args: unknown[]): unknown {
  if (calls.length > 0) return callImpl(m, args);
  return moduleScope(
    () => callImpl(m, args),
    () => heldBy(m),
  );
}

function callImpl(m: AnyModule, args: unknown[]): unknown {
  const parent = calls.at(-1);
  calls.push({ module: m, args, last: undefined });
  let result: unknown;
  try {
    const hooks = hookTables.get(m);
    result = hooks ? callWithHooks(m, hooks, args) : m.forward(...args);
  } finally {
    calls.pop();
  }
  if (parent && (parent.module as unknown as { chainsChildren: boolean }).chainsChildren) {
    // The link this child consumed was the previous child's output, which a
    // chain reads once: freed now rather than when the outermost call ends, so
    // a no-grad pass holds two activations at a time, not all of them.
    // The chain's own input is its caller's (an Identity or an in-place layer hands it on).
    const link = args[0];
    const freeable = link === parent.last && link !== result && link instanceof Tensor && !parent.args.includes(link);
    if (freeable && !link.isDisposed && !isKept(link) && !heldBy(parent.module).has(link)) link.dispose();
    parent.last = result;
  }
  return result;
}

function callWithHooks(m: AnyModule, table: HookTable, args: unknown[]): unknown {
  let input = args;
  for (const hook of [...table.pre.values()]) {
    const r = hook(m, input);
    if (r !== undefined) input = Array.isArray(r) ? r : [r];
  }
  const backward = table.backward.size ? new BackwardHook(m, [...table.backward.values()]) : undefined;
  if (backward) input = backward.setupInputHook(input);
  let result = m.forward(...input);
  for (const hook of [...table.forward.values()]) {
    const r = hook(m, input, result);
    if (r !== undefined) result = r;
  }
  if (backward) result = backward.setupOutputHook(result);
  return result;
}

// The tensors stored on the modules of `m`'s tree, in a property or an array (a
// layer that keeps what it saw, to read it later): they outlive the call.
function heldBy(m: AnyModule): Set<Disposable> {
  const held = new Set<Disposable>();
  const seen = new Set<AnyModule>([m]);
  const walk = (mod: AnyModule): void => {
    for (const v of Object.values(mod)) {
      if (v instanceof Tensor) held.add(v);
      else if (Array.isArray(v)) {
        for (const x of v) if (x instanceof Tensor) held.add(x);
      } else if (v instanceof Module && !seen.has(v)) {
        seen.add(v);
        walk(v);
      }
    }
  };
  walk(m);
  return held;
}

// PyTorch wraps inputs and outputs in one identity autograd Function whose grad_fn
// hooks see the gradients; here each is an `aten::alias` node (also an identity)
// with a tensor hook, which is why one differentiable input and one output is the limit.
const identity = (t: Tensor): Tensor => wrap(native.call(op('aten::alias'), t._h));

class BackwardHook {
  private gradOutputs: (Tensor | null)[] | null = null;
  private nInputs = 0;
  private inputIndex = -1;

  constructor(
    private readonly module: AnyModule,
    private readonly hooks: BackwardHookFn[],
  ) {}

  setupInputHook(args: unknown[]): unknown[] {
    this.nInputs = args.length;
    const differentiable = args.flatMap((a, i) => (a instanceof Tensor && a.requiresGrad ? [i] : []));
    if (differentiable.length === 0 || !isGradEnabled()) return args;
    if (differentiable.length > 1) {
      throw new Error(`${this.module.typeName()}: registerFullBackwardHook supports modules with one input that requires grad, got ${differentiable.length}`);
    }
    const i = differentiable[0];
    const wrapped = identity(args[i] as Tensor);
    this.inputIndex = i;
    registerTensorHook(wrapped, (grad) => {
      const gradInputs: (Tensor | null)[] = args.map((_, j) => (j === i ? grad : null));
      const replaced = this.callUserHooks(gradInputs);
      return replaced ? (replaced[i] ?? undefined) : undefined;
    });
    const out = [...args];
    out[i] = wrapped;
    return out;
  }

  setupOutputHook(result: unknown): unknown {
    if (!(result instanceof Tensor)) {
      throw new Error(`${this.module.typeName()}: registerFullBackwardHook supports modules whose output is one Tensor, got ${describe(result)}`);
    }
    if (!result.requiresGrad) return result;
    const wrapped = identity(result);
    // On the alias's input, so gradOutput is the gradient after the output's own tensor hooks, as PyTorch's post-hook sees it.
    registerTensorHook(result, (grad) => {
      this.gradOutputs = [grad];
      if (this.inputIndex < 0) {
        // No input requires grad: the hooks run now, and may not replace anything.
        const replaced = this.callUserHooks(new Array(this.nInputs).fill(null));
        if (replaced?.some((g) => g !== null && g !== undefined)) {
          throw new Error('Backward hook for Modules where no input requires gradient should always return None or None for all gradients.');
        }
      }
      return undefined;
    });
    return wrapped;
  }

  private callUserHooks(gradInputs: (Tensor | null)[]): (Tensor | null)[] | null {
    const gradOutputs = this.gradOutputs ?? [null];
    let current = gradInputs;
    let replaced: (Tensor | null)[] | null = null;
    try {
      for (const hook of this.hooks) {
        const r = hook(this.module, current, gradOutputs);
        if (r === undefined || r === null) continue;
        if (!Array.isArray(r) || r.length !== current.length) {
          throw new Error(
            `Backward hook returned an invalid number of grad_input, got ${Array.isArray(r) ? r.length : describe(r)}, but expected ${current.length}`,
          );
        }
        current = replaced = r as (Tensor | null)[];
      }
    } finally {
      for (const g of [...gradInputs, ...gradOutputs]) {
        if (g && !isKept(g) && !replaced?.includes(g)) g.dispose();
      }
      this.gradOutputs = null;
    }
    return replaced;
  }
}
