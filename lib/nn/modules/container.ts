// nn.Sequential and nn.ModuleList (torch/nn/modules/container.py).
import type { Tensor } from '../../tensor/tensor.js';
import { describe } from '../../utils/args.js';
import { Module } from './module.js';

/** Holds modules under the names `0`, `1`, …; `seq[0]` works as in PyTorch. */
abstract class IndexedModules<A extends unknown[], R> extends Module<A, R> {
  [index: number]: Module<any, any>;

  constructor(modules: Module<any, any>[]) {
    super();
    if (!Array.isArray(modules)) throw new TypeError(`${this.typeName()}: argument 'modules' must be an array of Modules, got ${describe(modules)}`);
    modules.forEach((m, i) => this.add(i, m));
  }
  protected add(i: number, m: Module<any, any>): void {
    if (!(m instanceof Module)) throw new TypeError(`${this.typeName()}: module ${i} must be a Module, got ${describe(m)}`);
    (this as unknown as Record<number, Module<any, any>>)[i] = m;
  }
  get length(): number {
    return [...this.children()].length;
  }
  /** The module at `index` (negative counts from the end). */
  at(index: number): Module<any, any> {
    const n = this.length;
    const i = index < 0 ? index + n : index;
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`index ${index} is out of range`);
    return this[i];
  }
  append(m: Module<any, any>): this {
    this.add(this.length, m);
    return this;
  }
  *[Symbol.iterator](): Generator<Module<any, any>> {
    yield* this.children();
  }
}

/** Runs its modules in order (`nn.Sequential`). */
export class Sequential extends IndexedModules<[Tensor], Tensor> {
  constructor(...modules: Module<any, any>[]) {
    super(modules);
  }
  /** Runs the modules in order, each on the previous one's output. */
  forward(input: Tensor): Tensor {
    for (const m of this) input = (m as Module<[Tensor], Tensor>)(input);
    return input;
  }
  // Each output is read once, by the next module: freed as soon as it has run.
  protected get chainsChildren(): boolean {
    return true;
  }
  /** A new Sequential of modules `start` to `end` (exclusive), sharing them (`seq[a:b]`). */
  slice(start = 0, end?: number): Sequential {
    return new Sequential(...[...this.children()].slice(start, end));
  }
  outputShape(inputShape: number[]): number[] {
    let shape = inputShape;
    for (const m of this.children()) shape = m.outputShape(shape);
    return shape;
  }
}

/** A list of modules registered as children (`nn.ModuleList`); it has no forward of its own. */
export class ModuleList extends IndexedModules<never[], never> {
  constructor(modules: Module<any, any>[] = []) {
    super(modules);
  }
  forward(): never {
    throw new Error('ModuleList has no forward(); iterate over its modules');
  }
}
