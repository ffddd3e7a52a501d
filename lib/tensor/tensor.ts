// The Tensor class: a JS handle on an at::Tensor with PyTorch's method names in
// camelCase. Every method is one dispatcher call; no math runs in JS.
import { inspect } from 'node:util';
import { native, op, type Handle, type OpHandle } from '../native.js';
import { type AnyTypedArray, type DType, dtypeCode, dtypeName, normalizeDtype, viewBytes } from './dtype.js';
import { formatTensor } from './format.js';
import { isKept, track, untrack } from './scope.js';
import { checkFunction, checkOptions, describe } from '../utils/args.js';
import { RemovableHandle } from '../utils/hooks.js';
import { registerTensorClass } from './dispatch.js';
import { TensorMethods } from './generated/methods.js';

/** How error messages show a value (re-exported for the modules that import it from here). */
export { describe };

/** A device string: `'cpu'`, `'cuda'` or `'cuda:N'`. */
export type Device = string;

/** Options accepted by the creation functions. */
export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

/** A Python-style slice for {@link Tensor.index}; any field may be left out. */
export interface Slice {
  start?: number | null;
  stop?: number | null;
  step?: number;
}

/**
 * One index for {@link Tensor.index}: an integer (selects), a slice (as an
 * object or a string such as `':'`, `'1:5'`, `'::2'`), `null` (a new axis, like
 * Python's `None`), `'...'` (ellipsis), or an integer/bool Tensor (advanced indexing).
 */
export type IndexSpec = number | null | string | Slice | Tensor;

export type Scalar = number | boolean;

/** Whether `s` names a device (`'cpu'`, `'cuda'`, `'cuda:1'`, …) rather than a dtype. */
export function isDeviceString(s: string): boolean {
  return /^(cpu|cuda|meta|mps)(:\d+)?$/.test(s);
}

/** Converts a JS value to what the dispatcher takes for a Tensor-or-Scalar argument. */
function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

/** The handle of `x`, with a TypeError naming the argument if `x` is not a Tensor. */
export function handleOf(x: unknown, what: string): Handle {
  if (x instanceof Tensor) return x._h;
  throw new TypeError(`argument '${what}' must be a Tensor, got ${describe(x)}`);
}

function checkScalar(x: unknown, what: string): Scalar {
  if (typeof x === 'number' || typeof x === 'boolean') return x;
  throw new TypeError(`argument '${what}' must be a Tensor or a number, got ${describe(x)}`);
}

/** `(2, 3)` or `([2, 3])` → `[2, 3]`, as PyTorch's size arguments allow. */
export function sizeArgs(args: (number | readonly number[])[], what = 'size', fn?: string): number[] {
  const list = args.length === 1 && Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
  for (const s of list) {
    if (typeof s !== 'number' || !Number.isInteger(s)) {
      const given = args.length === 1 ? args[0] : args;
      throw new TypeError(
        `${fn ? `${fn}: ` : ''}argument '${what}' must be integers or an array of integers, got ${describe(given)}${given !== s ? ` (element ${describe(s)})` : ''}`,
      );
    }
  }
  return [...list];
}

/** Wraps a native result: handle → Tensor, array of handles → Tensor[]. */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}
function wrapList(hs: Handle[]): Tensor[] {
  return hs.map((h) => new Tensor(h));
}

const BYTES: Record<DType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 };

const REDUCTIONS = { none: 0, mean: 1, sum: 2 } as const;
export type Reduction = keyof typeof REDUCTIONS;
export function reductionCode(r: Reduction): number {
  const code = Object.hasOwn(REDUCTIONS, r) ? REDUCTIONS[r] : undefined;
  if (code === undefined) throw new TypeError(`reduction must be 'none', 'mean' or 'sum', got ${describe(r)}`);
  return code;
}

// Binary ops take a Tensor or a number. A number goes to the addon as [x],
// which it turns into a wrapped-number tensor exactly as PyTorch's Python
// binding does (same type promotion, same autograd node).
function tensorOrScalar(other: Tensor | Scalar): Handle | [Scalar] {
  return isTensor(other) ? other._h : [checkScalar(other, 'other')];
}
function binary(opHandle: OpHandle, self: Tensor, other: Tensor | Scalar, alpha?: Scalar): Tensor {
  const o = tensorOrScalar(other);
  return wrap(alpha === undefined ? native.call(opHandle, self._h, o) : native.call(opHandle, self._h, o, alpha));
}
function binaryInPlace(opHandle: OpHandle, self: Tensor, other: Tensor | Scalar, alpha?: Scalar): Tensor {
  const o = tensorOrScalar(other);
  if (alpha === undefined) native.call(opHandle, self._h, o);
  else native.call(opHandle, self._h, o, alpha);
  return self;
}

