// safetensors: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}},
// then the tensors' bytes, little-endian, row-major. No code, no pickle.
import { endianness } from 'node:os';
import { writeSync } from 'node:fs';
import { native } from '../native.js';
import { type DType, dtypeCode, elementSize } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';
import { tensorBytes, toPath, writeAtomically } from './bytes.js';
import { checkOptions, describe } from '../utils/args.js';
import { FormatError, type PathOrBuffer, type Source, openSource, withContext } from './source.js';

const FROM_ST: Record<string, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const TO_ST = Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k])) as Record<DType, string>;
/** The reference implementation refuses headers above 100 MB. */
const MAX_HEADER = 100_000_000;

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function readHeader(src: Source): { entries: Entry[]; metadata: Record<string, string> | null; dataStart: number } {
  if (src.size < 8) throw new FormatError('file too short for a safetensors header');
  const n = src.read(0, 8).readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER, src.size - 8))) throw new FormatError(`header length ${n} exceeds the file (or 100 MB)`);
  const dataStart = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(src.read(8, Number(n)).toString('utf8'));
  } catch (e) {
    throw new FormatError(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new FormatError('the header is not a JSON object');
  const dataLen = src.size - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info) || !Object.values(info).every((x) => typeof x === 'string')) {
        throw new FormatError('__metadata__ must map strings to strings');
      }
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    const bad = (why: string): never => {
      throw new FormatError(`tensor '${name}': ${why}`);
    };
    if (info === null || typeof info !== 'object') bad('entry is not an object');
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') return bad('missing dtype');
    const dt = FROM_ST[dtype];
    if (!dt) bad(`dtype ${dtype} is not supported`);
    if (!Array.isArray(shape) || shape.length > 64 || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) bad('bad shape');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((s) => Number.isSafeInteger(s) && s >= 0)) bad('bad data_offsets');
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataLen) bad(`data_offsets [${begin}, ${end}] lie outside the ${dataLen} data bytes`);
    const numel = (shape as number[]).reduce((p, s) => p * BigInt(s), 1n);
    if (numel * BigInt(elementSize(dt)) !== BigInt(end - begin)) bad(`shape [${shape}] of ${dtype} does not fill ${end - begin} bytes`);
    entries.push({ name, dtype: dt, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].begin < entries[i - 1].end) throw new FormatError(`tensors '${entries[i - 1].name}' and '${entries[i].name}' overlap`);
  }
  return { entries, metadata, dataStart };
}

function wrapErrors<T>(fn: string, src: Source, body: () => T): T {
  try {
    return body();
  } catch (e) {
    throw withContext(`${fn}(): ${src.name}`, e);
  } finally {
    src.close();
  }
}

/**
 * Reads a safetensors file: a Map from names to tensors, in the order of their
 * data in the file. Each tensor is read straight into its own memory. With
 * `mapLocation` (a device), tensors are moved there. The tensors belong to the caller.
 */
export function loadSafetensors(pathOrBuffer: PathOrBuffer, opts: { mapLocation?: string } = {}): Map<string, Tensor> {
  checkOptions('loadSafetensors()', opts, ['mapLocation']);
  const src = openSource(pathOrBuffer, 'loadSafetensors');
  return wrapErrors('loadSafetensors', src, () => {
    const { entries, dataStart } = readHeader(src);
    const out = new Map<string, Tensor>();
    const swap = endianness() === 'BE';
    try {
      for (const e of entries) {
        const n = e.end - e.begin;
        const buf = n === 0 ? Buffer.alloc(0) : Buffer.allocUnsafeSlow(n);
        src.readInto(dataStart + e.begin, n, buf);
        const es = elementSize(e.dtype);
        if (swap && es > 1) es === 2 ? buf.swap16() : es === 4 ? buf.swap32() : buf.swap64();
        let t = wrap(native.fromBuffer(buf.buffer, buf.byteOffset, e.shape, dtypeCode(e.dtype), false));
        if (opts.mapLocation && opts.mapLocation !== 'cpu') {
          const moved = t.to(opts.mapLocation);
          t.dispose();
          t = moved;
        }
        out.get(e.name)?.dispose();
        out.set(e.name, t);
      }
    } catch (err) {
      for (const t of out.values()) t.dispose();
      throw err;
    }
    return out;
  });
}

/** The `__metadata__` of a safetensors file (null when it has none), without reading any tensor. */
export function loadSafetensorsMetadata(pathOrBuffer: PathOrBuffer): Record<string, string> | null {
  const src = openSource(pathOrBuffer, 'loadSafetensorsMetadata');
  return wrapErrors('loadSafetensorsMetadata', src, () => readHeader(src).metadata);
}

/**
 * Writes tensors to a safetensors file (atomically). Tensors are written
 * contiguously, each with its own data (the format has no shared storage),
 * sorted as the reference implementation sorts them so every tensor is aligned.
 */
export function saveSafetensors(
  tensors: Map<string, Tensor> | Readonly<Record<string, Tensor>>,
  path: string | URL,
  opts: { metadata?: Readonly<Record<string, string>> } = {},
): void {
  const file = toPath(path, 'saveSafetensors');
  checkOptions('saveSafetensors()', opts, ['metadata']);
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors)) {
    throw new TypeError(`saveSafetensors(): argument 'tensors' must be a Map or an object of Tensors, got ${describe(tensors)}`);
  }
  const list = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  for (const [name, t] of list) {
    if (typeof name !== 'string') throw new TypeError('saveSafetensors(): tensor names must be strings');
    if (name === '__metadata__') throw new TypeError("saveSafetensors(): '__metadata__' is reserved");
    if (!(t instanceof Tensor)) throw new TypeError(`saveSafetensors(): '${name}' must be a Tensor, got ${describe(t)}`);
    if (t.isDisposed) throw new Error(`saveSafetensors(): '${name}' has been disposed`);
  }
  if (opts.metadata && !Object.values(opts.metadata).every((v) => typeof v === 'string')) {
    throw new TypeError('saveSafetensors(): metadata values must be strings');
  }
  list.sort(([a, x], [b, y]) => elementSize(y.dtype) - elementSize(x.dtype) || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = { ...opts.metadata };
  let offset = 0;
  for (const [name, t] of list) {
    const n = t.numel() * elementSize(t.dtype);
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const swap = endianness() === 'BE';
  writeAtomically(file, (fd) => {
    const write = (b: Uint8Array): void => {
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done);
    };
    write(len);
    write(json);
    for (const [, t] of list) {
      const b = Buffer.from(tensorBytes(t).buffer);
      const es = elementSize(t.dtype);
      if (swap && es > 1) es === 2 ? b.swap16() : es === 4 ? b.swap32() : b.swap64();
      write(b);
    }
  });
}
