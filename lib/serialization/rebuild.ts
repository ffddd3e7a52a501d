// Rebuilding tensors from storages, as torch/_utils.py's _rebuild_tensor_v2:
// each storage of the file is read into a buffer of its own with a 1-D tensor
// laid over it without copying, and every tensor that uses it is an
// `as_strided` view of that base, detached, so views that shared storage in
// Python share it here too. Every size, stride and offset is checked against
// the storage, and every storage against the bytes the file has left and the
// load's `maxBytes`, before anything is allocated.
import { native, op } from '../native.js';
import { type DType, dtypeCode, elementSize } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';
import { kind } from './pickle.js';
import { FormatError } from './source.js';
import { OrderedDict } from './types.js';
import { ownBuffer } from './zip.js';

/** The dtypes a file may name (torch.float32 … torch.bool). */
const FILE_DTYPES: ReadonlySet<string> = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

/**
 * zip: where storages come from. Each storage is a record, checked before
 * anything is allocated (the result names the record, for messages) and read
 * into a buffer of its own as soon as the pickle names it.
 */
export interface StorageRecords {
  check(key: string, nbytes: number): string;
  read(key: string, nbytes: number, dtype: DType): Buffer;
}

/** A typed view of a storage, as PyTorch's TypedStorage: `numel` elements of `dtype` from element `offset`. */
export class StorageRef {
  constructor(
    readonly root: StorageRoot,
    readonly dtype: DType,
    readonly offset: number,
    readonly numel: number,
  ) {}
}

interface ViewRecord {
  tensor: Tensor;
  dtype: DType;
  offset: number; // in elements of dtype from the start of the root storage
  size: number[];
  stride: number[];
}

/** One storage of the file: its bytes (our own buffer) and the 1-D tensor over them. */
export class StorageRoot {
  readonly bases = new Map<DType, Tensor>();
  readonly views: ViewRecord[] = [];
  filled = false;
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly location: string,
    readonly buf: Buffer,
  ) {}
  get nbytes(): number {
    return this.buf.length;
  }
}

export const MAX_DIMS = 64;

export function isSafeCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function asString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  return undefined;
}

export function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_DIMS || !v.every(isSafeCount)) {
    throw new FormatError(`${what} must be a tuple of at most ${MAX_DIMS} non-negative integers, got ${describeValue(v)}`);
  }
  return v as number[];
}

export function describeValue(v: unknown, depth = 0): string {
  if (Array.isArray(v)) {
    if (depth > 2) return '(...)';
    return `(${v
      .slice(0, 8)
      .map((x) => describeValue(x, depth + 1))
      .join(', ')}${v.length > 8 ? ', ...' : ''})`;
  }
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return kind(v);
}

/**
 * Work counters for tests: `viewVisits` counts the view records that BUILD's
 * retargeting looks at, which must stay linear in the number of tensors.
 * @internal
 */
export const loadCounters = { viewVisits: 0 };

const OPS = {
  asStrided: op('aten::as_strided'),
  detach: op('aten::detach'),
  viewDtype: op('aten::view', 'dtype'),
  narrow: op('aten::narrow'),
};

/**
 * The storages and tensors of one load: allocation against the budget, views,
 * and what happens after the pickle (bare storages, device placement, cleanup).
 */
export class Rebuilder {
  readonly roots = new Map<string, StorageRoot>();
  /** Every tensor made so far, to dispose on failure and to find orphans. */
  readonly created: Tensor[] = [];
  /** The view record of each tensor rebuild() made, so BUILD can retarget it without a scan. */
  private readonly viewOf = new Map<Tensor, ViewRecord>();
  /** Bytes allocated for storages (and the zip pickle), at most `maxBytes`. */
  private allocated = 0;

  /**
   * @param budget bytes the file has left for storages (legacy and tar: they must lie in the file)
   * @param maxBytes the load's allocation limit, and how it was chosen (for messages)
   */
  constructor(
    private readonly budget: () => number,
    private readonly maxBytes: { value: number; why: string },
  ) {}

  /** Counts `nbytes` against `maxBytes` before they are allocated. */
  charge(what: string, nbytes: number): void {
    const total = this.allocated + nbytes;
    if (total > this.maxBytes.value) {
      throw new FormatError(
        `${what} needs ${nbytes} bytes, which would bring this load to ${total} bytes, more than maxBytes = ${this.maxBytes.value} ` +
          `(${this.maxBytes.why}); if the file is trusted, pass a larger maxBytes to load()`,
      );
    }
    this.allocated = total;
  }

