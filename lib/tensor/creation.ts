// Creation functions: torch.tensor, zeros, randn, … with PyTorch's dtype rules.
import { markAsUntransferable } from 'node:worker_threads';
import { native, op } from '../native.js';
import { type DType, dtypeCode, dtypeOfTypedArray, elementSize, normalizeDtype } from './dtype.js';
import { checkBoolean, checkOptions } from '../utils/args.js';
import { type Tensor, type TensorOptions, describe, handleOf, sizeArgs, wrap } from './tensor.js';

type Nested = number | boolean | bigint | Nested[];
/** What {@link tensor} accepts: a number, nested arrays, or a typed array (with `shape`). */
export type TensorData = Nested | ArrayBufferView;

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

const TENSOR_OPTIONS = ['dtype', 'device', 'requiresGrad'] as const;

/** `opts` checked for unknown keys (a typo must not silently fall back to a default). */
function tensorOptions(fn: string, opts: unknown, extra: readonly string[] = []): TensorOptions {
  checkOptions(fn, opts, [...TENSOR_OPTIONS, ...extra]);
  checkBoolean(fn, 'requiresGrad', (opts as TensorOptions | undefined)?.requiresGrad);
  return (opts ?? {}) as TensorOptions;
}

/** 'aten::zeros_like' → 'zerosLike()', for messages. */
const jsName = (aten: string): string => `${aten.slice(6).replace(/_(\w)/g, (_, c: string) => c.toUpperCase())}()`;

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

// The ranges PyTorch 1.13 accepts for each integer dtype (c10::checked_convert). A Python int may
// be negative down to -max for uint8 and wraps (-1 → 255); a float must lie in [lowest, max] and is
// truncated; NaN and ±inf never fit.
const INT_RANGES: Partial<Record<DType, [bigint, bigint, number, number]>> = {
  uint8: [-255n, 255n, 0, 255],
  int8: [-128n, 127n, -128, 127],
  int16: [-32768n, 32767n, -32768, 32767],
  int32: [-2147483648n, 2147483647n, -2147483648, 2147483647],
  int64: [-(2n ** 63n), 2n ** 63n - 1n, -(2 ** 63), 2 ** 63],
};

/** A value for an integer dtype, or PyTorch's overflow error naming the value and where it is. */
function checkedInt(v: number | bigint, dtype: DType, i: number, shape: readonly number[]): bigint {
  const [lo, hi, flo, fhi] = INT_RANGES[dtype]!;
  // Integral numbers are Python ints (as inferDtype treats them); others are Python floats.
  let ok: boolean;
  let n: bigint | undefined;
  if (typeof v === 'bigint' || Number.isInteger(v)) {
    n = BigInt(v);
    ok = n >= lo && n <= hi;
  } else {
    ok = v >= flo && (dtype === 'int64' ? v < fhi : v <= fhi);
    if (ok) n = BigInt(Math.trunc(v));
  }
  if (!ok || n === undefined) {
    const at = shape.length === 0 ? '' : ` at [${unravel(i, shape).join(', ')}]`;
    throw new RangeError(`tensor(): value ${describe(v)}${at} cannot be converted to type ${dtype} without overflow`);
  }
  return n;
}

function unravel(i: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return out;
}