// Hot operators resolved once at load.
const OPS = {
  add: op('aten::add', 'Tensor'),
  sub: op('aten::sub', 'Tensor'),
  mul: op('aten::mul', 'Tensor'),
  div: op('aten::div', 'Tensor'),
  add_: op('aten::add_', 'Tensor'),
  sub_: op('aten::sub_', 'Tensor'),
  mul_: op('aten::mul_', 'Tensor'),
  div_: op('aten::div_', 'Tensor'),
  eq: op('aten::eq', 'Tensor'),
  ne: op('aten::ne', 'Tensor'),
  lt: op('aten::lt', 'Tensor'),
  le: op('aten::le', 'Tensor'),
  gt: op('aten::gt', 'Tensor'),
  ge: op('aten::ge', 'Tensor'),
};

function parseSlice(s: string): Slice {
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3) throw new TypeError(`invalid slice '${s}'; expected 'start:stop' or 'start:stop:step'`);
  const num = (p: string | undefined): number | null => {
    if (p === undefined || p.trim() === '') return null;
    const v = Number(p);
    if (!Number.isInteger(v)) throw new TypeError(`invalid slice '${s}': '${p}' is not an integer`);
    return v;
  };
  return { start: num(parts[0]), stop: num(parts[1]), step: num(parts[2]) ?? 1 };
}

/**
 * A multi-dimensional array on CPU or CUDA, backed by libtorch's at::Tensor.
 *
 * Native memory is not seen by the garbage collector: call {@link Tensor.dispose}
 * or create tensors inside {@link tidy}. A tensor that is only dropped is still
 * freed when V8 collects its handle, but later and at V8's pace.
 */
export class Tensor extends TensorMethods {
  /** @internal the native handle */
  readonly _h: Handle;
  /** @internal registered with the GC safety net */
  _netted = false;
  /** @internal dispose() was called */
  _disposed = false;
  private _meta: [number[], number, string] | undefined;

  /** @internal use the creation functions (`tensor`, `zeros`, …). */
  constructor(h: Handle) {
    super();
    this._h = h;
    track(this);
    madeInHook?.add(this);
  }

  private meta(): [number[], number, string] {
    // A disposed tensor asks the addon again, which throws its disposed-tensor error:
    // the cached metadata must not make a freed tensor look alive.
    if (this._meta === undefined || this._disposed) this._meta = native.meta(this._h);
    return this._meta;
  }

  // ---- properties -------------------------------------------------------

