// ScriptModule (torch/jit/_script.py): a compiled forward held by libtorch as a
// torch::jit::Module. It runs without JS in the loop, on the calling thread
// (forward) or on libuv's pool (forwardAsync), so a Node server keeps answering
// while a VGG runs.
import { native, type JitHandle, type Handle } from '../native.js';
import { Tensor, handleOf, wrap } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';

/** One value of a {@link JitGraph} constant node. */
export type JitConstant = number | boolean | string | number[] | null | Tensor;

/** One node of a {@link JitGraph}: libtorch's node kind and its value names. */
export interface JitNode {
  /** The node kind as libtorch prints it: `aten::conv2d`, `aten::relu_`, `prim::ListConstruct`, `prim::Constant`, … */
  kind: string;
  inputs: string[];
  outputs: string[];
  /** `prim::Constant` only: its value (a Tensor for weights; `null` for None; undefined for an object constant). */
  value?: JitConstant;
}

/**
 * A plain-JS description of a forward graph. Value names are libtorch's debug
 * names without the `%` (`x.1`, `input`, or unique ids such as `23`); the
 * module's `self` input is left out.
 */
export interface JitGraph {
  inputs: string[];
  outputs: string[];
  nodes: JitNode[];
}

/** What a traced engine checks its input against: every dimension but the batch one. */
export interface InputSpec {
  shape: number[];
  dtype: DType;
}

/** The input a forward of an engine takes; a ScriptModule runs one tensor in, one tensor out. */
export class ScriptModule {
  private _h: JitHandle | null;
  /** The example input's shape (batch dimension free) and dtype; null for a loaded file. */
  readonly input: InputSpec | null;
  /** How the engine was made: `'trace'`, `'freeze'`, `'inference'` (optimizeForInference) or `'load'`. */
  readonly origin: 'trace' | 'freeze' | 'inference' | 'load';

  /** @internal made by jit.trace, jit.load, jit.freeze and jit.optimizeForInference. */
  constructor(h: JitHandle, input: InputSpec | null, origin: ScriptModule['origin']) {
    this._h = h;
    this.input = input;
    this.origin = origin;
  }

  /** @internal the live native handle; throws once disposed. */
  _handle(): JitHandle {
    if (this._h === null) throw new Error('ScriptModule: this engine has been disposed; trace or load it again');
    return this._h;
  }

  private checkInput(x: unknown, fn: string): Handle {
    const h = handleOf(x, 'input');
    this._handle();
    const spec = this.input;
    if (spec !== null) {
      const t = x as Tensor;
      const shape = t.shape;
      const want = `[N, ${spec.shape.slice(1).join(', ')}]`;
      if (shape.length !== spec.shape.length || shape.slice(1).some((d, i) => d !== spec.shape[i + 1])) {
        throw new RangeError(`ScriptModule.${fn}: expected an input of shape ${want} (any batch size N), got [${shape.join(', ')}]`);
      }
      if (t.dtype !== spec.dtype) {
        throw new TypeError(`ScriptModule.${fn}: expected a ${spec.dtype} input (the example input's dtype), got ${t.dtype}`);
      }
    }
    return h;
  }

  /** Runs the compiled forward on this thread, without gradients. */
  forward(x: Tensor): Tensor {
    const h = this.checkInput(x, 'forward');
    return wrap(native.jitForward(this._handle(), h));
  }

  /**
   * Runs the compiled forward on a libuv worker thread: no JS runs meanwhile and
   * the event loop stays free. Errors reject the promise. Concurrent calls are
   * safe (each run has its own stack; the weights are shared, read-only).
   */
  async forwardAsync(x: Tensor): Promise<Tensor> {
    const h = this.checkInput(x, 'forwardAsync');
    return wrap(await native.jitForwardAsync(this._handle(), h));
  }

  /**
   * The forward graph as plain JS (see {@link JitGraph}). Tensor constants (the
   * weights) come as new Tensor handles on the engine's storage: dispose them
   * (or call this inside `tidy`) when done.
   */
  graph(): JitGraph {
    const g = native.jitGraph(this._handle());
    return {
      inputs: g.inputs,
      outputs: g.outputs,
      nodes: g.nodes.map((n) => {
        const node: JitNode = { kind: n.kind, inputs: n.inputs, outputs: n.outputs };
        // Tensor constants come as handles, which are numbers too: the addon marks them.
        if ('value' in n) node.value = n.tensor ? wrap(n.value as Handle) : n.value as JitConstant;
        return node;
      }),
    };
  }

  /** The forward graph as libtorch prints it (`module.graph` in PyTorch). */
  get graphText(): string {
    return native.jitGraphText(this._handle());
  }

  /** Frees the engine's weights (shared storage stays alive while a model or a running forwardAsync uses it). */
  dispose(): void {
    if (this._h === null) return;
    native.jitDispose(this._h);
    this._h = null;
  }

  get isDisposed(): boolean {
    return this._h === null;
  }

  /** The distinct weight tensors the engine holds (attributes and graph constants) and their bytes. */
  memory(): { tensors: number; bytes: number } {
    return native.jitMemory(this._handle());
  }
}

