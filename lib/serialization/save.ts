// torch.save: the zip format of PyTorch >= 1.6, readable by torch.load (also
// with weights_only=True) and by load().
//
// The pickle is what torch.save writes for the same Python objects: protocol 2,
// tensors as torch._utils._rebuild_tensor_v2 over persistent storage ids,
// Maps as collections.OrderedDict (so state dicts load as OrderedDicts and
// `model.load_state_dict` takes them as they are).
import { basename } from 'node:path';
import { endianness } from 'node:os';
import { type Handle, native, op } from '../native.js';
import { Parameter } from '../nn/modules/module.js';
import { type DType, elementSize } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';
import { tensorBytes, toPath, writeAtomically } from './bytes.js';
import { checkOptions } from '../utils/args.js';
import { OP, PickleWriter } from './pickle.js';
import { OrderedDict } from './types.js';
import { ZipWriter } from './zip.js';

export interface SaveOptions {
  /**
   * Write ZIP64 records even for a small file (PyTorch and Python read both).
   * @internal for tests: ZIP64 is used by itself when the file needs it.
   */
  forceZip64?: boolean;
}

const STORAGE_NAMES: Record<DType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** One storage record of the archive. */
interface StorageOut {
  key: string;
  dtype: DType;
  location: string;
  numel: number;
  /** Makes the bytes only when the record is written, so one storage at a time is in JS memory. */
  bytes: () => Uint8Array;
}

/** Where one tensor lives in its storage. */
interface TensorOut {
  storage: StorageOut;
  offset: number;
  size: number[];
  stride: number[];
}

const OPS = {
  asStrided: op('aten::as_strided'),
  permute: op('aten::permute'),
  contiguous: op('aten::contiguous'),
};

function locationOf(t: Tensor): string {
  const d = t.device;
  return d === 'cuda' ? 'cuda:0' : d;
}

function contiguousStrides(size: number[]): number[] {
  const out = new Array<number>(size.length);
  let s = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= Math.max(size[i], 1);
  }
  return out;
}

/** Bytes of a tensor made by `make` (a view or copy), disposing it afterwards. */
function bytesVia(make: () => Handle): Uint8Array {
  const t = wrap(make());
  try {
    return tensorBytes(t);
  } finally {
    t.dispose();
  }
}

/** The storage offset (elements) and storage size (bytes) of `t`. @internal */
export function probeStorage(t: Tensor): { offset: number; nbytes: number } {
  const [offset, nbytes] = native.storageInfo(t._h);
  return { offset, nbytes };
}

/** A tensor saved on its own: the smallest storage that holds it, strides kept when it is dense. */
function compact(t: Tensor, key: string): TensorOut {
  const size = t.shape;
  const numel = t.numel();
  const base = { key, dtype: t.dtype, location: locationOf(t), numel };
  if (numel === 0) return { storage: { ...base, bytes: () => new Uint8Array(0) }, offset: 0, size, stride: contiguousStrides(size) };
  const stride = t.stride();
  if (t.isContiguous()) return { storage: { ...base, bytes: () => tensorBytes(t) }, offset: 0, size, stride };
  // Dense but permuted (a transposed weight): store it in memory order and keep its strides.
  const perm = size.map((_, i) => i).sort((a, b) => stride[b] - stride[a] || a - b);
  const permuted = wrap(native.call(OPS.permute, t._h, perm));
  const dense = permuted.isContiguous() && perm.every((d) => size[d] === 1 || stride[d] > 0);
  permuted.dispose();
  if (dense) {
    return { storage: { ...base, bytes: () => bytesVia(() => native.call(OPS.permute, t._h, perm)) }, offset: 0, size, stride };
  }
  return { storage: { ...base, bytes: () => bytesVia(() => native.call(OPS.contiguous, t._h)) }, offset: 0, size, stride: contiguousStrides(size) };
}

/**
 * Assigns storages: tensors that share one (as found by libtorch) share one
 * record, at their own offsets; any other tensor gets a compact storage.
 */