  /** The size of each dimension, like `tensor.shape` in PyTorch. */
  get shape(): number[] {
    return [...this.meta()[0]];
  }
  /** Same as {@link shape}; with `dim`, that dimension's size (negative counts from the end). */
  size(dim?: number): number | number[] {
    if (dim === undefined) return this.shape;
    const s = this.meta()[0];
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) {
      throw new RangeError(`Dimension out of range (expected to be in range of [${-s.length}, ${s.length - 1}], but got ${dim})`);
    }
    return s[d];
  }
  get dtype(): DType {
    return dtypeName(this.meta()[1]);
  }
  get device(): Device {
    return this.meta()[2];
  }
  get ndim(): number {
    return this.meta()[0].length;
  }
  dim(): number {
    return this.ndim;
  }
  numel(): number {
    return this.meta()[0].reduce((a, b) => a * b, 1);
  }
  /** Element strides, as `tensor.stride()` in PyTorch. */
  stride(): number[] {
    return native.strides(this._h);
  }
  isContiguous(): boolean {
    return native.isContiguous(this._h);
  }
  /** Offset of the first element in the underlying storage, in elements (`t.storage_offset()`). */
  storageOffset(): number {
    return native.storageInfo(this._h)[0];
  }
  get isCuda(): boolean {
    return this.device.startsWith('cuda');
  }

  // ---- lifetime ---------------------------------------------------------

  /** Releases this handle now. Storage shared with other tensors stays alive while they do. */
  dispose(): void {
    native.dispose(this._h);
    untrack(this);
  }
  get isDisposed(): boolean {
    return native.isDisposed(this._h);
  }
  /** Whether this tensor and `other` view the same storage. */
  sharesStorageWith(other: Tensor): boolean {
    return native.sameStorage(this._h, handleOf(other, 'other'));
  }

  // ---- data out ---------------------------------------------------------

  /** The single value of a one-element tensor. */
  item(): number | boolean {
    return native.item(this._h);
  }
  /** All elements, row-major, in a typed array (BigInt64Array for int64, Float32Array for half types). */
  toTypedArray(): AnyTypedArray {
    return viewBytes(this.dtype, native.toArrayBuffer(this._h));
  }
  /** Like {@link toTypedArray}, but the copy (and a device transfer) runs off the main thread. */
  async data(): Promise<AnyTypedArray> {
    return viewBytes(this.dtype, await native.toArrayBufferAsync(this._h));
  }
  /** Nested arrays of numbers (or booleans), like `tensor.tolist()`. */
  tolist(): unknown {
    const flat = this.toTypedArray();
    const isBool = this.dtype === 'bool';
    const at = (i: number): number | boolean => {
      const v = flat[i];
      return isBool ? v !== 0 : Number(v);
    };
    const shape = this.meta()[0];
    if (shape.length === 0) return at(0);
    let offset = 0;
    const build = (d: number): unknown[] => {
      const out: unknown[] = [];
      for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? at(offset++) : build(d + 1));
      return out;
    };
    return build(0);
  }

  // ---- printing ---------------------------------------------------------

  /** PyTorch's `repr`: `tensor([[1., 2.]], requires_grad=True)`. */
  toString(): string {
    if (this.isDisposed) return 'tensor(<disposed>)';
    const gradFn = native.gradFnName(this._h);
    return formatTensor({
      shape: this.shape,
      dtype: this.dtype,
      values: this.toTypedArray(),
      device: this.device,
      requiresGrad: this.requiresGrad,
      gradFn,
    });
  }
  [inspect.custom](): string {
    return this.toString();
  }

  // ---- conversion -------------------------------------------------------

  /**
   * Moves and/or casts: `to('cuda')`, `to('float64')`, `to({ device, dtype })`,
   * `to(other)` (other's device and dtype). When nothing changes the result
   * shares this tensor's storage, as in PyTorch, unless `copy` is set.
   */
  to(target: Device | DType | Tensor | { device?: Device; dtype?: DType }, opts: { copy?: boolean; nonBlocking?: boolean } = {}): Tensor {
    checkOptions('to()', opts, ['copy', 'nonBlocking']);
    let device: Device | undefined;
    let dtype: DType | undefined;
    if (isTensor(target)) {
      device = target.device;
      dtype = target.dtype;
    } else if (typeof target === 'string') {
      if (isDeviceString(target)) device = target;
      else dtype = normalizeDtype(target);
    } else if (target && typeof target === 'object') {
      checkOptions('to()', target, ['device', 'dtype'], { what: 'target' });
      device = target.device;
      dtype = target.dtype === undefined ? undefined : normalizeDtype(target.dtype);
    } else {
      throw new TypeError(`to(): expected a device, a dtype or { device, dtype }, got ${describe(target)}`);
    }
    const out: Handle = native.call(
      op('aten::to', 'dtype_layout'),
      this._h,
      dtype === undefined ? undefined : dtypeCode(dtype),
      undefined,
      device,
      undefined,
      opts.nonBlocking ?? false,
      opts.copy ?? false,
    );
    return wrap(out);
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index?: number): Tensor {
    return this.to(index === undefined ? 'cuda' : `cuda:${index}`);
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  half(): Tensor {
    return this.to('float16');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  byte(): Tensor {
    return this.to('uint8');
  }
  char(): Tensor {
    return this.to('int8');
  }
  short(): Tensor {
    return this.to('int16');
  }
  bfloat16(): Tensor {
    return this.to('bfloat16');
  }
  /** The number of elements (`torch.Tensor.nelement`, the same as {@link numel}). */
  nelement(): number {
    return this.numel();
  }
  /** The number of dimensions (`torch.Tensor.ndimension`, the same as {@link dim}). */
  ndimension(): number {
    return this.ndim;
  }
  /** Bytes per element. */
  elementSize(): number {
    return BYTES[this.dtype];
  }
  get isCpu(): boolean {
    return this.device === 'cpu';
  }
  /** Whether it lives on the meta device (shapes only, no data). */
  get isMeta(): boolean {
    return this.device === 'meta';
  }
  /** Always false: vgg-torch's tensors are dense and strided (no sparse or quantized tensors). */
  get isSparse(): boolean {
    return false;
  }
  get isQuantized(): boolean {
    return false;
  }
  /** `torch.strided`: the only layout vgg-torch's tensors have. */
  get layout(): 'strided' {
    return 'strided';
  }
  /** The CUDA device index, -1 on the CPU (`torch.Tensor.get_device`). */
  getDevice(): number {
    const d = this.device;
    return d.startsWith('cuda') ? Number(d.split(':')[1] ?? 0) : -1;
  }
  /** Bytes per element (`torch.Tensor.itemsize`). */
  get itemsize(): number {
    return this.elementSize();
  }
  /** Bytes of the elements (`torch.Tensor.nbytes`: numel × itemsize). */
  get nbytes(): number {
    return this.numel() * this.elementSize();
  }
  /** The dimensions reversed (`torch.Tensor.T`). */
  get T(): Tensor {
    return this.permute([...Array(this.ndim).keys()].reverse());
  }
  /** The conjugate transpose of a matrix (`torch.Tensor.H`); real tensors only here, so the transpose. */
  get H(): Tensor {
    if (this.ndim !== 2 && this.ndim !== 0) throw new RangeError(`tensor.H is only supported on matrices (2-D tensors). Got ${this.ndim}-D tensor.`);
    return this.t();
  }
  /**
   * `torch.Tensor.unique`: the distinct elements (sorted by default), and with
   * `returnInverse`/`returnCounts` the index of each element in them and their
   * counts, as PyTorch's Python wrapper does on aten's `_unique2`/`unique_dim`.
   */
  unique(opts?: { sorted?: boolean; returnInverse?: false; returnCounts?: false; dim?: number | null }): Tensor;
  unique(opts: { sorted?: boolean; returnInverse: true; returnCounts?: false; dim?: number | null }): [Tensor, Tensor];
  unique(opts: { sorted?: boolean; returnInverse?: false; returnCounts: true; dim?: number | null }): [Tensor, Tensor];
  unique(opts: { sorted?: boolean; returnInverse: true; returnCounts: true; dim?: number | null }): [Tensor, Tensor, Tensor];
  unique(opts: { sorted?: boolean; returnInverse?: boolean; returnCounts?: boolean; dim?: number | null } = {}): Tensor | Tensor[] {
    checkOptions('unique()', opts, ['sorted', 'returnInverse', 'returnCounts', 'dim']);
    const { sorted = true, returnInverse = false, returnCounts = false, dim = null } = opts;
    const hs: Handle[] =
      dim === null
        ? native.call(op('aten::_unique2'), this._h, sorted, returnInverse, returnCounts)
        : native.call(op('aten::unique_dim'), this._h, dim, sorted, returnInverse, returnCounts);
    const [values, inverse, counts] = hs.map(wrap);
    const out = [values];
    if (returnInverse) out.push(inverse);
    else inverse.dispose();
    if (returnCounts) out.push(counts);
    else counts.dispose();
    return out.length === 1 ? values : out;
  }
  clone(): Tensor {
    return wrap(native.call(op('aten::clone'), this._h));
  }
  /** A tensor sharing storage, cut from the autograd graph. */
  detach(): Tensor {
    return wrap(native.call(op('aten::detach'), this._h));
  }
  /**
   * Replaces this tensor's data with `other`'s, keeping this object, its
   * autograd identity and `requiresGrad` (PyTorch's `t.data = other`).
   */
  setData(other: Tensor): void {
    native.call(op('aten::set_data'), this._h, handleOf(other, 'other'));
    this._meta = undefined;
  }
  detach_(): Tensor {
    native.call(op('aten::detach_'), this._h);
    return this;
  }

  // ---- autograd ---------------------------------------------------------

  get requiresGrad(): boolean {
    return native.requiresGrad(this._h);
  }
  set requiresGrad(flag: boolean) {
    this.requiresGrad_(flag);
  }
  requiresGrad_(flag = true): Tensor {
    native.call(op('aten::requires_grad_'), this._h, flag);
    return this;
  }
  /** The accumulated gradient, or null. Each read returns a new handle on the same storage. */
  get grad(): Tensor | null {
    const g = native.grad(this._h);
    return g === null ? null : wrap(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this._h, g === null ? null : handleOf(g, 'grad'));
  }
  get isLeaf(): boolean {
    return native.isLeaf(this._h);
  }
  /** The name of the autograd node that made this tensor (`'AddBackward0'`), or null for leaves. */
  get gradFn(): string | null {
    return native.gradFnName(this._h);
  }
  retainGrad(): void {
    native.call(op('aten::retain_grad'), this._h);
  }
  /**
   * Registers `hook(grad)`, called with the gradient of this tensor each time
   * backward computes it (`Tensor.register_hook`); a tensor it returns replaces
   * the gradient. The `grad` handed to the hook is freed when the hook returns,
   * unless the hook returns it or passes it to `keep()` (as `nn.Sequential` frees
   * what it passes between layers); a tensor the hook makes and returns goes to
   * autograd and its handle is freed when `backward()` returns, unless passed to
   * `keep()` (a tensor made before the hook and returned by it stays yours).
   * CPU tensors only: the backward of a CUDA graph runs on libtorch's worker
   * threads, which cannot call JS.
   * An exception thrown by the hook is thrown by `backward()`.
   */
  registerHook(hook: (grad: Tensor) => Tensor | void | undefined | null): RemovableHandle {
    checkFunction('registerHook()', "argument 'hook'", hook);
    return registerTensorHook(this, (grad) => {
      let out: Tensor | void | undefined | null;
      try {
        out = hook(grad);
      } finally {
        if (out !== grad && !isKept(grad)) grad.dispose();
      }
      if (out !== undefined && out !== null && !(out instanceof Tensor)) {
        throw new TypeError(`registerHook(): the hook must return a Tensor or undefined, got ${describe(out)}`);
      }
      return out;
    });
  }

  /** Computes gradients of this tensor with libtorch's autograd engine. */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    checkOptions('backward()', opts, ['retainGraph', 'createGraph']);
    try {
      native.backward(this._h, gradient === undefined ? null : handleOf(gradient, 'gradient'), opts.retainGraph, opts.createGraph ?? false);
    } finally {
      if (handedToAutograd.length) for (const t of handedToAutograd.splice(0)) if (!t.isDisposed) t.dispose();
    }
  }

  // ---- shape and views -------------------------------------------------------

  view(...shape: (number | readonly number[])[]): Tensor {
    return wrap(native.call(op('aten::view'), this._h, sizeArgs(shape, 'shape')));
  }
  reshape(...shape: (number | readonly number[])[]): Tensor {
    return wrap(native.call(op('aten::reshape'), this._h, sizeArgs(shape, 'shape')));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return wrap(native.call(op('aten::flatten', 'using_ints'), this._h, startDim, endDim));
  }
  permute(...dims: (number | readonly number[])[]): Tensor {
    return wrap(native.call(op('aten::permute'), this._h, sizeArgs(dims, 'dims')));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return wrap(native.call(op('aten::transpose', 'int'), this._h, dim0, dim1));
  }
  /** Transpose of a tensor with at most 2 dimensions. */
  t(): Tensor {
    return wrap(native.call(op('aten::t'), this._h));
  }
  squeeze(dim?: number): Tensor {
    if (dim === undefined) return wrap(native.call(op('aten::squeeze'), this._h));
    return wrap(native.call(op('aten::squeeze', 'dim'), this._h, dim));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(native.call(op('aten::unsqueeze'), this._h, dim));
  }
  expand(...sizes: (number | readonly number[])[]): Tensor {
    return wrap(native.call(op('aten::expand'), this._h, sizeArgs(sizes, 'size')));
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(other.shape);
  }
  contiguous(): Tensor {
    return wrap(native.call(op('aten::contiguous'), this._h));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(native.call(op('aten::narrow'), this._h, dim, start, length));
  }
  select(dim: number, index: number): Tensor {
    return wrap(native.call(op('aten::select', 'int'), this._h, dim, index));
  }
  /** `aten::slice`: elements `start` to `end` (exclusive) of `dim`, every `step`-th. */
  slice(dim = 0, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return wrap(native.call(op('aten::slice', 'Tensor'), this._h, dim, start, end, step));
  }
  split(splitSizeOrSections: number | number[], dim = 0): Tensor[] {
    if (Array.isArray(splitSizeOrSections)) {
      return wrapList(native.call(op('aten::split_with_sizes'), this._h, splitSizeOrSections, dim));
    }
    return wrapList(native.call(op('aten::split', 'Tensor'), this._h, splitSizeOrSections, dim));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return wrapList(native.call(op('aten::chunk'), this._h, chunks, dim));
  }

  /**
   * Python's `t[...]`: `x.index(':', 0, null, '1::2', idx)` is `x[:, 0, None, 1::2, idx]`.
   * Integers select, slices narrow, null adds an axis, `'...'` fills the rest,
   * and tensors index as in NumPy's advanced indexing.
   */
  index(...specs: IndexSpec[]): Tensor {
    const ndim = this.ndim;
    const consumed = specs.reduce<number>((n, s) => {
      if (s === null || s === '...') return n;
      if (isTensor(s) && s.dtype === 'bool') return n + s.ndim;
      return n + 1;
    }, 0);
    if (specs.filter((s) => s === '...').length > 1) throw new TypeError("index(): an index can only have a single ellipsis ('...')");
    if (consumed > ndim) throw new RangeError(`too many indices for tensor of dimension ${ndim}`);
    const intermediates: Tensor[] = [];
    let result: Tensor = this;
    const step = (t: Tensor): void => {
      if (result !== this) intermediates.push(result);
      result = t;
    };
    const tensorIndices: (Tensor | null)[] = [];
    let dim = 0;
    try {
      for (const s of specs) {
        if (typeof s === 'number') {
          if (!Number.isInteger(s)) throw new TypeError(`index(): ${s} is not an integer index`);
          const size = result.shape[dim];
          if (s >= size || s < -size) throw new RangeError(`index ${s} is out of bounds for dimension ${dim} with size ${size}`);
          step(result.select(dim, s));
        } else if (s === null) {
          step(result.unsqueeze(dim));
          tensorIndices.push(null);
          dim++;
        } else if (s === '...') {
          const n = ndim - consumed;
          for (let i = 0; i < n; i++) tensorIndices.push(null);
          dim += n;
        } else if (isTensor(s)) {
          tensorIndices.push(s);
          dim += s.dtype === 'bool' ? s.ndim : 1;
        } else if (typeof s === 'string' || (typeof s === 'object' && s !== null)) {
          if (typeof s === 'object') checkOptions('index()', s, ['start', 'stop', 'step'], { what: 'slice' });
          const sl = typeof s === 'string' ? parseSlice(s) : s;
          const stepBy = sl.step ?? 1;
          if (!(stepBy > 0)) throw new RangeError('index(): slice step must be greater than zero');
          if (!(sl.start == null && sl.stop == null && stepBy === 1)) {
            step(result.slice(dim, sl.start ?? null, sl.stop ?? null, stepBy));
          }
          tensorIndices.push(null);
          dim++;
        } else {
          throw new TypeError(`index(): unsupported index ${describe(s)}`);
        }
      }
      const lastTensor = tensorIndices.map((t) => t !== null).lastIndexOf(true);
      if (lastTensor >= 0) {
        const list = tensorIndices.slice(0, lastTensor + 1).map((t) => (t === null ? null : t._h));
        step(wrap(native.call(op('aten::index', 'Tensor'), result._h, list)));
      }
      if (result === this) step(wrap(native.call(op('aten::alias'), this._h)));
      return result;
    } finally {
      for (const t of intermediates) t.dispose();
    }
  }

  // ---- elementwise math --------------------------------------------------------

  add(other: Tensor | Scalar, alpha?: Scalar): Tensor {
    return binary(OPS.add, this, other, alpha);
  }
  sub(other: Tensor | Scalar, alpha?: Scalar): Tensor {
    return binary(OPS.sub, this, other, alpha);
  }
  mul(other: Tensor | Scalar): Tensor {
    return binary(OPS.mul, this, other);
  }
  /** `torch.Tensor.div`; `roundingMode` `'trunc'` or `'floor'` rounds the quotient (aten's `div.Tensor_mode`). */
  div(other: Tensor | Scalar, opts: { roundingMode?: 'trunc' | 'floor' | null } = {}): Tensor {
    checkOptions('div()', opts, ['roundingMode']);
    if (opts.roundingMode == null) return binary(OPS.div, this, other);
    return wrap(native.call(op('aten::div', 'Tensor_mode'), this._h, tensorOrScalar(other), opts.roundingMode));
  }
  pow(exponent: Tensor | Scalar): Tensor {
    if (isTensor(exponent)) return wrap(native.call(op('aten::pow', 'Tensor_Tensor'), this._h, exponent._h));
    return wrap(native.call(op('aten::pow', 'Tensor_Scalar'), this._h, checkScalar(exponent, 'exponent')));
  }
  neg(): Tensor {
    return wrap(native.call(op('aten::neg'), this._h));
  }
  abs(): Tensor {
    return wrap(native.call(op('aten::abs'), this._h));
  }
  sqrt(): Tensor {
    return wrap(native.call(op('aten::sqrt'), this._h));
  }
  exp(): Tensor {
    return wrap(native.call(op('aten::exp'), this._h));
  }
  log(): Tensor {
    return wrap(native.call(op('aten::log'), this._h));
  }
  relu(): Tensor {
    return wrap(native.call(op('aten::relu'), this._h));
  }
  sigmoid(): Tensor {
    return wrap(native.call(op('aten::sigmoid'), this._h));
  }
  tanh(): Tensor {
    return wrap(native.call(op('aten::tanh'), this._h));
  }
  clamp(min?: Scalar | Tensor | null, max?: Scalar | Tensor | null): Tensor {
    if (isTensor(min) || isTensor(max)) {
      return wrap(
        native.call(op('aten::clamp', 'Tensor'), this._h, (min as Tensor | null | undefined)?._h ?? null, (max as Tensor | null | undefined)?._h ?? null),
      );
    }
    if (min == null && max == null) throw new TypeError("clamp(): at least one of 'min' or 'max' must not be null");
    return wrap(native.call(op('aten::clamp'), this._h, min ?? null, max ?? null));
  }
  matmul(other: Tensor): Tensor {
    return wrap(native.call(op('aten::matmul'), this._h, handleOf(other, 'other')));
  }
  mm(other: Tensor): Tensor {
    return wrap(native.call(op('aten::mm'), this._h, handleOf(other, 'mat2')));
  }

  // ---- comparisons -------------------------------------------------------------

  eq(other: Tensor | Scalar): Tensor {
    return binary(OPS.eq, this, other);
  }
  ne(other: Tensor | Scalar): Tensor {
    return binary(OPS.ne, this, other);
  }
  lt(other: Tensor | Scalar): Tensor {
    return binary(OPS.lt, this, other);
  }
  le(other: Tensor | Scalar): Tensor {
    return binary(OPS.le, this, other);
  }
  gt(other: Tensor | Scalar): Tensor {
    return binary(OPS.gt, this, other);
  }
  ge(other: Tensor | Scalar): Tensor {
    return binary(OPS.ge, this, other);
  }
  /** `torch.where(condition, this, other)`. */
  where(condition: Tensor, other: Tensor | Scalar): Tensor {
    return where(condition, this, other);
  }
  /** True when both have the same shape and elements (`torch.equal`). */
  equal(other: Tensor): boolean {
    return native.call(op('aten::equal'), this._h, handleOf(other, 'other'));
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8, equalNan = false): boolean {
    return native.call(op('aten::allclose'), this._h, handleOf(other, 'other'), rtol, atol, equalNan);
  }

  // ---- reductions ---------------------------------------------------------------

  sum(dim?: number | number[] | null, keepdim = false, opts: { dtype?: DType } = {}): Tensor {
    checkOptions('sum()', opts, ['dtype']);
    const dtype = opts.dtype === undefined ? undefined : dtypeCode(opts.dtype);
    if (dim == null) return wrap(native.call(op('aten::sum'), this._h, dtype));
    return wrap(native.call(op('aten::sum', 'dim_IntList'), this._h, dim, keepdim, dtype));
  }
  mean(dim?: number | number[] | null, keepdim = false, opts: { dtype?: DType } = {}): Tensor {
    checkOptions('mean()', opts, ['dtype']);
    const dtype = opts.dtype === undefined ? undefined : dtypeCode(opts.dtype);
    if (dim == null) return wrap(native.call(op('aten::mean'), this._h, dtype));
    return wrap(native.call(op('aten::mean', 'dim'), this._h, dim, keepdim, dtype));
  }
  /** `max()` → the largest element; `max(dim)` → `[values, indices]`; `max(other)` → elementwise maximum. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(other: Tensor): Tensor;
  max(arg?: number | Tensor, keepdim = false): Tensor | [Tensor, Tensor] {
    return this.extremum('aten::max', arg, keepdim);
  }
  /** `min()` → the smallest element; `min(dim)` → `[values, indices]`; `min(other)` → elementwise minimum. */
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(other: Tensor): Tensor;
  min(arg?: number | Tensor, keepdim = false): Tensor | [Tensor, Tensor] {
    return this.extremum('aten::min', arg, keepdim);
  }
  private extremum(name: string, arg: number | Tensor | undefined, keepdim: boolean): Tensor | [Tensor, Tensor] {
    if (arg === undefined) return wrap(native.call(op(name), this._h));
    if (isTensor(arg)) return wrap(native.call(op(name, 'other'), this._h, arg._h));
    const [values, indices] = native.call(op(name, 'dim'), this._h, arg, keepdim);
    return [wrap(values), wrap(indices)];
  }
  argmax(dim?: number | null, keepdim = false): Tensor {
    return wrap(native.call(op('aten::argmax'), this._h, dim ?? null, keepdim));
  }
  argmin(dim?: number | null, keepdim = false): Tensor {
    return wrap(native.call(op('aten::argmin'), this._h, dim ?? null, keepdim));
  }
  /** Standard deviation; `unbiased` (Bessel's correction) defaults to true as in PyTorch. */
  std(dim?: number | number[] | null, opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return this.moment('aten::std', dim, opts);
  }
  var(dim?: number | number[] | null, opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return this.moment('aten::var', dim, opts);
  }
  private moment(name: string, dim: number | number[] | null | undefined, opts: { unbiased?: boolean; keepdim?: boolean }): Tensor {
    checkOptions(`${name.slice(6)}()`, opts, ['unbiased', 'keepdim']);
    const unbiased = opts.unbiased ?? true;
    if (dim == null && !opts.keepdim) return wrap(native.call(op(name), this._h, unbiased));
    return wrap(native.call(op(name, 'dim'), this._h, dim ?? null, unbiased, opts.keepdim ?? false));
  }
  softmax(dim: number, opts: { dtype?: DType } = {}): Tensor {
    checkOptions('softmax()', opts, ['dtype']);
    return wrap(native.call(op('aten::softmax', 'int'), this._h, dim, opts.dtype === undefined ? undefined : dtypeCode(opts.dtype)));
  }
  logSoftmax(dim: number, opts: { dtype?: DType } = {}): Tensor {
    checkOptions('logSoftmax()', opts, ['dtype']);
    return wrap(native.call(op('aten::log_softmax', 'int'), this._h, dim, opts.dtype === undefined ? undefined : dtypeCode(opts.dtype)));
  }
  /** The `k` largest (or smallest) elements along `dim`: `[values, indices]`. */
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    const [values, indices] = native.call(op('aten::topk'), this._h, k, dim, largest, sorted);
    return [wrap(values), wrap(indices)];
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [values, indices] = native.call(op('aten::sort'), this._h, dim, descending);
    return [wrap(values), wrap(indices)];
  }

  // ---- in place (the optimizers' toolkit) -------------------------------------------

  add_(other: Tensor | Scalar, alpha?: Scalar): Tensor {
    return binaryInPlace(OPS.add_, this, other, alpha);
  }
  sub_(other: Tensor | Scalar, alpha?: Scalar): Tensor {
    return binaryInPlace(OPS.sub_, this, other, alpha);
  }
  mul_(other: Tensor | Scalar): Tensor {
    return binaryInPlace(OPS.mul_, this, other);
  }
  div_(other: Tensor | Scalar): Tensor {
    return binaryInPlace(OPS.div_, this, other);
  }
  /** `this += value * tensor1 * tensor2` */
  addcmul_(tensor1: Tensor, tensor2: Tensor, value: Scalar = 1): Tensor {
    native.call(op('aten::addcmul_'), this._h, handleOf(tensor1, 'tensor1'), handleOf(tensor2, 'tensor2'), value);
    return this;
  }
  /** `this += weight * (end - this)`, as `torch.Tensor.lerp_(end, weight)` with a number weight. */
  lerp_(end: Tensor, weight: Scalar): Tensor {
    native.call(op('aten::lerp_', 'Scalar'), this._h, handleOf(end, 'end'), weight);
    return this;
  }
  /** `this += value * tensor1 / tensor2` */
  addcdiv_(tensor1: Tensor, tensor2: Tensor, value: Scalar = 1): Tensor {
    native.call(op('aten::addcdiv_'), this._h, handleOf(tensor1, 'tensor1'), handleOf(tensor2, 'tensor2'), value);
    return this;
  }
  copy_(src: Tensor, nonBlocking = false): Tensor {
    native.call(op('aten::copy_'), this._h, handleOf(src, 'src'), nonBlocking);
    return this;
  }
  zero_(): Tensor {
    native.call(op('aten::zero_'), this._h);
    return this;
  }
  fill_(value: Scalar): Tensor {
    native.call(op('aten::fill_', 'Scalar'), this._h, checkScalar(value, 'value'));
    return this;
  }
  clamp_(min?: Scalar | null, max?: Scalar | null): Tensor {
    if (min == null && max == null) throw new TypeError("clamp_(): at least one of 'min' or 'max' must not be null");
    native.call(op('aten::clamp_'), this._h, min ?? null, max ?? null);
    return this;
  }
  relu_(): Tensor {
    native.call(op('aten::relu_'), this._h);
    return this;
  }
  sqrt_(): Tensor {
    native.call(op('aten::sqrt_'), this._h);
    return this;
  }
  /** Fills with samples of N(mean, std²) from the global generator (see `manualSeed`). */
  normal_(mean = 0, std = 1): Tensor {
    native.call(op('aten::normal_'), this._h, mean, std);
    return this;
  }
  /** Fills with samples of U(from, to) from the global generator. */
  uniform_(from = 0, to = 1): Tensor {
    native.call(op('aten::uniform_'), this._h, from, to);
    return this;
  }
}
// The generated methods (TensorMethods) build their results with this class.
registerTensorClass(Tensor);

