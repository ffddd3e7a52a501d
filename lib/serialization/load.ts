// torch.load for the three container formats PyTorch has written, safely.
//
//   zip     (>= 1.6)        <archive>/data.pkl + <archive>/data/<key> records (+ byteorder)
//   legacy  (0.1.10 - 1.5)  magic, protocol version, sys_info, the pickle, the
//                           storage-key list, then per key an int64 count and the data
//   tar     (<= 0.1.9)      members 'storages', 'tensors' and 'pickle'
//
// This file reads the containers. The pickle inside runs on a VM that executes
// nothing (pickle.ts) with the allow-list of unpickler.ts, and storages and
// tensors are rebuilt by rebuild.ts. Storages are allocated when the pickle
// first names them, after their size has been checked against the bytes the
// file holds (legacy, tar, stored zip records) or, for deflated zip records,
// against the record's header and the `maxBytes` budget, so neither a lying
// header nor a zip bomb can make us allocate more than the file or the budget.
import { endianness } from 'node:os';
import { elementSize } from '../tensor/dtype.js';
import { isDeviceString } from '../tensor/tensor.js';
import { checkOptions } from '../utils/args.js';
import { unpickle } from './pickle.js';
import { MAX_DIMS, Rebuilder, type StorageRecords, StorageRef, asString, describeValue, isSafeCount } from './rebuild.js';
import { Cursor, FormatError, type PathOrBuffer, RangeSource, type Source, bufferSource, openSource, withContext } from './source.js';
import { looksLikeTar, readTar } from './tar.js';
import { PyName, WeightsOnlyUnpickler } from './unpickler.js';
import { ZipReader } from './zip.js';

export { loadCounters } from './rebuild.js';

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

type Format = 'zip' | 'legacy' | 'tar';

function swapBytes(buf: Buffer, size: number): void {
  if (size === 2) buf.swap16();
  else if (size === 4) buf.swap32();
  else if (size === 8) buf.swap64();
}