function planStorages(tensors: Tensor[]): { plan: Map<Tensor, TensorOut>; storages: StorageOut[] } {
  const groups: Tensor[][] = [];
  for (const t of tensors) {
    if (t.isDisposed) throw new Error('save(): a tensor in the object has been disposed');
    const g = t.numel() === 0 ? undefined : groups.find((g) => g[0].numel() > 0 && g[0].device === t.device && t.sharesStorageWith(g[0]));
    if (g) g.push(t);
    else groups.push([t]);
  }
  const plan = new Map<Tensor, TensorOut>();
  const storages: StorageOut[] = [];
  const nextKey = (): string => String(storages.length);
  for (const g of groups) {
    const probes = g.length > 1 ? g.map(probeStorage) : [];
    if (g.length === 1) {
      for (const t of g) {
        const out = compact(t, nextKey());
        storages.push(out.storage);
        plan.set(t, out);
      }
      continue;
    }
    const dtype = g[0].dtype;
    if (g.some((t) => t.dtype !== dtype)) {
      throw new Error('save(): cannot save tensors that view the same storage as different dtypes (neither can torch.save)');
    }
    const rep = g[0];
    const es = elementSize(dtype);
    const numel = Math.floor(probes[0].nbytes / es);
    const storage: StorageOut = {
      key: nextKey(),
      dtype,
      location: locationOf(rep),
      numel,
      // The whole storage, as torch.save writes it.
      bytes: () => bytesVia(() => native.call(OPS.asStrided, rep._h, [numel], [1], 0)),
    };
    storages.push(storage);
    g.forEach((t, i) => plan.set(t, { storage, offset: probes[i].offset, size: t.shape, stride: t.stride() }));
  }
  return { plan, storages };
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function cannotSave(v: unknown, path: string): never {
  let what: string = typeof v;
  // An nn.Module is callable, so typeof says 'function'; it is an object of its class.
  const instance = v !== null && (typeof v === 'object' || (typeof v === 'function' && !(v instanceof Function)));
  if (instance) what = (v as object).constructor?.name ?? 'object';
  const hint = instance && typeof (v as { stateDict?: unknown }).stateDict === 'function' ? ' (save module.stateDict() instead of the module)' : '';
  throw new TypeError(`save(): cannot save a value of type ${what} at ${path || 'the top level'}${hint}`);
}

/** Tensors in the object, each once, in the order the pickle meets them. */
function collectTensors(root: unknown): Tensor[] {
  const out: Tensor[] = [];
  const seen = new Set<unknown>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Tensor) out.push(v);
    else if (Array.isArray(v) || v instanceof Set) for (const x of v) visit(x);
    else if (v instanceof Map) {
      for (const [k, x] of v) {
        visit(k);
        visit(x);
      }
      if (v instanceof OrderedDict) visit(v.attributes);
    } else if (isPlainObject(v)) for (const x of Object.values(v)) visit(x);
  };
  visit(root);
  return out;
}

const BATCH = 1000; // Python's pickler batches APPENDS/SETITEMS the same way

class Pickler {
  readonly w = new PickleWriter();
  private readonly memo = new Map<unknown, number>();
  private readonly inProgress = new Set<unknown>();

  constructor(private readonly plan: Map<Tensor, TensorOut>) {}

  private remember(v: unknown): boolean {
    const at = this.memo.get(v);
    if (at === undefined) return false;
    this.w.get(at);
    return true;
  }

  private emptyOrderedDict(): void {
    this.w.global('collections', 'OrderedDict');
    this.w.op(OP.EMPTY_TUPLE);
    this.w.op(OP.REDUCE);
  }

  private intTuple(xs: number[]): void {
    this.tupleOf(xs.length, (i) => this.w.int(xs[i]));
  }

  private tupleOf(n: number, item: (i: number) => void): void {
    if (n === 0) return this.w.op(OP.EMPTY_TUPLE);
    if (n > 3) this.w.mark();
    for (let i = 0; i < n; i++) item(i);
    this.w.op(n === 1 ? OP.TUPLE1 : n === 2 ? OP.TUPLE2 : n === 3 ? OP.TUPLE3 : OP.TUPLE);
  }

  private tensorV2(t: Tensor, requiresGrad: boolean): void {
    const p = this.plan.get(t)!;
    const s = p.storage;
    this.w.global('torch._utils', '_rebuild_tensor_v2');
    this.w.mark();
    // The persistent id: ('storage', torch.FloatStorage, key, location, numel)
    this.w.mark();
    this.w.str('storage');
    this.w.global('torch', STORAGE_NAMES[s.dtype]);
    this.w.str(s.key);
    this.w.str(s.location);
    this.w.int(s.numel);
    this.w.op(OP.TUPLE);
    this.w.op(OP.BINPERSID);
    this.w.int(p.offset);
    this.intTuple(p.size);
    this.intTuple(p.stride);
    this.w.bool(requiresGrad);
    this.emptyOrderedDict(); // backward hooks: never saved
    this.w.op(OP.TUPLE);
    this.w.op(OP.REDUCE);
  }

  private items(entries: Iterable<[unknown, unknown]>, path: string, op: number, pairs: boolean): void {
    let n = 0;
    for (const [k, v] of entries) {
      if (n === 0) this.w.mark();
      if (pairs) this.value(k, `${path}<key>`);
      this.value(v, pairs ? `${path}[${typeof k === 'string' ? JSON.stringify(k) : String(k)}]` : `${path}[${String(k)}]`);
      if (++n === BATCH) {
        this.w.op(op);
        n = 0;
      }
    }
    if (n) this.w.op(op);
  }

