// Creation functions: torch.tensor, zeros, randn, … with PyTorch's dtype rules.
import { native, op } from '../native.js';
import { type DType, dtypeCode, dtypeOfTypedArray, elementSize, normalizeDtype } from './dtype.js';
import { Tensor, type TensorOptions, describe, handleOf, sizeArgs, wrap } from './tensor.js';

type Nested = number | boolean | bigint | Nested[];
/** What {@link tensor} accepts: a number, nested arrays, or a typed array (with `shape`). */
export type TensorData = Nested | ArrayBufferView;

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function factoryArgs(opts: TensorOptions, defaultDtype?: DType): [number | undefined, undefined, string | undefined, undefined] {
  const dtype = opts.dtype ?? defaultDtype;
  return [dtype === undefined ? undefined : dtypeCode(dtype), undefined, opts.device, undefined];
}

/** Shape and flat values of nested arrays, with PyTorch's errors for ragged or non-numeric data. */
function flattenNested(data: Nested): { shape: number[]; flat: (number | boolean | bigint)[] } {
  const shape: number[] = [];
  for (let d: Nested = data; Array.isArray(d); d = d[0]) {
    shape.push(d.length);
    if (d.length === 0) break;
  }
  const flat: (number | boolean | bigint)[] = [];
  const walk = (d: Nested, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof d !== 'number' && typeof d !== 'boolean' && typeof d !== 'bigint') {
        throw new TypeError(`tensor(): expected numbers or booleans, got ${describe(d)} at ${path || 'top level'}`);
      }
      flat.push(d);
      return;
    }
    if (!Array.isArray(d)) throw new TypeError(`tensor(): expected a sequence at ${path} (dim ${depth}), got ${describe(d)}`);
    if (d.length !== shape[depth]) {
      throw new RangeError(`tensor(): expected sequence of length ${shape[depth]} at dim ${depth} (got ${d.length})`);
    }
    d.forEach((x, i) => walk(x, depth + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  return { shape, flat };
}

function inferDtype(flat: (number | boolean | bigint)[]): DType {
  if (flat.length > 0 && flat.every((v) => typeof v === 'boolean')) return 'bool';
  if (flat.some((v) => typeof v === 'boolean')) throw new TypeError('tensor(): cannot mix booleans and numbers');
  // JS has one number type: integral data becomes int64 like Python ints, anything else float32.
  return flat.every((v) => typeof v === 'bigint' || Number.isInteger(v)) ? 'int64' : 'float32';
}

function encode(flat: (number | boolean | bigint)[], dtype: DType): ArrayBufferView {
  const num = (v: number | boolean | bigint): number => (typeof v === 'bigint' ? Number(v) : Number(v));
  switch (dtype) {
    case 'float32': case 'float16': case 'bfloat16': return Float32Array.from(flat, num);
    case 'float64': return Float64Array.from(flat, num);
    case 'int64': return BigInt64Array.from(flat, (v) => (typeof v === 'bigint' ? v : BigInt(Math.trunc(num(v)))));
    case 'int32': return Int32Array.from(flat, num);
    case 'int16': return Int16Array.from(flat, num);
    case 'int8': return Int8Array.from(flat, num);
    case 'uint8': return Uint8Array.from(flat, num);
    case 'bool': return Uint8Array.from(flat, (v) => (num(v) !== 0 ? 1 : 0));
  }
}

/** Copies a typed array's elements into a new CPU tensor of its own dtype. */
function fromTypedArray(a: ArrayBufferView, shape: number[], asDtype: DType, copy = true): Tensor {
  return wrap(native.fromBuffer(a.buffer, a.byteOffset, shape, dtypeCode(asDtype), copy));
}

function castAndPlace(t: Tensor, opts: TensorOptions, dtype: DType): Tensor {
  if (t.dtype === dtype && (opts.device === undefined || opts.device === 'cpu')) return t;
  const out = t.to({ dtype, device: opts.device });
  t.dispose();
  return out;
}

/**
 * `torch.tensor`: a new tensor holding a copy of `data`.
 * Nested arrays of integers become int64 and of other numbers float32 (pass `dtype` to choose);
 * typed arrays keep their element type (Float64Array → float64); give `shape` to lay a flat typed array out.
 */
export function tensor(data: TensorData, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  let t: Tensor;
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    if (own === undefined) throw new TypeError(`tensor(): unsupported typed array ${describe(data)}`);
    const length = data.byteLength / elementSize(own);
    const shape = opts.shape ?? [length];
    t = fromTypedArray(data, shape, own);
    dtype = opts.dtype === undefined ? own : normalizeDtype(opts.dtype);
  } else {
    const { shape, flat } = flattenNested(data as Nested);
    dtype = opts.dtype === undefined ? inferDtype(flat) : normalizeDtype(opts.dtype);
    const carrier: DType = dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
    t = fromTypedArray(encode(flat, carrier), opts.shape ?? shape, carrier);
  }
  return finish(castAndPlace(t, opts, dtype), opts);
}

/**
 * A CPU tensor over the bytes of `buffer` (a Buffer, typed array or ArrayBuffer) without
 * copying when the bytes are aligned for `dtype`; the tensor keeps the buffer alive.
 * Writes through either side are visible to the other.
 */