function encode(flat: (number | boolean | bigint)[], dtype: DType, shape: readonly number[]): ArrayBufferView {
  const num = (v: number | boolean | bigint): number => Number(v);
  const int = (v: number | boolean | bigint, i: number): bigint => (typeof v === 'boolean' ? BigInt(v) : checkedInt(v, dtype, i, shape));
  switch (dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return Float32Array.from(flat, num);
    case 'float64':
      return Float64Array.from(flat, num);
    case 'int64':
      return BigInt64Array.from(flat, int);
    // Each value is checked first; the typed array then wraps (uint8 -1 → 255) as PyTorch does.
    case 'int32':
      return Int32Array.from(flat, (v, i) => Number(int(v, i)));
    case 'int16':
      return Int16Array.from(flat, (v, i) => Number(int(v, i)));
    case 'int8':
      return Int8Array.from(flat, (v, i) => Number(int(v, i)));
    case 'uint8':
      return Uint8Array.from(flat, (v, i) => Number(int(v, i)));
    case 'bool':
      return Uint8Array.from(flat, (v) => (num(v) !== 0 ? 1 : 0));
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
export function tensor(data: TensorData, options?: TensorOptions & { shape?: number[] }): Tensor {
  const opts = tensorOptions('tensor()', options, ['shape']) as TensorOptions & { shape?: number[] };
  const wanted = opts.shape === undefined ? undefined : sizeArgs([opts.shape], 'shape', 'tensor()');
  let t: Tensor;
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    if (own === undefined) throw new TypeError(`tensor(): unsupported typed array ${data.constructor.name}`);
    const length = data.byteLength / elementSize(own);
    if (wanted) checkNumel('tensor()', wanted, length, `the ${data.constructor.name}`);
    t = fromTypedArray(data, wanted ?? [length], own);
    dtype = opts.dtype === undefined ? own : normalizeDtype(opts.dtype);
  } else {
    const { shape, flat } = flattenNested(data as Nested);
    if (wanted) checkNumel('tensor()', wanted, flat.length, 'the data');
    dtype = opts.dtype === undefined ? inferDtype(flat) : normalizeDtype(opts.dtype);
    const carrier: DType = dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
    t = fromTypedArray(encode(flat, carrier, shape), wanted ?? shape, carrier);
  }
  return finish(castAndPlace(t, opts, dtype), opts);
}

/**
 * A CPU tensor over the bytes of `buffer` (a Buffer, typed array or ArrayBuffer) without
 * copying when the bytes are aligned for `dtype`; the tensor keeps the buffer's memory alive.
 * Writes through either side are visible to the other. `shape` must hold exactly the buffer's
 * elements (pass a `subarray` for part of a buffer).
 *
 * The buffer is marked untransferable (`worker_threads.markAsUntransferable`): `postMessage` and
 * `structuredClone` then copy it instead of detaching it, so it stays shared with the tensor.
 * A resizable ArrayBuffer cannot be shared (shrinking it would free memory under the tensor):
 * it is an error, as is a detached buffer.
 */
export function fromBuffer(buffer: ArrayBufferView | ArrayBuffer, opts: { dtype: DType; shape?: number[] }): Tensor {
  checkOptions('fromBuffer()', opts, ['dtype', 'shape'], { required: ['dtype'] });
  const dtype = normalizeDtype(opts.dtype);
  const isView = ArrayBuffer.isView(buffer);
  if (!isView && !(buffer instanceof ArrayBuffer)) {
    const shared = typeof SharedArrayBuffer === 'function' && (buffer as unknown) instanceof SharedArrayBuffer;
    throw new TypeError(
      `fromBuffer(): argument 'buffer' must be a Buffer, typed array or ArrayBuffer, got ${describe(buffer)}${shared ? ' (SharedArrayBuffer is not supported)' : ''}`,
    );
  }
  const ab = isView ? buffer.buffer : buffer;
  if (!(ab instanceof ArrayBuffer))
    throw new TypeError(`fromBuffer(): argument 'buffer' is a view of a ${describe(ab)}, which is not supported; copy it with tensor()`);
  if (isDetached(ab)) {
    throw new TypeError(
      "fromBuffer(): argument 'buffer' is a detached ArrayBuffer (it was transferred, e.g. by postMessage or structuredClone, and holds no data)",
    );
  }
  if ((ab as { resizable?: boolean }).resizable) {
    throw new TypeError(
      `fromBuffer(): argument 'buffer' is a resizable ArrayBuffer (maxByteLength ${(ab as { maxByteLength?: number }).maxByteLength}); a tensor cannot share memory that can shrink under it: pass a fixed-length buffer, or copy it with tensor()`,
    );
  }
  const byteOffset = isView ? buffer.byteOffset : 0;
  const byteLength = isView ? buffer.byteLength : buffer.byteLength;
  const size = elementSize(dtype);
  if (byteLength % size !== 0) {
    throw new RangeError(`fromBuffer(): ${byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const count = byteLength / size;
  const shape = opts.shape === undefined ? [count] : sizeArgs([opts.shape], 'shape');
  checkNumel('fromBuffer()', shape, count, `the buffer (as ${dtype})`);
  const copy = !shareable(ab);
  return wrap(native.fromBuffer(ab, byteOffset, shape, dtypeCode(dtype), copy));
}

/** Whether `ab` was detached (Node 20 has no `ArrayBuffer.prototype.detached`). */
function isDetached(ab: ArrayBuffer): boolean {
  const flag = (ab as { detached?: boolean }).detached;
  if (flag !== undefined) return flag;
  if (ab.byteLength !== 0) return false;
  try {
    new Uint8Array(ab);
    return false;
  } catch {
    return true;
  }
}

/**
 * Marks `ab` untransferable so that it cannot be detached while a tensor shares it. Where this
 * Node's markAsUntransferable does not stop `ArrayBuffer.prototype.transfer` (which may move the
 * memory), sharing is unsafe and fromBuffer copies instead (false).
 */
function shareable(ab: ArrayBuffer): boolean {
  markAsUntransferable(ab);
  return transferIsBlocked();
}

let transferBlocked: boolean | undefined;
function transferIsBlocked(): boolean {
  if (transferBlocked !== undefined) return transferBlocked;
  const transfer = (ArrayBuffer.prototype as { transfer?: (n?: number) => ArrayBuffer }).transfer;
  if (typeof transfer !== 'function') {
    transferBlocked = true;
    return true;
  }
  const probe = new ArrayBuffer(8);
  markAsUntransferable(probe);
  try {
    transfer.call(probe, 16);
  } catch {
    // expected: the untransferable buffer refused to be detached
  }
  transferBlocked = probe.byteLength === 8;
  return transferBlocked;
}

/** Throws unless `shape` holds exactly `count` elements (a smaller shape would silently drop data). */
function checkNumel(fn: string, shape: readonly number[], count: number, source: string): void {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (shape.some((s) => s < 0) || numel !== count) {
    throw new RangeError(`${fn}: argument 'shape' [${shape.join(', ')}] holds ${numel} elements, but ${source} has ${count}; the sizes must match exactly`);
  }
}

type SizeAndOptions = (number | readonly number[] | TensorOptions)[];
function splitOptions(fn: string, args: SizeAndOptions): [number[], TensorOptions] {
  const last = args[args.length - 1];
  const hasOptions = last !== null && typeof last === 'object' && !Array.isArray(last);
  const opts = tensorOptions(fn, hasOptions ? last : undefined);
  const sizes = (hasOptions ? args.slice(0, -1) : args) as (number | number[])[];
  return [sizeArgs(sizes, 'size', fn), opts];
}

function sized(name: string, overload: string, args: SizeAndOptions, defaultDtype?: DType): Tensor {
  const [size, opts] = splitOptions(jsName(name), args);
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
export function full(size: readonly number[], fillValue: number | boolean, options?: TensorOptions): Tensor {
  const opts = tensorOptions('full()', options);
  const dtype = opts.dtype ?? (typeof fillValue === 'boolean' ? 'bool' : Number.isInteger(fillValue) ? 'int64' : 'float32');
  return finish(wrap(native.call(op('aten::full'), sizeArgs([size]), fillValue, ...factoryArgs(opts, dtype))), opts);
}

/** `arange(end)`, `arange(start, end, step?)`: int64 when all arguments are integers, else float32. */
export function arange(start: number, end?: number | TensorOptions, step?: number | TensorOptions, options?: TensorOptions): Tensor {
  let opts = tensorOptions('arange()', options);
  const nums: number[] = [start];
  for (const a of [end, step]) {
    if (typeof a === 'number') nums.push(a);
    else if (a !== undefined) opts = tensorOptions('arange()', a);
  }
  const args = nums.length === 1 ? [0, nums[0], 1] : nums.length === 2 ? [nums[0], nums[1], 1] : nums;
  const dtype = opts.dtype ?? (args.every(Number.isInteger) ? 'int64' : 'float32');
  // Pass the bounds as doubles unless the result is integral, as Python does.
  return finish(wrap(native.call(op('aten::arange', 'start_step'), ...args, ...factoryArgs(opts, dtype))), opts);
}

/** `steps` evenly spaced values from `start` to `end` inclusive. */
export function linspace(start: number, end: number, steps: number, options?: TensorOptions): Tensor {
  const opts = tensorOptions('linspace()', options);
  return finish(wrap(native.call(op('aten::linspace'), start, end, steps, ...factoryArgs(opts, 'float32'))), opts);
}

/** Random integers in [low, high) (int64 by default): `randint(10, [3])` or `randint(2, 10, [3])`. */
export function randint(
  lowOrHigh: number,
  highOrSize: number | readonly number[],
  sizeOrOpts?: readonly number[] | TensorOptions,
  options?: TensorOptions,
): Tensor {
  let low = 0;
  let high: number;
  let size: readonly number[];
  let opts: TensorOptions;
  if (Array.isArray(highOrSize)) {
    high = lowOrHigh;
    size = highOrSize;
    opts = tensorOptions('randint()', sizeOrOpts);
  } else {
    if (typeof highOrSize !== 'number') {
      throw new TypeError(`randint(): the second argument must be 'high' (a number) or 'size' (an array of integers), got ${describe(highOrSize)}`);
    }
    low = lowOrHigh;
    high = highOrSize as number;
    size = sizeOrOpts as readonly number[];
    opts = tensorOptions('randint()', options);
  }
  if (!Array.isArray(size)) throw new TypeError(`randint(): argument 'size' must be an array of integers, got ${describe(size)}`);
  return finish(wrap(native.call(op('aten::randint', 'low'), low, high, sizeArgs([size]), ...factoryArgs(opts, 'int64'))), opts);
}

/** The `n`×`m` identity matrix. */
export function eye(n: number, m?: number | TensorOptions, options?: TensorOptions): Tensor {
  const opts = tensorOptions('eye()', typeof m === 'object' ? m : options);
  const cols = typeof m === 'number' ? m : n;
  return finish(wrap(native.call(op('aten::eye', 'm'), n, cols, ...factoryArgs(opts))), opts);
}

function like(name: string, t: Tensor, options: TensorOptions | undefined): Tensor {
  const opts = tensorOptions(jsName(name), options);
  return finish(wrap(native.call(op(name), handleOf(t, 'input'), ...factoryArgs(opts))), opts);
}
export const zerosLike = (t: Tensor, opts?: TensorOptions): Tensor => like('aten::zeros_like', t, opts);
export const onesLike = (t: Tensor, opts?: TensorOptions): Tensor => like('aten::ones_like', t, opts);
export const randnLike = (t: Tensor, opts?: TensorOptions): Tensor => like('aten::randn_like', t, opts);
export const emptyLike = (t: Tensor, opts?: TensorOptions): Tensor => like('aten::empty_like', t, opts);