function resolveLocation(location: string, ml: MapLocation | undefined): string {
  let device: string | null | undefined;
  if (ml === undefined) device = 'cpu';
  else if (typeof ml === 'string') device = ml;
  else if (typeof ml === 'function') device = ml(location);
  else device = Object.hasOwn(ml, location) ? ml[location] : undefined;
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

function loadZip(src: Source, rb: Rebuilder, verify: boolean): { value: unknown; tuples: unknown[][] } {
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
  /** Whether storages must be byte-swapped after reading (a big-endian zip). */
  let swap = false;
  const order = zip.get(`${prefix}/byteorder`);
  if (order) {
    if (order.size > 16) throw new FormatError(`the byteorder record holds ${order.size} bytes, not 'little' or 'big'`);
    const v = zip.read(order).toString('latin1').trim();
    if (v !== 'little' && v !== 'big') throw new FormatError(`unknown byteorder '${v.slice(0, 20)}'`);
    swap = v !== (endianness() === 'LE' ? 'little' : 'big');
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
  const records: StorageRecords = {
    check(key, nbytes) {
      const entry = record(key, nbytes);
      claimed += entry.compressedSize;
      if (claimed > src.size) throw new FormatError(`storage records overlap: storage '${key}' brings them to ${claimed} bytes in a file of ${src.size}`);
      return entry.method === 0 ? `record '${entry.name}'` : `record '${entry.name}', ${entry.compressedSize} bytes deflated to ${entry.size}`;
    },
    read(key, nbytes, dtype) {
      const buf = zip.readStorage(record(key, nbytes), nbytes, verify);
      if (swap) swapBytes(buf, elementSize(dtype));
      return buf;
    },
  };
  const pklEntry = zip.get(`${prefix}/data.pkl`)!;
  // The pickle is inflated whole: it counts against maxBytes like a storage.
  rb.charge(`the pickle record '${pklEntry.name}' (${pklEntry.compressedSize} bytes${pklEntry.method ? ' deflated' : ''})`, pklEntry.size);
  const pkl = zip.read(pklEntry);
  return unpickle(new Cursor(bufferSource(pkl), 0), new WeightsOnlyUnpickler(rb, { records }));
}

function loadLegacy(src: Source, rb: Rebuilder, cur: Cursor): { value: unknown; tuples: unknown[][] } {
  const hooks = new WeightsOnlyUnpickler(rb, { storageViews: true });
  const header = (what: string): unknown => {
    try {
      return unpickle(cur, hooks).value;
    } catch (e) {
      throw new FormatError(`cannot read the ${what}: ${(e as Error).message}`);
    }
  };
  const magic = header('magic number');
  if (magic !== LEGACY_MAGIC && magic !== Number(LEGACY_MAGIC)) throw new FormatError('wrong magic number: not a PyTorch file (or a corrupt one)');
  const protocol = header('protocol version');
  if (protocol !== LEGACY_PROTOCOL) throw new FormatError(`unsupported legacy protocol version ${describeValue(protocol)}`);
  header('sys_info');
  const main = unpickle(cur, hooks);
  const keys = unpickle(cur, hooks).value;
  if (!Array.isArray(keys)) throw new FormatError('the storage key list is not a list');
  // Each storage: an int64 element count, then the data, little-endian, in the list's order.
  let pos = cur.pos;
  for (const k of keys) {
    const key = typeof k === 'number' ? String(k) : asString(k);
    const root = key === undefined ? undefined : rb.roots.get(key);
    if (!root) throw new FormatError(`the storage list names '${describeValue(k)}', which the pickle never used`);
    if (root.filled) throw new FormatError(`storage '${key}' is listed twice`);
    const count = new Cursor(src, pos, pos + 8).i64();
    if (count !== root.numel) throw new FormatError(`storage '${key}' holds ${count} elements in the file, but its persistent id says ${root.numel}`);
    src.readInto(pos + 8, root.nbytes, root.buf);
    root.filled = true;
    pos += 8 + root.nbytes;
  }
  for (const root of rb.roots.values()) {
    if (!root.filled) throw new FormatError(`the data of storage '${root.key}' is missing from the file`);
  }
  return main;
}

function loadTar(src: Source, rb: Rebuilder): { value: unknown; tuples: unknown[][] } {
  const plain = new WeightsOnlyUnpickler(rb);
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
  const count = unpickle(cur, plain).value;
  if (!isSafeCount(count)) throw new FormatError('bad storage count');
  for (let i = 0; i < count; i++) {
    const rec = unpickle(cur, plain).value;
    if (!Array.isArray(rec) || rec.length !== 3) throw new FormatError('bad storage record');
    const [key, location, type] = rec;
    if (!(type instanceof PyName) || type.role !== 'storage') throw new FormatError(`bad storage type ${describeValue(type)}`);
    const numel = new Cursor(storages, cur.pos, cur.pos + 8).i64();
    const k = keyOf(key);
    const root = rb.makeRoot(k, type.dtype!, numel, asString(location) ?? 'cpu');
    storages.readInto(cur.pos + 8, root.nbytes, root.buf);
    root.filled = true;
    cur = new Cursor(storages, cur.pos + 8 + root.nbytes);
    objects.set(k, new StorageRef(root, root.dtype, 0, numel));
  }
  const views = unpickle(cur, plain).value;
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
  const ntensors = unpickle(cur, plain).value;
  if (!isSafeCount(ntensors)) throw new FormatError('bad tensor count');
  // From here on persistent ids resolve to the objects made so far.
  const hooks = new WeightsOnlyUnpickler(rb, { objects });
  for (let i = 0; i < ntensors; i++) {
    const rec = unpickle(cur, hooks).value;
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
    objects.set(keyOf(key), rb.rebuild(storage, offset, size, stride, false, undefined));
  }
  const pickle = member('pickle');
  return unpickle(new Cursor(pickle, 0), hooks);
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
  let rb: Rebuilder | undefined;
  try {
    const format = sniff(src);
    let cur: Cursor | undefined;
    // Storages may not claim more bytes than the file has after the pickle.
    // (zip records are checked one by one instead: a deflated record may be larger than the file.)
    const limit =
      maxBytes !== undefined
        ? { value: maxBytes, why: 'the maxBytes option' }
        : { value: defaultMaxBytes(src.size), why: `the default: 16 × the file's ${src.size} bytes, at least 64 MiB` };
    rb = new Rebuilder(() => (format === 'zip' ? Infinity : cur ? src.size - cur.pos : src.size), limit);
    let res: { value: unknown; tuples: unknown[][] };
    if (format === 'zip') res = loadZip(src, rb, opts.verifyChecksums ?? true);
    else if (format === 'tar') res = loadTar(src, rb);
    else {
      cur = new Cursor(src, 0);
      res = loadLegacy(src, rb, cur);
    }
    const value = rb.finish(res.value, res.tuples);
    rb.place((location) => resolveLocation(location, opts.mapLocation));
    rb.releaseBases();
    return value as T;
  } catch (e) {
    rb?.abort();
    throw withContext(`load(): ${src.name}`, e);
  } finally {
    src.close();
  }
}