  /** Allocates storage `key` (zip: reads its record); checked against the file and `maxBytes` first. */
  makeRoot(key: string, dtype: DType, numel: number, location: string, records?: StorageRecords): StorageRoot {
    // (The tar format gives the count as a raw int64, which may be negative.)
    if (!isSafeCount(numel)) throw new FormatError(`storage '${key}' declares an absurd size of ${describeValue(numel)} elements`);
    const es = elementSize(dtype);
    const nbytes = numel * es;
    const room = this.budget() - this.allocated;
    if (!Number.isSafeInteger(nbytes) || nbytes > room) {
      throw new FormatError(
        `storage '${key}' declares ${numel} ${dtype} elements (${nbytes} bytes), more than the ${Math.max(0, room)} bytes the file has left for it`,
      );
    }
    const record = records?.check(key, nbytes);
    this.charge(`storage '${key}'${record ? ` (${record})` : ''}`, nbytes);
    const buf = records ? records.read(key, nbytes, dtype) : ownBuffer(nbytes);
    const root = new StorageRoot(key, dtype, numel, location, buf);
    root.filled = records !== undefined;
    // Bases are ours alone (never in the result): load() disposes them when done.
    root.bases.set(dtype, wrap(native.fromBuffer(root.buf.buffer, root.buf.byteOffset, [numel], dtypeCode(dtype), false)));
    this.roots.set(key, root);
    return root;
  }

  track(t: Tensor): Tensor {
    this.created.push(t);
    return t;
  }

  /** The storage seen as a 1-D tensor of `dtype` (one storage, many dtypes: views of one base). */
  private baseFor(root: StorageRoot, dtype: DType, bases = root.bases): Tensor {
    let base = bases.get(dtype);
    if (base) return base;
    const first = bases.get(root.dtype)!;
    const es = elementSize(dtype);
    const bytes = wrap(native.call(OPS.viewDtype, first._h, dtypeCode('uint8')));
    const usable = Math.floor(root.nbytes / es) * es;
    const cut = wrap(native.call(OPS.narrow, bytes._h, 0, 0, usable));
    base = wrap(native.call(OPS.viewDtype, cut._h, dtypeCode(dtype)));
    bytes.dispose();
    cut.dispose();
    bases.set(dtype, base);
    return base;
  }

  /** `_rebuild_tensor_v2`'s work: a checked, detached view of `storage`. */
  rebuild(storage: unknown, offset: unknown, size: unknown, stride: unknown, requiresGrad: unknown, dtypeArg: unknown): Tensor {
    if (!(storage instanceof StorageRef)) throw new FormatError(`a tensor's storage must come from a persistent id, got ${describeValue(storage)}`);
    if (!isSafeCount(offset)) throw new FormatError(`bad storage offset ${describeValue(offset)}`);
    const sizes = intList(size, 'tensor size');
    const strides = intList(stride, 'tensor stride');
    if (sizes.length !== strides.length) throw new FormatError(`tensor size ${describeValue(size)} and stride ${describeValue(stride)} differ in length`);
    let dtype = storage.dtype;
    if (dtypeArg !== undefined) {
      if (typeof dtypeArg !== 'string' || !FILE_DTYPES.has(dtypeArg)) {
        throw new FormatError(`unsupported tensor dtype ${describeValue(dtypeArg)}`);
      }
      dtype = dtypeArg as DType;
    }
    // Offsets and strides are in elements of the tensor's dtype, from the typed storage's start.
    const es = elementSize(dtype);
    const startByte = storage.offset * elementSize(storage.dtype);
    if (startByte % es) throw new FormatError(`storage view is not aligned for ${dtype}`);
    const capacity = Math.floor((storage.numel * elementSize(storage.dtype)) / es);
    if (!sizes.includes(0)) {
      // The last element's index, exact: in doubles while that is exact, else in BigInt.
      let extent: number | bigint = sizes.reduce((e, s, i) => e + (s - 1) * strides[i], offset) + 1;
      if (!Number.isSafeInteger(extent)) extent = sizes.reduce((e, s, i) => e + BigInt(s - 1) * BigInt(strides[i]), BigInt(offset)) + 1n;
      if (extent > capacity) {
        throw new FormatError(
          `tensor of size (${sizes.join(', ')}) and stride (${strides.join(', ')}) at offset ${offset} needs ${extent} elements, ` +
            `but its storage '${storage.root.key}' has ${capacity}`,
        );
      }
    } else if (offset > capacity) {
      throw new FormatError(`empty tensor at offset ${offset} lies outside its storage '${storage.root.key}' of ${capacity} elements`);
    }
    const root = storage.root;
    const at = startByte / es + offset;
    const t = this.track(this.view(this.baseFor(root, dtype), sizes, strides, at));
    const record = { tensor: t, dtype, offset: at, size: sizes, stride: strides };
    root.views.push(record);
    this.viewOf.set(t, record);
    if (requiresGrad === true) t.requiresGrad_(true);
    else if (requiresGrad !== false && requiresGrad !== null && requiresGrad !== undefined) {
      throw new FormatError(`requires_grad must be a bool, got ${describeValue(requiresGrad)}`);
    }
    return t;
  }

