// torch.load for the three container formats PyTorch has written, safely.
//
//   zip     (>= 1.6)        <archive>/data.pkl + <archive>/data/<key> records (+ byteorder)
//   legacy  (0.1.10 - 1.5)  magic, protocol version, sys_info, the pickle, the
//                           storage-key list, then per key an int64 count and the data
//   tar     (<= 0.1.9)      members 'storages', 'tensors' and 'pickle'
//
// Each storage is read straight from the file into a buffer of its own, and a
// 1-D tensor is laid over that buffer without copying; every tensor that uses the
// storage is an `as_strided` view of that base, detached, so views that shared
// storage in Python share it here too. Storages are allocated when the pickle
// first names them, after their size has been checked against the bytes the
// file holds (legacy, tar, stored zip records) or, for deflated zip records,
// against the record's header and the `maxBytes` budget, so neither a lying
// header nor a zip bomb can make us allocate more than the file or the budget.
import { endianness } from 'node:os';
import { native, op } from '../native.js';
import { empty } from '../tensor/creation.js';
import { type DType, dtypeCode, elementSize } from '../tensor/dtype.js';
import { Tensor, isDeviceString, wrap } from '../tensor/tensor.js';
import { checkOptions } from '../utils/args.js';
import { kind, unpickle, type UnpicklerHooks } from './pickle.js';
import { Cursor, FormatError, type PathOrBuffer, RangeSource, type Source, bufferSource, openSource, withContext } from './source.js';
import { looksLikeTar, readTar } from './tar.js';
import { OrderedDict } from './types.js';
import { ZipReader, ownBuffer } from './zip.js';

/**
 * Where to put loaded tensors: a device for all of them (`'cpu'`, `'cuda'`,
 * `'cuda:1'`), a table from the location saved in the file (`'cuda:0'`) to a
 * device, or a function of that location. As in PyTorch, a location the table
 * or function leaves unmapped (undefined/null) keeps the saved location.
 */
export type MapLocation = string | Readonly<Record<string, string>> | ((location: string) => string | null | undefined);

export interface LoadOptions {
  /** Where tensors go; `'cpu'` by default, whatever the file says. */
  mapLocation?: MapLocation;
  /**
   * Check the CRC-32 of each zip record (default true), so corrupt tensor data is
   * an error rather than wrong numbers. It costs about 0.1 s per 500 MB;
   * `torch.load` does not check storages, and `false` matches it. The pickle
   * record is always checked. (Legacy and tar files carry no checksums.)
   */
  verifyChecksums?: boolean;
  /**
   * The most bytes of tensor storage (plus the zip pickle record) one load may
   * allocate; the load fails before allocating more. By default
   * `max(64 MiB, 16 × the file's size)`: storages of legacy, tar and stored zip
   * files must lie in the file, so only deflated zip records (which PyTorch never
   * writes, but Python's zipfile can) come near it, and a deflated checkpoint of
   * real weights shrinks far less than 16:1. A zip bomb (a 1 MB file inflating
   * to gigabytes) is refused. Pass `Infinity` for a trusted, highly compressed file.
   */
  maxBytes?: number;
}

const LOAD_OPTIONS = ['mapLocation', 'verifyChecksums', 'maxBytes'] as const;

/** Default `maxBytes`: a floor, so a small file of zeros loads, and a ratio no real checkpoint's compression reaches. */
function defaultMaxBytes(fileSize: number): number {
  return Math.max(64 * 2 ** 20, 16 * fileSize);
}

// ---- names the unpickler may resolve ---------------------------------------------

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
const TENSOR_DTYPES: Record<string, DType> = {
  FloatTensor: 'float32', DoubleTensor: 'float64', HalfTensor: 'float16', BFloat16Tensor: 'bfloat16',
  LongTensor: 'int64', IntTensor: 'int32', ShortTensor: 'int16', CharTensor: 'int8', ByteTensor: 'uint8', BoolTensor: 'bool',
};
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float64: 'float64', double: 'float64', float16: 'float16', half: 'float16',
  bfloat16: 'bfloat16', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16',
  int8: 'int8', uint8: 'uint8', bool: 'bool',
};
/** Names PyTorch can write that vgg-torch knows but cannot represent. */
const UNSUPPORTED: Record<string, string> = {
  'torch._utils._rebuild_sparse_tensor': 'sparse tensors are not supported',
  'torch._utils._rebuild_sparse_csr_tensor': 'sparse tensors are not supported',
  'torch._utils._rebuild_qtensor': 'quantized tensors are not supported',
  'torch._utils._rebuild_meta_tensor_no_storage': 'meta tensors are not supported',
  'torch._utils._rebuild_wrapper_subclass': 'tensor subclasses are not supported',
  'torch._utils._rebuild_device_tensor_from_numpy': 'tensors pickled through numpy are not supported',
  'torch._utils._rebuild_nested_tensor': 'nested tensors are not supported',
};

