// The allow-list of a safe torch.load, as torch/_weights_only_unpickler.py: the
// pickle VM (pickle.ts) hands every GLOBAL, persistent id, call and BUILD to
// these hooks, which resolve a few names of torch and collections to inert
// markers, rebuild tensors through the Rebuilder, and refuse everything else
// with an error that names it. Nothing named in a file is ever looked up or run.
import { empty } from '../tensor/creation.js';
import type { DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { kind, type UnpicklerHooks } from './pickle.js';
import { type Rebuilder, type StorageRecords, StorageRef, asString, describeValue, intList, isSafeCount } from './rebuild.js';
import { FormatError } from './source.js';
import { OrderedDict } from './types.js';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
const TENSOR_DTYPES: Record<string, DType> = {
  FloatTensor: 'float32',
  DoubleTensor: 'float64',
  HalfTensor: 'float16',
  BFloat16Tensor: 'bfloat16',
  LongTensor: 'int64',
  IntTensor: 'int32',
  ShortTensor: 'int16',
  CharTensor: 'int8',
  ByteTensor: 'uint8',
  BoolTensor: 'bool',
};
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
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
export class PyName {
  constructor(
    readonly path: string,
    readonly role: string,
    readonly dtype?: DType,
  ) {}
}

/** What differs between the formats while a pickle is read. */
export interface UnpicklerState {
  /** zip: storages are records of the archive. */
  records?: StorageRecords;
  /** legacy: persistent ids may carry pre-0.4 storage views. */
  storageViews?: boolean;
  /** tar: persistent ids name the tensors and storages made before the pickle. */
  objects?: Map<string, unknown>;
}

/** The hooks of one pickle of one load; storages and tensors live in the shared Rebuilder. */
export class WeightsOnlyUnpickler implements UnpicklerHooks {
  private readonly refs = new Map<string, StorageRef>();
  /** Tensors made by torch.FloatTensor() & co. that BUILD may still set, with their dtype. */
  private readonly emptyTyped = new Map<Tensor, DType>();

  constructor(
    private readonly rb: Rebuilder,
    private readonly state: UnpicklerState = {},
  ) {}

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
    const { objects } = this.state;
    if (objects) {
      const key = typeof pid === 'number' || typeof pid === 'bigint' ? String(pid) : asString(pid);
      if (key === undefined) this.refusePid(pid);
      const found = objects.get(String(Number(key)));
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
      const root = this.rb.makeRoot(key, dtype, numel, location, this.state.records);
      ref = new StorageRef(root, dtype, 0, numel);
      this.refs.set(key, ref);
    }
    const view = this.state.storageViews ? pid[5] : null;
    if (view !== null && view !== undefined) {
      // Pre-0.4 storage views: (view_key, offset, size) of the root storage, in elements.
      if (!Array.isArray(view) || view.length !== 3) throw new FormatError(`malformed storage view ${describeValue(view)}`);
      const [vk, offset, size] = view;
      const viewKey = asString(vk) ?? String(vk);
      if (!isSafeCount(offset) || !isSafeCount(size) || offset + size > ref.numel) {
        throw new FormatError(
          `storage view '${viewKey}' (${describeValue(offset)}, ${describeValue(size)}) lies outside storage '${key}' of ${ref.numel} elements`,
        );
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
        'the file pickles a whole nn.Module (its class and source code), which cannot be loaded safely; ' + 'save and load its state_dict() instead',
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
        return this.rb.rebuild(a[0], a[1], a[2], a[3], false, undefined);
      case '_rebuild_tensor_v2':
        need(6, 7);
        return this.rb.rebuild(a[0], a[1], a[2], a[3], a[4], undefined);
      case '_rebuild_tensor_v3':
        need(7, 8);
        return this.rb.rebuild(a[0], a[1], a[2], a[3], a[4], a[6]);
      case '_rebuild_parameter':
      case '_rebuild_parameter_with_state':
        need(func.role === '_rebuild_parameter' ? 3 : 4);
        return this.rb.parameter(a[0], a[1]);
      case 'Parameter':
        need(1, 2);
        return this.rb.parameter(a[0], a.length > 1 ? a[1] : true);
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
        const t = this.rb.track(empty([0], { dtype: func.dtype! }));
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
        const t = this.rb.rebuild(state[0], state[1], state[2], state[3], false, undefined);
        inst.setData(t);
        this.rb.retarget(t, inst);
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
}
