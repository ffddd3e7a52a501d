// torch.jit.ScriptModule: a compiled module held by libtorch. Its forward is a
// TorchScript graph run by libtorch's interpreter: synchronously, or on a libuv
// worker thread (forwardAsync), where no JS runs and the event loop stays free.
import { type Handle, type ScriptHandle, type ScriptOutput, native } from '../native.js';
import { type Tensor, handleOf, wrap } from '../tensor/tensor.js';
import { describe } from '../utils/args.js';
import { callableInstance } from '../utils/callable.js';

/** A `prim::Constant`'s value: a tensor (the weights), a number, a boolean, a string, a number list, or null (None). */
export type GraphConstant = number | boolean | string | number[] | null | Tensor;

/** One node of a forward graph, as {@link ScriptModule.graph} describes it. */
export interface GraphNode {
  /** The node's kind: `aten::conv2d`, `aten::relu_`, `prim::Constant`, `prim::ListConstruct`, … */
  kind: string;
  /** Names of the values it reads. */
  inputs: string[];
  /** Names of the values it defines. */
  outputs: string[];
  /** A `prim::Constant`'s value. */
  value?: GraphConstant;
}

/** A forward graph in plain JS: its inputs, its outputs and its nodes in order. */
export interface Graph {
  inputs: string[];
  outputs: string[];
  nodes: GraphNode[];
  /** libtorch's own printout of the graph (`print(m.graph)` in Python). */
  text: string;
}

/**
 * A compiled module (`torch.jit.ScriptModule`): from {@link trace}, {@link load},
 * {@link freeze} or {@link optimizeForInference}. It holds its weights in libtorch
 * (a traced module shares them with the model it came from until it is frozen);
 * {@link dispose} frees them. It is called like the module it came from,
 * `script(x)` (its {@link forward}).
 */
export interface ScriptModule {
  /** Runs the compiled forward on this thread, as {@link ScriptModule.forward}. */
  // biome-ignore lint/style/useShorthandFunctionType: an interface, to merge the call signature into the class below.
  (...inputs: Tensor[]): Tensor | Tensor[];
}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface adds only the call signature, which the constructor provides.
export class ScriptModule {
  /** @internal */
  declare _script: ScriptHandle;
  /**
   * The shapes of the inputs it was traced with; every dimension but the first
   * (the batch) must match at run time. Null for a loaded module.
   */
  declare readonly inputShapes: readonly (readonly number[])[] | null;
  /** Whether it came from {@link optimizeForInference} (its oneDNN weights cannot be saved). */
  declare readonly optimized: boolean;

  /** @internal use {@link trace} or {@link load}. */
  constructor(script: ScriptHandle, inputShapes: number[][] | null, optimized = false) {
    const self = callableInstance<ScriptModule>(new.target.prototype, (s, inputs) => s.forward(...(inputs as Tensor[])));
    Object.assign(self, { _script: script, inputShapes, optimized });
    // biome-ignore lint/correctness/noConstructorReturn: the instance is the callable built above.
    return self;
  }

  /** Runs the compiled forward on this thread. Outputs are new tensors the caller owns. */
  forward(...inputs: Tensor[]): Tensor | Tensor[] {
    return wrapOutput(native.jitForward(this._script, this.check('forward', inputs)));
  }

  /**
   * Runs the compiled forward on a libuv worker thread: the event loop keeps
   * running. Concurrent calls are safe (libtorch's interpreter is reentrant) and
   * give what the same calls in sequence give. Rejects with the error libtorch
   * raised (a wrong shape, a disposed module). The worker runs under the
   * autocast state of the thread that calls it (libtorch keeps that state per
   * thread), so inside `autocast(…)` it gives what {@link forward} gives there.
   */
  async forwardAsync(...inputs: Tensor[]): Promise<Tensor | Tensor[]> {
    return wrapOutput(await native.jitForwardAsync(this._script, this.check('forwardAsync', inputs)));
  }

  /** The forward graph (self dropped). Tensor constants are new tensors: dispose them, or read it inside `tidy`. */
  graph(): Graph {
    const g = native.jitGraph(this._script);
    return {
      inputs: g.inputs,
      outputs: g.outputs,
      text: g.text,
      nodes: g.nodes.map(({ value, ...n }) => {
        if (value === undefined) return n;
        return { ...n, value: value !== null && typeof value === 'object' && !Array.isArray(value) ? wrap(value.tensor) : value };
      }),
    };
  }

  /** Saves it as TorchScript (`torch.jit.save`): Python's `torch.jit.load` reads the file. */
  save(path: string): void {
    if (typeof path !== 'string' || path === '') throw new TypeError(`ScriptModule.save: path must be a non-empty string, got ${describe(path)}`);
    if (this.optimized) {
      // libtorch writes such a file but cannot read it back (nor can Python): its constants are oneDNN objects.
      throw new Error(
        'ScriptModule.save: a module from optimizeForInference holds pre-packed oneDNN weights, which a TorchScript file cannot hold; save the traced or frozen module (optimize after loading)',
      );
    }
    native.jitSave(this.live('save'), path);
  }

  /** The tensors it holds and their bytes, each storage once (pre-packed oneDNN weights are opaque and not counted). */
  memory(): { tensors: number; bytes: number } {
    return native.jitMemory(this.live('memory'));
  }

  /** Frees its weights now (a running forwardAsync keeps them until it ends). */
  dispose(): void {
    native.jitDispose(this._script);
  }

  get isDisposed(): boolean {
    return native.jitIsDisposed(this._script);
  }

  toString(): string {
    return this.isDisposed
      ? 'ScriptModule(disposed)'
      : `ScriptModule(${this.inputShapes ? `traced on ${this.inputShapes.map((s) => `[${s.join(', ')}]`).join(', ')}` : 'loaded'})`;
  }

  /** @internal the handle, or a clear error once disposed. */
  live(what: string): ScriptHandle {
    if (native.jitIsDisposed(this._script)) throw new Error(`ScriptModule.${what}: the module was disposed`);
    return this._script;
  }

  private check(what: string, inputs: Tensor[]): Handle[] {
    this.live(what);
    const handles = inputs.map((x, i) => handleOf(x, `ScriptModule.${what}: input ${i}`));
    const expected = this.inputShapes;
    if (expected) {
      if (inputs.length !== expected.length) throw new TypeError(`ScriptModule.${what}: expected ${expected.length} input(s), got ${inputs.length}`);
      inputs.forEach((x, i) => {
        const s = x.shape;
        const e = expected[i];
        if (s.length !== e.length || s.some((d, k) => k > 0 && d !== e[k])) {
          throw new RangeError(`ScriptModule.${what}: expected input ${i} of shape [N, ${e.slice(1).join(', ')}] (any batch size N), got [${s.join(', ')}]`);
        }
      });
    }
    return handles;
  }
}

function wrapOutput(out: ScriptOutput): Tensor | Tensor[] {
  return Array.isArray(out) ? out.map(wrap) : wrap(out);
}