  /** A detached as_strided view: shares the storage, but is not an autograd view of the base. */
  private view(base: Tensor, size: number[], stride: number[], offset: number): Tensor {
    const v = native.call(OPS.asStrided, base._h, size, stride, offset);
    try {
      return wrap(native.call(OPS.detach, v));
    } finally {
      native.dispose(v);
    }
  }

  /** After BUILD moved a view's data into `to`, device moves must follow `to`. */
  retarget(from: Tensor, to: Tensor): void {
    const record = this.viewOf.get(from);
    if (!record) return;
    loadCounters.viewVisits++;
    record.tensor = to;
    this.viewOf.delete(from);
    this.viewOf.set(to, record);
  }

  parameter(data: unknown, requiresGrad: unknown): Tensor {
    if (!(data instanceof Tensor)) throw new FormatError(`Parameter data must be a tensor, got ${describeValue(data)}`);
    if (requiresGrad === true && !data.requiresGrad) data.requiresGrad_(true);
    return data;
  }

  /** A bare storage in the result: a 1-D tensor over it (PyTorch would give a TypedStorage). */
  storageTensor(ref: StorageRef): Tensor {
    return this.rebuild(ref, 0, [ref.numel], [1], false, undefined);
  }

  // ---- after the pickle -------------------------------------------------------

  /** Replaces bare storages, freezes tuples, disposes tensors the result does not reach. */
  finish(result: unknown, tuples: unknown[][]): unknown {
    const reached = new Set<Tensor>();
    const seen = new Set<object>();
    const fix = (v: unknown): unknown => (v instanceof StorageRef ? this.storageTensor(v) : v);
    result = fix(result);
    const todo: unknown[] = [result];
    while (todo.length) {
      const v = todo.pop();
      if (v === null || typeof v !== 'object' || seen.has(v)) continue;
      seen.add(v);
      if (v instanceof Tensor) reached.add(v);
      else if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          if (v[i] instanceof StorageRef) v[i] = fix(v[i]);
          todo.push(v[i]);
        }
      } else if (v instanceof Map) {
        const entries = [...v.entries()];
        if (entries.some(([k, x]) => k instanceof StorageRef || x instanceof StorageRef)) {
          v.clear();
          for (const [k, x] of entries) v.set(fix(k), fix(x));
        }
        for (const [k, x] of v) todo.push(k, x);
        if (v instanceof OrderedDict) todo.push(v.attributes);
      } else if (v instanceof Set) {
        const items = [...v];
        if (items.some((x) => x instanceof StorageRef)) {
          v.clear();
          for (const x of items) v.add(fix(x));
        }
        for (const x of v) todo.push(x);
      }
    }
    for (const t of tuples) Object.freeze(t);
    for (const t of this.created) if (!reached.has(t) && !t.isDisposed) t.dispose();
    return result;
  }

  /** Moves storages to their devices, keeping views of one storage views of one device storage. */
  place(deviceFor: (location: string) => string): void {
    for (const root of this.roots.values()) {
      const device = deviceFor(root.location);
      if (device === 'cpu') continue;
      const live = root.views.filter((v) => !v.tensor.isDisposed);
      if (!live.length) continue;
      const cpu = root.bases.get(root.dtype)!;
      const moved = new Map<DType, Tensor>([[root.dtype, cpu.to(device)]]);
      for (const v of live) {
        const t = this.view(this.baseFor(root, v.dtype, moved), v.size, v.stride, v.offset);
        v.tensor.setData(t);
        t.dispose();
      }
      for (const b of moved.values()) b.dispose();
    }
  }

  /** Releases the bases (views keep their storages alive). */
  releaseBases(): void {
    for (const root of this.roots.values()) for (const b of root.bases.values()) if (!b.isDisposed) b.dispose();
  }

  /** Dispose everything (on failure). */
  abort(): void {
    for (const t of this.created) if (!t.isDisposed) t.dispose();
    this.releaseBases();
  }
}