// ---- module-level functions that take several tensors ----------------------------------

/** `torch.where(condition, input, other)`; `input`/`other` may be numbers. */
export function where(condition: Tensor, input: Tensor | Scalar, other: Tensor | Scalar): Tensor {
  const c = handleOf(condition, 'condition');
  if (isTensor(input) && isTensor(other)) return wrap(native.call(op('aten::where', 'self'), c, input._h, other._h));
  if (isTensor(input)) return wrap(native.call(op('aten::where', 'ScalarOther'), c, input._h, checkScalar(other, 'other')));
  if (isTensor(other)) return wrap(native.call(op('aten::where', 'ScalarSelf'), c, checkScalar(input, 'input'), other._h));
  return wrap(native.call(op('aten::where', 'Scalar'), c, checkScalar(input, 'input'), checkScalar(other, 'other')));
}

function handles(tensors: readonly Tensor[], what: string): Handle[] {
  if (!Array.isArray(tensors)) throw new TypeError(`argument '${what}' must be an array of Tensors, got ${describe(tensors)}`);
  return tensors.map((t, i) => handleOf(t, `${what}[${i}]`));
}

/** Concatenates along an existing dimension. */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(native.call(op('aten::cat'), handles(tensors, 'tensors'), dim));
}
/** Stacks along a new dimension. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(native.call(op('aten::stack'), handles(tensors, 'tensors'), dim));
}
export function broadcastTensors(...tensors: Tensor[]): Tensor[] {
  return wrapList(native.call(op('aten::broadcast_tensors'), handles(tensors, 'tensors')));
}

/**
 * @internal Registers `hook` on `t` with no ownership rule for the gradient:
 * the caller disposes it (module backward hooks keep grad outputs until the
 * inputs' gradients arrive).
 */
// The tensors hooks returned during a backward: autograd takes its own reference,
// so their handles are freed when backward returns, unless passed to keep()
// (without this a hook's g.mul(2) would outlive every backward of a loop).
const handedToAutograd: Tensor[] = [];
/** While a tensor hook runs: the tensors it makes (only those are the hook's to hand over; a tensor it merely returns stays the caller's). */
let madeInHook: Set<Tensor> | null = null;

export function registerTensorHook(t: Tensor, hook: (grad: Tensor) => Tensor | void | undefined | null): RemovableHandle {
  const h = handleOf(t, 'tensor');
  const pos = native.registerHook(h, (g) => {
    const outer = madeInHook;
    const made = new Set<Tensor>();
    madeInHook = made;
    let out: Tensor | void | undefined | null;
    try {
      out = hook(wrap(g));
    } finally {
      madeInHook = outer;
    }
    if (!out) return undefined;
    if (made.has(out) && !isKept(out)) handedToAutograd.push(out);
    return out._h;
  });
  return new RemovableHandle(() => {
    if (!t.isDisposed) native.removeHook(h, pos);
  });
}