/** An allow-listed Python name. It is only ever matched by identity, never called. */
class PyName {
  constructor(readonly path: string, readonly role: string, readonly dtype?: DType) {}
}

/** A typed view of a storage, as PyTorch's TypedStorage: `numel` elements of `dtype` from element `offset`. */
class StorageRef {
  constructor(readonly root: StorageRoot, readonly dtype: DType, readonly offset: number, readonly numel: number) {}
}

interface ViewRecord {
  tensor: Tensor;
  dtype: DType;
  offset: number; // in elements of dtype from the start of the root storage
  size: number[];
  stride: number[];
}

/** One storage of the file: its bytes (our own buffer) and the 1-D tensor over them. */
class StorageRoot {
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

// ---- the loader -------------------------------------------------------------------

type Format = 'zip' | 'legacy' | 'tar';

const MAX_DIMS = 64;

function isSafeCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function asString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  return undefined;
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_DIMS || !v.every(isSafeCount)) {
    throw new FormatError(`${what} must be a tuple of at most ${MAX_DIMS} non-negative integers, got ${describeValue(v)}`);
  }
  return v as number[];
}

function describeValue(v: unknown, depth = 0): string {
  if (Array.isArray(v)) {
    if (depth > 2) return '(...)';
    return `(${v.slice(0, 8).map((x) => describeValue(x, depth + 1)).join(', ')}${v.length > 8 ? ', ...' : ''})`;
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

function swapBytes(buf: Buffer, size: number): void {
  if (size === 2) buf.swap16();
  else if (size === 4) buf.swap32();
  else if (size === 8) buf.swap64();
}

const OPS = {
  asStrided: op('aten::as_strided'),
  detach: op('aten::detach'),
  viewDtype: op('aten::view', 'dtype'),
  narrow: op('aten::narrow'),
};

class Loader implements UnpicklerHooks {
  readonly roots = new Map<string, StorageRoot>();
  private readonly refs = new Map<string, StorageRef>();
  /** Every tensor made so far, to dispose on failure and to find orphans. */
  readonly created: Tensor[] = [];
  /** The view record of each tensor rebuild() made, so BUILD can retarget it without a scan. */
  private readonly viewOf = new Map<Tensor, ViewRecord>();
  /** Tensors made by torch.FloatTensor() & co. that BUILD may still set, with their dtype. */
  private readonly emptyTyped = new Map<Tensor, DType>();
  /** Bytes allocated for storages (and the zip pickle), at most `maxBytes`. */
  private allocated = 0;
  /** Whether storages must be byte-swapped after reading (a big-endian zip). */
  swap = false;
  /** zip: checks that a storage's record can hold it, before anything is allocated; names the record. */
  checkRecord: ((key: string, nbytes: number) => string) | null = null;
  /** zip: reads a storage's record into a buffer of its own as soon as it is named. */
  readRecord: ((key: string, nbytes: number, dtype: DType) => Buffer) | null = null;
  /** tar: persistent ids name tensors and storages made before the pickle. */
  tarObjects: Map<string, unknown> | null = null;

  /**
   * @param budget bytes the file has left for storages (legacy and tar: they must lie in the file)
   * @param maxBytes the load's allocation limit, and how it was chosen (for messages)
   */
  constructor(
    readonly format: Format,
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

  // ---- hooks ---------------------------------------------------------------

  findGlobal(module: string, name: string): unknown {
    const path = `${module}.${name}`;
    const mod = module === 'torch.tensor' ? 'torch._tensor' : module; // PyTorch's own load_module_mapping
    if (mod === 'torch' || mod === 'torch.cuda') {
      if (STORAGE_DTYPES[name]) return new PyName(path, 'storage', STORAGE_DTYPES[name]);
      if (TENSOR_DTYPES[name]) return new PyName(path, 'tensorType', TENSOR_DTYPES[name]);
    }
    if (mod === 'torch') {
      if (name === 'UntypedStorage') return new PyName(path, 'storage', 'uint8');
      if (TORCH_DTYPES[name]) return TORCH_DTYPES[name];
      if (name === 'Size') return new PyName(path, 'Size');
      if (name === 'Tensor') return new PyName(path, 'Tensor');
      if (name === 'device') return new PyName(path, 'device');
    }
    if (mod === 'torch.storage' && name === 'UntypedStorage') return new PyName(path, 'storage', 'uint8');
    if (mod === 'torch._utils' && /^_rebuild_(tensor|tensor_v2|tensor_v3|parameter|parameter_with_state)$/.test(name)) {
      return new PyName(path, name);
    }
    if (mod === 'torch._tensor' && (name === '_rebuild_from_type_v2' || name === '_rebuild_from_type')) return new PyName(path, name);
    if (mod === 'torch.nn.parameter' && name === 'Parameter') return new PyName(path, 'Parameter');
    if (mod === 'collections' && name === 'OrderedDict') return new PyName(path, 'OrderedDict');
    if ((mod === 'builtins' || mod === '__builtin__') && ['set', 'frozenset', 'bytes', 'bytearray'].includes(name)) return new PyName(path, name);
    if (mod === '_codecs' && name === 'encode') return new PyName(path, 'encode');
    if (/Storage$/.test(name) && (mod === 'torch' || mod === 'torch.cuda')) {
      throw new FormatError(`storage type '${path}' holds a dtype vgg-torch does not support`);
    }
    const why = UNSUPPORTED[path];
    if (why) throw new FormatError(`the file uses '${path}': ${why}`);
    throw new FormatError(
      `refusing to load the global '${path}': only tensors, storages and plain Python containers may appear ` +
        'in a file loaded here (as with torch.load(weights_only=True)); nothing named in a file is ever run',
    );
  }

  persistentLoad(pid: unknown): unknown {
    if (this.tarObjects) {
      const key = typeof pid === 'number' || typeof pid === 'bigint' ? String(pid) : asString(pid);
      if (key === undefined) this.refusePid(pid);
      const found = this.tarObjects.get(String(Number(key)));
      if (found === undefined) throw new FormatError(`persistent id '${key}' names no tensor or storage of the archive`);
      return found;
    }
    if (!Array.isArray(pid) || pid.length < 5) return this.refusePid(pid);
    const [typename, storageType, rawKey, rawLocation, numel] = pid;
    if (asString(typename) !== 'storage') return this.refusePid(pid);
    if (!(storageType instanceof PyName) || storageType.role !== 'storage') {
      throw new FormatError(`persistent id names a storage of type ${describeValue(storageType)}, which is not a storage class`);
    }
    const key = typeof rawKey === 'number' ? String(rawKey) : asString(rawKey);
    const location = asString(rawLocation);
    if (key === undefined || location === undefined) throw new FormatError(`malformed storage persistent id ${describeValue(pid)}`);
    if (!isSafeCount(numel)) throw new FormatError(`storage '${key}' declares an absurd size of ${describeValue(numel)} elements`);
    const dtype = storageType.dtype!;
    let ref = this.refs.get(key);
    if (!ref) {
      const root = this.makeRoot(key, dtype, numel, location);
      ref = new StorageRef(root, dtype, 0, numel);
      this.refs.set(key, ref);
    }
    const view = this.format === 'legacy' ? pid[5] : null;
    if (view !== null && view !== undefined) {
      // Pre-0.4 storage views: (view_key, offset, size) of the root storage, in elements.
      if (!Array.isArray(view) || view.length !== 3) throw new FormatError(`malformed storage view ${describeValue(view)}`);
      const [vk, offset, size] = view;
      const viewKey = asString(vk) ?? String(vk);
      if (!isSafeCount(offset) || !isSafeCount(size) || offset + size > ref.numel) {
        throw new FormatError(`storage view '${viewKey}' (${describeValue(offset)}, ${describeValue(size)}) lies outside storage '${key}' of ${ref.numel} elements`);
      }
      let v = this.refs.get(`view:${viewKey}`);
      if (!v) {
        v = new StorageRef(ref.root, ref.dtype, ref.offset + offset, size);
        this.refs.set(`view:${viewKey}`, v);
      }
      return v;
    }
    return ref;
  }

  private refusePid(pid: unknown): never {
    if (Array.isArray(pid) && asString(pid[0]) === 'module') {
      throw new FormatError(
        'the file pickles a whole nn.Module (its class and source code), which cannot be loaded safely; ' +
          'save and load its state_dict() instead',
      );
    }
    throw new FormatError(`only storages may be loaded by persistent id, got ${describeValue(pid)}`);
  }

  call(func: unknown, args: unknown[], opcode: string): unknown {
    if (!(func instanceof PyName)) throw new FormatError(`${opcode} of ${describeValue(func)}, which is not an allowed callable`);
    const a = args;
    const need = (lo: number, hi = lo): void => {
      if (a.length < lo || a.length > hi) throw new FormatError(`${func.path}() takes ${lo === hi ? lo : `${lo} to ${hi}`} arguments, got ${a.length}`);
    };
    switch (func.role) {
      case '_rebuild_tensor':
        need(4);
        return this.rebuild(a[0], a[1], a[2], a[3], false, undefined);
      case '_rebuild_tensor_v2':
        need(6, 7);
        return this.rebuild(a[0], a[1], a[2], a[3], a[4], undefined);
      case '_rebuild_tensor_v3':
        need(7, 8);
        return this.rebuild(a[0], a[1], a[2], a[3], a[4], a[6]);
      case '_rebuild_parameter':
      case '_rebuild_parameter_with_state':
        need(func.role === '_rebuild_parameter' ? 3 : 4);
        return this.parameter(a[0], a[1]);
      case 'Parameter':
        need(1, 2);
        return this.parameter(a[0], a.length > 1 ? a[1] : true);
      case '_rebuild_from_type_v2':
      case '_rebuild_from_type': {
        need(4);
        const [fn, type, fnArgs] = a;
        if (!(type instanceof PyName) || (type.role !== 'Tensor' && type.role !== 'Parameter')) {
          throw new FormatError(`${func.path}: tensor subclass ${describeValue(type)} is not supported`);
        }
        if (!Array.isArray(fnArgs)) throw new FormatError(`${func.path}: arguments must be a tuple`);
        // PyTorch's function is always a tensor or parameter rebuilder; refusing a nested
        // _rebuild_from_type bounds the recursion (a self-referential tuple would not end).
        if (fn instanceof PyName && (fn.role === '_rebuild_from_type_v2' || fn.role === '_rebuild_from_type')) {
          throw new FormatError(`${func.path}: its function is ${fn.path} again, which PyTorch never writes (a self-referential or nested rebuild)`);
        }
        return this.call(fn, fnArgs, opcode);
      }
      case 'tensorType': {
        // Legacy: torch.FloatTensor() now, BUILD with (storage, offset, size, stride) next.
        if (a.length) throw new FormatError(`${func.path}() may only be called without arguments in a checkpoint`);
        const t = this.track(empty([0], { dtype: func.dtype! }));
        this.emptyTyped.set(t, func.dtype!);
        return t;
      }
      case 'OrderedDict': {
        need(0, 1);
        const od = new OrderedDict();
        if (a.length) {
          if (!Array.isArray(a[0])) throw new FormatError('OrderedDict() takes a list of pairs');
          for (const pair of a[0]) {
            if (!Array.isArray(pair) || pair.length !== 2) throw new FormatError('OrderedDict() takes a list of pairs');
            od.set(pair[0], pair[1]);
          }
        }
        return od;
      }
      case 'Size':
        need(0, 1);
        if (a.length === 0) return [];
        return intList(a[0], 'torch.Size');
      case 'device': {
        need(1, 2);
        const type = asString(a[0]);
        if (type === undefined || (a.length === 2 && a[1] !== null && !isSafeCount(a[1]))) throw new FormatError('malformed torch.device');
        return a.length === 2 && a[1] !== null ? `${type}:${a[1]}` : type;
      }
      case 'set':
      case 'frozenset':
        need(0, 1);
        if (a.length && !Array.isArray(a[0]) && !(a[0] instanceof Set)) throw new FormatError(`${func.path}() takes a list`);
        return new Set(a.length ? (a[0] as Iterable<unknown>) : []);
      case 'bytes':
      case 'bytearray':
      case 'encode': {
        if (a.length === 0) return Buffer.alloc(0);
        if (Buffer.isBuffer(a[0])) return Buffer.from(a[0]);
        if (Array.isArray(a[0]) && a[0].every((x) => isSafeCount(x) && x < 256)) return Buffer.from(a[0] as number[]);
        const s = a[0];
        const enc = asString(a[1])?.toLowerCase().replace('-', '');
        if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'utf8' && enc !== 'ascii')) {
          throw new FormatError(`${func.path}() with arguments ${describeValue(a)} is not supported`);
        }
        return Buffer.from(s, enc === 'utf8' ? 'utf8' : 'latin1');
      }
      default:
        throw new FormatError(`${opcode} of '${func.path}' is not allowed`);
    }
  }

  build(inst: unknown, state: unknown): void {
    if (inst instanceof OrderedDict) {
      if (state === null) return;
      if (!(state instanceof Map)) throw new FormatError(`BUILD of an OrderedDict takes a dict, got ${describeValue(state)}`);
      for (const [k, v] of state) {
        if (typeof k !== 'string') throw new FormatError('OrderedDict attribute names must be strings');
        inst.attributes.set(k, v);
      }
      return;
    }
    if (inst instanceof Tensor) {
      if (!Array.isArray(state)) {
        if (state instanceof Map || state === null) return; // a Parameter's __dict__: nothing we keep
        throw new FormatError(`BUILD of a tensor takes a tuple, got ${describeValue(state)}`);
      }
      const dtype = state.length === 4 ? this.emptyTyped.get(inst) : undefined;
      if (dtype !== undefined) {
        // torch.FloatTensor + BUILD (storage, offset, size, stride): Tensor.__setstate__'s set_().
        this.emptyTyped.delete(inst);
        if (state[0] instanceof StorageRef && state[0].dtype !== dtype) {
          throw new FormatError(`a ${dtype} tensor cannot be set to a ${state[0].dtype} storage`);
        }
        const t = this.rebuild(state[0], state[1], state[2], state[3], false, undefined);
        inst.setData(t);
        this.retarget(t, inst);
        t.dispose();
        return;
      }
      if (state.length === 5 && state[0] instanceof Tensor) {
        // A pre-0.4 Variable: (data, ?, requires_grad, ?, ?) → data, then requires_grad = state[3].
        inst.setData(state[0]);
        if (state[3] === true) inst.requiresGrad_(true);
        return;
      }
      if (state.length === 3) {
        if (state[0] === true) inst.requiresGrad_(true);
        return;
      }
      throw new FormatError(`BUILD of a tensor with a state of ${state.length} items is not supported`);
    }
    throw new FormatError(`BUILD is only allowed on tensors and OrderedDicts, not on ${kind(inst)}`);
  }

  // ---- storages and tensors ---------------------------------------------------

  makeRoot(key: string, dtype: DType, numel: number, location: string): StorageRoot {
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
    const record = this.checkRecord?.(key, nbytes);
    this.charge(`storage '${key}'${record ? ` (${record})` : ''}`, nbytes);
    const buf = this.readRecord ? this.readRecord(key, nbytes, dtype) : ownBuffer(nbytes);
    const root = new StorageRoot(key, dtype, numel, location, buf);
    root.filled = this.readRecord !== null;
    // Bases are ours alone (never in the result): load() disposes them when done.
    root.bases.set(dtype, wrap(native.fromBuffer(root.buf.buffer, root.buf.byteOffset, [numel], dtypeCode(dtype), false)));
    this.roots.set(key, root);
    return root;
  }

  private track(t: Tensor): Tensor {
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

  private rebuild(storage: unknown, offset: unknown, size: unknown, stride: unknown, requiresGrad: unknown, dtypeArg: unknown): Tensor {
    if (!(storage instanceof StorageRef)) throw new FormatError(`a tensor's storage must come from a persistent id, got ${describeValue(storage)}`);
    if (!isSafeCount(offset)) throw new FormatError(`bad storage offset ${describeValue(offset)}`);
    const sizes = intList(size, 'tensor size');
    const strides = intList(stride, 'tensor stride');
    if (sizes.length !== strides.length) throw new FormatError(`tensor size ${describeValue(size)} and stride ${describeValue(stride)} differ in length`);
    let dtype = storage.dtype;
    if (dtypeArg !== undefined) {
      if (typeof dtypeArg !== 'string' || !Object.values(TORCH_DTYPES).includes(dtypeArg as DType)) {
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
  private retarget(from: Tensor, to: Tensor): void {
    const record = this.viewOf.get(from);
    if (!record) return;
    loadCounters.viewVisits++;
    record.tensor = to;
    this.viewOf.delete(from);
    this.viewOf.set(to, record);
  }

  private parameter(data: unknown, requiresGrad: unknown): Tensor {
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
    const todo: unknown[] = [result = fix(result)];
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
  place(mapLocation: MapLocation | undefined): void {
    for (const root of this.roots.values()) {
      const device = resolveLocation(root.location, mapLocation);
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

function resolveLocation(location: string, ml: MapLocation | undefined): string {
  let device: string | null | undefined;
  if (ml === undefined) device = 'cpu';
  else if (typeof ml === 'string') device = ml;
  else if (typeof ml === 'function') device = ml(location);
  else device = Object.prototype.hasOwnProperty.call(ml, location) ? ml[location] : undefined;
  device ??= location;
  if (!isDeviceString(device)) throw new FormatError(`cannot place a storage saved at '${location}' on '${device}': not a device`);
  return device;
}

// ---- formats ------------------------------------------------------------------------

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function sniff(src: Source): Format {
  const head = src.read(0, Math.min(src.size, 512));
  if (head.length === 0) throw new FormatError('the file is empty');
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (looksLikeTar(head)) return 'tar';
  if (head[0] === 0x80) return 'legacy';
  if (head.length >= 9 && head[8] === 0x7b) {
    throw new FormatError('this looks like a safetensors file; use loadSafetensors()');
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0x06054b50) throw new FormatError('the zip archive is empty');
  throw new FormatError(`not a PyTorch file: unrecognized first bytes ${head.subarray(0, 8).toString('hex')}`);
}

function loadZip(src: Source, loader: Loader, verify: boolean): { value: unknown; tuples: unknown[][] } {
  const zip = new ZipReader(src);
  if (!zip.entries.length) throw new FormatError('the zip archive has no records');
  // The top folder's name is whatever the writer chose (PyTorch uses the file's base name).
  const first = zip.entries[0].name;
  let prefix = first.includes('/') ? first.slice(0, first.indexOf('/')) : '';
  if (!zip.get(`${prefix}/data.pkl`)) {
    const found = zip.entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
    if (!found) {
      if (zip.entries.some((e) => e.name.endsWith('constants.pkl'))) {
        throw new FormatError('this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint');
      }
      throw new FormatError('the zip archive has no data.pkl record: not a torch.save checkpoint');
    }
    prefix = found.name.slice(0, found.name.indexOf('/'));
  }
  const order = zip.get(`${prefix}/byteorder`);
  if (order) {
    if (order.size > 16) throw new FormatError(`the byteorder record holds ${order.size} bytes, not 'little' or 'big'`);
    const v = zip.read(order).toString('latin1').trim();
    if (v !== 'little' && v !== 'big') throw new FormatError(`unknown byteorder '${v.slice(0, 20)}'`);
    loader.swap = v !== (endianness() === 'LE' ? 'little' : 'big');
  }
  const record = (key: string, nbytes: number) => {
    const entry = zip.get(`${prefix}/data/${key}`);
    if (!entry) throw new FormatError(`storage '${key}' has no record ${prefix}/data/${key}`);
    // A deflated record must inflate to exactly what the pickle declares (PyTorch
    // writes exactly that), so its header cannot ask for more; a stored one only
    // has to hold it, since its bytes lie in the file.
    if (entry.method !== 0 ? entry.size !== nbytes : entry.size < nbytes) {
      throw new FormatError(`storage '${key}' declares ${nbytes} bytes but its record ${entry.name} holds ${entry.size}`);
    }
    return entry;
  };
  // Records may not overlap: a stored record's bytes back one storage, so all of
  // them together fit in the file. (Overlapping records would let a small file
  // claim the same megabytes for thousands of storages.)
  let claimed = 0;
  loader.checkRecord = (key, nbytes) => {
    const entry = record(key, nbytes);
    claimed += entry.compressedSize;
    if (claimed > src.size) throw new FormatError(`storage records overlap: storage '${key}' brings them to ${claimed} bytes in a file of ${src.size}`);
    return entry.method === 0 ? `record '${entry.name}'` : `record '${entry.name}', ${entry.compressedSize} bytes deflated to ${entry.size}`;
  };
  loader.readRecord = (key, nbytes, dtype) => {
    const buf = zip.readStorage(record(key, nbytes), nbytes, verify);
    if (loader.swap) swapBytes(buf, elementSize(dtype));
    return buf;
  };
  const pklEntry = zip.get(`${prefix}/data.pkl`)!;
  // The pickle is inflated whole: it counts against maxBytes like a storage.
  loader.charge(`the pickle record '${pklEntry.name}' (${pklEntry.compressedSize} bytes${pklEntry.method ? ' deflated' : ''})`, pklEntry.size);
  const pkl = zip.read(pklEntry);
  return unpickle(new Cursor(bufferSource(pkl), 0), loader);
}

function loadLegacy(src: Source, loader: Loader, cur: Cursor): { value: unknown; tuples: unknown[][] } {
  const header = (what: string): unknown => {
    try {
      return unpickle(cur, loader).value;
    } catch (e) {
      throw new FormatError(`cannot read the ${what}: ${(e as Error).message}`);
    }
  };
  const magic = header('magic number');
  if (magic !== LEGACY_MAGIC && magic !== Number(LEGACY_MAGIC)) throw new FormatError('wrong magic number: not a PyTorch file (or a corrupt one)');
  const protocol = header('protocol version');
  if (protocol !== LEGACY_PROTOCOL) throw new FormatError(`unsupported legacy protocol version ${describeValue(protocol)}`);
  header('sys_info');
  const main = unpickle(cur, loader);
  const keys = unpickle(cur, loader).value;
  if (!Array.isArray(keys)) throw new FormatError('the storage key list is not a list');
  // Each storage: an int64 element count, then the data, little-endian, in the list's order.
  let pos = cur.pos;
  for (const k of keys) {
    const key = typeof k === 'number' ? String(k) : asString(k);
    const root = key === undefined ? undefined : loader.roots.get(key);
    if (!root) throw new FormatError(`the storage list names '${describeValue(k)}', which the pickle never used`);
    if (root.filled) throw new FormatError(`storage '${key}' is listed twice`);
    const count = new Cursor(src, pos, pos + 8).i64();
    if (count !== root.numel) throw new FormatError(`storage '${key}' holds ${count} elements in the file, but its persistent id says ${root.numel}`);
    src.readInto(pos + 8, root.nbytes, root.buf);
    root.filled = true;
    pos += 8 + root.nbytes;
  }
  for (const root of loader.roots.values()) {
    if (!root.filled) throw new FormatError(`the data of storage '${root.key}' is missing from the file`);
  }
  return main;
}

function loadTar(src: Source, loader: Loader): { value: unknown; tuples: unknown[][] } {
  const members = readTar(src);
  const member = (name: string): RangeSource => {
    const m = members.get(name);
    if (!m) throw new FormatError(`the tar archive has no '${name}' member`);
    return new RangeSource(src, m.offset, m.size);
  };
  const objects = new Map<string, unknown>();
  const keyOf = (v: unknown): string => {
    const k = typeof v === 'number' ? v : Number(asString(v));
    if (!Number.isSafeInteger(k)) throw new FormatError(`bad object key ${describeValue(v)}`);
    return String(k);
  };

  const storages = member('storages');
  let cur = new Cursor(storages, 0);
  const count = unpickle(cur, loader).value;
  if (!isSafeCount(count)) throw new FormatError('bad storage count');
  for (let i = 0; i < count; i++) {
    const rec = unpickle(cur, loader).value;
    if (!Array.isArray(rec) || rec.length !== 3) throw new FormatError('bad storage record');
    const [key, location, type] = rec;
    if (!(type instanceof PyName) || type.role !== 'storage') throw new FormatError(`bad storage type ${describeValue(type)}`);
    const numel = new Cursor(storages, cur.pos, cur.pos + 8).i64();
    const k = keyOf(key);
    const root = loader.makeRoot(k, type.dtype!, numel, asString(location) ?? 'cpu');
    storages.readInto(cur.pos + 8, root.nbytes, root.buf);
    root.filled = true;
    cur = new Cursor(storages, cur.pos + 8 + root.nbytes);
    objects.set(k, new StorageRef(root, root.dtype, 0, numel));
  }
  const views = unpickle(cur, loader).value;
  if (!Array.isArray(views)) throw new FormatError('bad storage view list');
  for (const v of views) {
    if (!Array.isArray(v) || v.length !== 4) throw new FormatError('bad storage view record');
    const [target, rootKey, offset, numel] = v;
    const root = objects.get(keyOf(rootKey));
    if (!(root instanceof StorageRef) || !isSafeCount(offset) || !isSafeCount(numel) || offset + numel > root.numel) {
      throw new FormatError(`bad storage view ${describeValue(v)}`);
    }
    objects.set(keyOf(target), new StorageRef(root.root, root.dtype, root.offset + offset, numel));
  }

  const tensors = member('tensors');
  cur = new Cursor(tensors, 0);
  const ntensors = unpickle(cur, loader).value;
  if (!isSafeCount(ntensors)) throw new FormatError('bad tensor count');
  loader.tarObjects = objects; // from here on persistent ids resolve to these
  for (let i = 0; i < ntensors; i++) {
    const rec = unpickle(cur, loader).value;
    if (!Array.isArray(rec) || rec.length !== 3) throw new FormatError('bad tensor record');
    const [key, storageId] = rec;
    const storage = objects.get(keyOf(storageId));
    if (!(storage instanceof StorageRef)) throw new FormatError(`tensor '${describeValue(key)}' names an unknown storage`);
    const ndim = cur.i32();
    cur.take(4); // ndim was once written as 8 bytes
    if (ndim < 0 || ndim > MAX_DIMS) throw new FormatError(`bad tensor rank ${ndim}`);
    const size = Array.from({ length: ndim }, () => cur.i64());
    const stride = Array.from({ length: ndim }, () => cur.i64());
    const offset = cur.i64();
    objects.set(keyOf(key), loaderRebuild(loader, storage, offset, size, stride));
  }
  const pickle = member('pickle');
  return unpickle(new Cursor(pickle, 0), loader);
}

// A tar tensor is a _rebuild_tensor call with the metadata read from 'tensors'.
function loaderRebuild(loader: Loader, storage: StorageRef, offset: number, size: number[], stride: number[]): Tensor {
  const tag = new PyName('torch._utils._rebuild_tensor', '_rebuild_tensor');
  return loader.call(tag, [storage, offset, size, stride], 'REDUCE') as Tensor;
}

/**
 * `torch.load`: reads a file written by `torch.save` (any PyTorch version: the
 * zip format, the legacy format of 0.1.10-1.5, the tar format of <= 0.1.9)
 * or by {@link save}.
 *
 * What comes back: dict → `Map`, OrderedDict → {@link OrderedDict} (a Map),
 * list → array, tuple → frozen array, tensor and Parameter → {@link Tensor},
 * int → number (bigint beyond 2^53), float → number, str → string, bytes →
 * Buffer, set → Set, bool, None → null. Tensors that shared a storage share one
 * here. The returned tensors belong to the caller: dispose them, or load inside
 * `tidy`.
 *
 * Loading is safe by construction, like `torch.load(weights_only=True)`: the
 * pickle is interpreted as data, only PyTorch's tensor and storage rebuilders
 * and plain containers are accepted, and any other name in the file (a class,
 * `os.system`, `builtins.eval`, ...) is refused with an error naming it.
 * Truncated or corrupt files throw an Error naming the file and the problem.
 *
 * A path is read storage by storage straight into tensor memory, so a large
 * file is never held twice; a Buffer is copied storage by storage.
 *
 * @example
 * const sd = load('vgg16-397923af.pth') as Map<string, Tensor>;
 * model.loadStateDict(sd);
 * dispose(sd);
 */
export function load<T = unknown>(pathOrBuffer: PathOrBuffer, opts: LoadOptions = {}): T {
  checkOptions('load()', opts, LOAD_OPTIONS);
  const { maxBytes } = opts;
  if (maxBytes !== undefined && !(typeof maxBytes === 'number' && maxBytes >= 0 && (Number.isSafeInteger(maxBytes) || maxBytes === Infinity))) {
    throw new TypeError(`load(): maxBytes must be a non-negative integer or Infinity, got ${describeValue(maxBytes)}`);
  }
  let src: Source;
  try {
    src = openSource(pathOrBuffer, 'load');
  } catch (e) {
    if (e instanceof TypeError) throw e;
    throw new Error(`load(): cannot open ${String(pathOrBuffer)}: ${(e as Error).message}`, { cause: e });
  }
  let loader: Loader | undefined;
  try {
    const format = sniff(src);
    let cur: Cursor | undefined;
    // Storages may not claim more bytes than the file has after the pickle.
    // (zip records are checked one by one instead: a deflated record may be larger than the file.)
    const limit = maxBytes !== undefined
      ? { value: maxBytes, why: 'the maxBytes option' }
      : { value: defaultMaxBytes(src.size), why: `the default: 16 × the file's ${src.size} bytes, at least 64 MiB` };
    loader = new Loader(format, () => (format === 'zip' ? Infinity : cur ? src.size - cur.pos : src.size), limit);
    let res: { value: unknown; tuples: unknown[][] };
    if (format === 'zip') res = loadZip(src, loader, opts.verifyChecksums ?? true);
    else if (format === 'tar') res = loadTar(src, loader);
    else res = loadLegacy(src, loader, (cur = new Cursor(src, 0)));
    const value = loader.finish(res.value, res.tuples);
    loader.place(opts.mapLocation);
    loader.releaseBases();
    return value as T;
  } catch (e) {
    loader?.abort();
    throw withContext(`load(): ${src.name}`, e);
  } finally {
    src.close();
  }
}