export function fromBuffer(buffer: ArrayBufferView | ArrayBuffer, opts: { dtype: DType; shape?: number[] }): Tensor {
  const dtype = normalizeDtype(opts.dtype);
  const view = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : buffer;
  if (!ArrayBuffer.isView(view)) throw new TypeError(`fromBuffer(): expected a Buffer, typed array or ArrayBuffer, got ${describe(buffer)}`);
  const size = elementSize(dtype);
  if (view.byteLength % size !== 0) {
    throw new RangeError(`fromBuffer(): ${view.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  return wrap(native.fromBuffer(view.buffer, view.byteOffset, opts.shape ?? [view.byteLength / size], dtypeCode(dtype), false));
}

type SizeAndOptions = (number | readonly number[] | TensorOptions)[];
function splitOptions(args: SizeAndOptions): [number[], TensorOptions] {
  const last = args[args.length - 1];
  const hasOptions = last !== undefined && typeof last === 'object' && !Array.isArray(last);
  const opts = (hasOptions ? last : {}) as TensorOptions;
  const sizes = (hasOptions ? args.slice(0, -1) : args) as (number | number[])[];
  return [sizeArgs(sizes), opts];
}

function sized(name: string, overload: string, args: SizeAndOptions, defaultDtype?: DType): Tensor {
  const [size, opts] = splitOptions(args);
  return finish(wrap(native.call(op(name, overload), size, ...factoryArgs(opts, defaultDtype))), opts);
}

/** `zeros(2, 3)`, `zeros([2, 3], { dtype })` */
export const zeros = (...args: SizeAndOptions): Tensor => sized('aten::zeros', '', args);
export const ones = (...args: SizeAndOptions): Tensor => sized('aten::ones', '', args);
/** Uninitialised memory, as `torch.empty`. */
export const empty = (...args: SizeAndOptions): Tensor => sized('aten::empty', 'memory_format', args);
/** Samples of N(0, 1) from the global generator. */
export const randn = (...args: SizeAndOptions): Tensor => sized('aten::randn', '', args);
/** Samples of U[0, 1) from the global generator. */
export const rand = (...args: SizeAndOptions): Tensor => sized('aten::rand', '', args);

/** A tensor of `size` filled with `fillValue` (int64 for integers, float32 otherwise, as in PyTorch). */
export function full(size: readonly number[], fillValue: number | boolean, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (typeof fillValue === 'boolean' ? 'bool' : Number.isInteger(fillValue) ? 'int64' : 'float32');
  return finish(wrap(native.call(op('aten::full'), sizeArgs([size]), fillValue, ...factoryArgs(opts, dtype))), opts);
}

/** `arange(end)`, `arange(start, end, step?)`: int64 when all arguments are integers, else float32. */
export function arange(start: number, end?: number | TensorOptions, step?: number | TensorOptions, options?: TensorOptions): Tensor {
  let opts: TensorOptions = options ?? {};
  const nums: number[] = [start];
  for (const a of [end, step]) {
    if (typeof a === 'number') nums.push(a);
    else if (a !== undefined) opts = a;
  }
  const args = nums.length === 1 ? [0, nums[0], 1] : nums.length === 2 ? [nums[0], nums[1], 1] : nums;
  const dtype = opts.dtype ?? (args.every(Number.isInteger) ? 'int64' : 'float32');
  // Pass the bounds as doubles unless the result is integral, as Python does.
  return finish(wrap(native.call(op('aten::arange', 'start_step'), ...args, ...factoryArgs(opts, dtype))), opts);
}

/** `steps` evenly spaced values from `start` to `end` inclusive. */
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(op('aten::linspace'), start, end, steps, ...factoryArgs(opts, 'float32'))), opts);
}

/** Random integers in [low, high) (int64 by default): `randint(10, [3])` or `randint(2, 10, [3])`. */
export function randint(lowOrHigh: number, highOrSize: number | readonly number[], sizeOrOpts?: readonly number[] | TensorOptions, options?: TensorOptions): Tensor {
  let low = 0;
  let high: number;
  let size: readonly number[];
  let opts: TensorOptions;
  if (Array.isArray(highOrSize)) {
    high = lowOrHigh;
    size = highOrSize;
    opts = (sizeOrOpts as TensorOptions | undefined) ?? {};
  } else {
    low = lowOrHigh;
    high = highOrSize as number;
    size = sizeOrOpts as readonly number[];
    opts = options ?? {};
  }
  if (!Array.isArray(size)) throw new TypeError(`randint(): argument 'size' must be an array of integers, got ${describe(size)}`);
  return finish(wrap(native.call(op('aten::randint', 'low'), low, high, sizeArgs([size]), ...factoryArgs(opts, 'int64'))), opts);
}

/** The `n`×`m` identity matrix. */
export function eye(n: number, m?: number | TensorOptions, options?: TensorOptions): Tensor {
  const opts = typeof m === 'object' ? m : options ?? {};
  const cols = typeof m === 'number' ? m : n;
  return finish(wrap(native.call(op('aten::eye', 'm'), n, cols, ...factoryArgs(opts))), opts);
}

function like(name: string, t: Tensor, opts: TensorOptions): Tensor {
  return finish(wrap(native.call(op(name), handleOf(t, 'input'), ...factoryArgs(opts))), opts);
}
export const zerosLike = (t: Tensor, opts: TensorOptions = {}): Tensor => like('aten::zeros_like', t, opts);
export const onesLike = (t: Tensor, opts: TensorOptions = {}): Tensor => like('aten::ones_like', t, opts);
export const randnLike = (t: Tensor, opts: TensorOptions = {}): Tensor => like('aten::randn_like', t, opts);
export const emptyLike = (t: Tensor, opts: TensorOptions = {}): Tensor => like('aten::empty_like', t, opts);