  value(v: unknown, path: string): void {
    const w = this.w;
    switch (typeof v) {
      case 'undefined':
        return w.none();
      case 'boolean':
        return w.bool(v);
      case 'string':
        return w.str(v);
      case 'bigint':
        return w.int(v);
      case 'number':
        // JS has one number type: integral values are written as Python ints.
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) return w.int(v);
        return w.float(v);
      case 'object':
        break;
      default:
        cannotSave(v, path);
    }
    if (v === null) return w.none();
    if (this.remember(v)) return;
    if (v instanceof Tensor) {
      if (v instanceof Parameter) {
        // Parameter.__reduce_ex__: _rebuild_parameter(data, requires_grad, OrderedDict())
        w.global('torch._utils', '_rebuild_parameter');
        w.mark();
        this.tensorV2(v, false);
        w.bool(v.requiresGrad);
        this.emptyOrderedDict();
        w.op(OP.TUPLE);
        w.op(OP.REDUCE);
      } else {
        this.tensorV2(v, v.requiresGrad);
      }
    } else if (Array.isArray(v) && Object.isFrozen(v)) {
      if (this.inProgress.has(v)) throw new TypeError(`save(): the tuple at ${path} contains itself`);
      this.inProgress.add(v);
      this.tupleOf(v.length, (i) => this.value(v[i], `${path}[${i}]`));
      this.inProgress.delete(v);
    } else if (Array.isArray(v)) {
      w.op(OP.EMPTY_LIST);
      this.memo.set(v, w.put());
      this.items(v.entries(), path, OP.APPENDS, false);
      return;
    } else if (v instanceof Map) {
      this.emptyOrderedDict();
      this.memo.set(v, w.put());
      this.items(v.entries(), path, OP.SETITEMS, true);
      if (v instanceof OrderedDict && v.attributes.size) {
        w.op(OP.EMPTY_DICT);
        this.items(v.attributes.entries(), `${path}.attributes`, OP.SETITEMS, true);
        w.op(OP.BUILD);
      }
      return;
    } else if (v instanceof Set) {
      // Protocol 2 has no set opcode: set([...]) as Python's pickler writes it.
      w.global('__builtin__', 'set');
      w.op(OP.EMPTY_LIST);
      this.items([...v].entries(), path, OP.APPENDS, false);
      w.op(OP.TUPLE1);
      w.op(OP.REDUCE);
    } else if (v instanceof Uint8Array && !(v instanceof Uint8ClampedArray)) {
      // bytes, as Python 3 writes them at protocol 2.
      if (v.length === 0) {
        w.global('__builtin__', 'bytes');
        w.op(OP.EMPTY_TUPLE);
      } else {
        w.global('_codecs', 'encode');
        w.str(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1'));
        w.str('latin1');
        w.op(OP.TUPLE2);
      }
      w.op(OP.REDUCE);
    } else if (isPlainObject(v)) {
      w.op(OP.EMPTY_DICT);
      this.memo.set(v, w.put());
      this.items(Object.entries(v), path, OP.SETITEMS, true);
      return;
    } else {
      cannotSave(v, path);
    }
    this.memo.set(v, w.put());
  }
}

/** PyTorch names the archive's top folder after the file: `model.pt` → `model/`. */
function archiveName(path: string): string {
  const stem = basename(path)
    .split('.')[0]
    .replace(/[^A-Za-z0-9_-]/g, '_');
  return stem || 'archive';
}

/**
 * `torch.save`: writes `obj` to `path` in PyTorch's zip format, which
 * `torch.load` reads (with `weights_only=True` too, unless `obj` holds floats,
 * bytes or sets, which PyTorch 1.13's weights-only unpickler does not know) and
 * {@link load} reads back.
 *
 * `obj` may hold what `load` returns: tensors, Maps (written as OrderedDict,
 * so a state dict from `module.stateDict()` loads as one), plain objects
 * (dict), arrays (list; frozen arrays are tuples), Sets, Buffers (bytes),
 * strings, numbers (integral ones are written as int), bigints, booleans and
 * null. Tensors that share a storage are saved sharing it, as in PyTorch; any
 * other tensor is saved on its own, compactly. The file is written to a
 * temporary file first and renamed into place, so it is never seen half written.
 *
 * @example
 * save(model.stateDict(), 'vgg16.pth');
 * // python: model.load_state_dict(torch.load('vgg16.pth', weights_only=True))
 */
export function save(obj: unknown, path: string | URL, opts: SaveOptions = {}): void {
  checkOptions('save()', opts, ['forceZip64']);
  const file = toPath(path, 'save');
  const tensors = collectTensors(obj);
  const { plan, storages } = planStorages(tensors);
  const pickler = new Pickler(plan);
  pickler.value(obj, '');
  const pkl = pickler.w.stop();
  const prefix = archiveName(file);
  writeAtomically(file, (fd) => {
    const zip = new ZipWriter(fd, opts.forceZip64 ?? false);
    zip.add(`${prefix}/data.pkl`, [pkl]);
    for (const s of storages) zip.add(`${prefix}/data/${s.key}`, [s.bytes()]);
    zip.add(`${prefix}/version`, [Buffer.from('3\n')]);
    // PyTorch >= 2.1 reads this; older versions ignore it.
    zip.add(`${prefix}/byteorder`, [Buffer.from(endianness() === 'LE' ? 'little' : 'big')]);
    zip.finish();
  });
}
