// The zip container of torch.save (PyTorch >= 1.6): a reader for what PyTorch's
// miniz-based writer and Python's zipfile produce (stored or deflated records,
// ZIP64), and a writer that lays records out as PyTorch's does (stored, data
// aligned to 64 bytes through an "FB" padding field, so the loaders of either
// side can map them in place).
import { closeSync, writeSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { FormatError, type Source } from './source.js';

// ---- CRC-32 ------------------------------------------------------------------------

let table: Int32Array | undefined;
function crc32js(data: Uint8Array, crc: number): number {
  if (!table) {
    table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
const nativeCrc = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data`, continuing from `crc`: zlib's (Node >= 20.15) or a table-driven fallback. */
export function crc32(data: Uint8Array, crc = 0): number {
  return nativeCrc ? nativeCrc(data, crc) : crc32js(data, crc);
}

// ---- reading -----------------------------------------------------------------------

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly flags: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;

function u64(b: Buffer, at: number, what: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`zip: absurd ${what} ${v}`);
  return Number(v);
}

/** The central directory of a zip archive, validated against the file's size. */
export class ZipReader {
  readonly entries: ZipEntry[] = [];
  private readonly byName = new Map<string, ZipEntry>();

  constructor(private readonly src: Source) {
    const size = src.size;
    if (size < 22) throw new FormatError('zip: file too short for an end-of-central-directory record');
    const tailLen = Math.min(size, 22 + 0xffff);
    const tail = src.read(size - tailLen, tailLen);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
        at = i;
        break;
      }
    }
    if (at < 0) throw new FormatError('zip: no end-of-central-directory record (truncated or not a zip file)');
    const eocdPos = size - tailLen + at;
    let count = tail.readUInt16LE(at + 10);
    let cdSize = tail.readUInt32LE(at + 12);
    let cdOffset = tail.readUInt32LE(at + 16);
    let cdEnd = eocdPos;
    if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
      // ZIP64: the locator sits just before the classic record.
      if (eocdPos < 20) throw new FormatError('zip: ZIP64 markers without a ZIP64 locator');
      const loc = src.read(eocdPos - 20, 20);
      if (loc.readUInt32LE(0) !== SIG_EOCD64_LOCATOR) throw new FormatError('zip: ZIP64 markers without a ZIP64 locator');
      const recPos = u64(loc, 8, 'ZIP64 record offset');
      if (recPos + 56 > eocdPos - 20) throw new FormatError('zip: ZIP64 end record lies outside the file');
      const rec = src.read(recPos, 56);
      if (rec.readUInt32LE(0) !== SIG_EOCD64) throw new FormatError('zip: bad ZIP64 end-of-central-directory signature');
      count = u64(rec, 32, 'entry count');
      cdSize = u64(rec, 40, 'central directory size');
      cdOffset = u64(rec, 48, 'central directory offset');
      cdEnd = recPos;
    }
    if (cdOffset + cdSize > cdEnd) {
      throw new FormatError(`zip: central directory (${cdSize} bytes at ${cdOffset}) runs past its end record at byte ${cdEnd}`);
    }
    if (count * 46 > cdSize) throw new FormatError(`zip: central directory of ${cdSize} bytes cannot hold ${count} entries`);
    const cd = src.read(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) {
        throw new FormatError(`zip: bad central directory entry ${i} at byte ${cdOffset + p}`);
      }
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > cd.length) throw new FormatError(`zip: central directory entry ${i} runs past the directory`);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // ZIP64 extra field: the 0xFFFFFFFF fields, in order, as 64-bit values.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (e + 4 + len > eEnd) throw new FormatError(`zip: bad extra field in entry '${name}'`);
        if (id === 0x0001) {
          let q = e + 4;
          const take = (what: string): number => {
            if (q + 8 > e + 4 + len) throw new FormatError(`zip: short ZIP64 extra field in entry '${name}'`);
            const v = u64(cd, q, what);
            q += 8;
            return v;
          };
          if (usize === U32_MAX) usize = take('size');
          if (compressedSize === U32_MAX) compressedSize = take('compressed size');
          if (localOffset === U32_MAX) localOffset = take('offset');
        }
        e += 4 + len;
      }
      if (localOffset + 30 + nameLen + compressedSize > cdOffset) {
        throw new FormatError(`zip: entry '${name}' (${compressedSize} bytes at ${localOffset}) overlaps the central directory`);
      }
      const entry: ZipEntry = { name, method, flags, crc, compressedSize, size: usize, localOffset };
      this.entries.push(entry);
      if (!this.byName.has(name)) this.byName.set(name, entry);
      p = next;
    }
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Where the entry's bytes start (after its local header). */
  dataOffset(e: ZipEntry): number {
    const h = this.src.read(e.localOffset, 30);
    if (h.readUInt32LE(0) !== SIG_LOCAL) throw new FormatError(`zip: bad local header for '${e.name}' at byte ${e.localOffset}`);
    const start = e.localOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (start + e.compressedSize > this.src.size) throw new FormatError(`zip: data of '${e.name}' runs past the end of the file`);
    return start;
  }

  private checkReadable(e: ZipEntry): void {
    if (e.flags & 1) throw new FormatError(`zip: entry '${e.name}' is encrypted`);
    if (e.method !== 0 && e.method !== 8)
      throw new FormatError(`zip: entry '${e.name}' uses compression method ${e.method} (only stored and deflate are supported)`);
    if (e.method === 0 && e.compressedSize !== e.size) throw new FormatError(`zip: stored entry '${e.name}' has mismatched sizes`);
  }

  /**
   * Inflates a deflated entry into one allocation of exactly `e.size` bytes
   * (plus one), which becomes the result: zlib writes its single output chunk
   * there, so a storage is never inflated and then copied. Asking for more than
   * `e.size` bytes is an error, so the entry's header bounds the allocation.
   */
  private inflate(e: ZipEntry, raw: Buffer): Buffer {
    // Deflate cannot expand more than ~1032:1; a larger claim is a bomb or a lie.
    if (e.size > e.compressedSize * 1032 + 1024) throw new FormatError(`zip: entry '${e.name}' claims an impossible size ${e.size}`);
    let data: Buffer;
    try {
      data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size), chunkSize: Math.max(64, e.size + 1) });
    } catch (err) {
      throw new FormatError(`zip: cannot inflate '${e.name}': ${(err as Error).message}`);
    }
    if (data.length !== e.size) throw new FormatError(`zip: '${e.name}' inflates to ${data.length} bytes, expected ${e.size}`);
    return data;
  }

  /** The whole entry, inflated and CRC-checked. */
  read(e: ZipEntry): Buffer {
    this.checkReadable(e);
    const raw = this.src.read(this.dataOffset(e), e.compressedSize);
    const data = e.method === 8 ? this.inflate(e, raw) : raw;
    if (crc32(data) !== e.crc) throw new FormatError(`zip: CRC mismatch in '${e.name}' (corrupt file)`);
    return data;
  }

  /**
   * The bytes of a storage record in a buffer of its own (never Node's shared
   * pool, so it is aligned for any dtype and freed with its last tensor): read
   * straight from the file when stored, inflated straight into it when deflated.
   * A stored record may be longer than the `n` bytes wanted (PyTorch reads such
   * files too); a deflated one must hold exactly `n`, which the caller checked
   * before asking. CRC-checked when the whole entry is read, unless `verify` is false.
   */
  readStorage(e: ZipEntry, n: number, verify = true): Buffer {
    this.checkReadable(e);
    if (e.method === 8) {
      if (e.size !== n) throw new FormatError(`zip: '${e.name}' holds ${e.size} bytes, ${n} needed`);
      let data = this.inflate(e, this.src.read(this.dataOffset(e), e.compressedSize));
      if (verify && crc32(data) !== e.crc) throw new FormatError(`zip: CRC mismatch in '${e.name}' (corrupt file)`);
      // Small outputs come from Node's pool (shared, unaligned): copy those few bytes.
      if (data.byteOffset !== 0 || data.buffer.byteLength > n + 1) data = copyOwn(data);
      return data;
    }
    if (n > e.size) throw new FormatError(`zip: '${e.name}' holds ${e.size} bytes, ${n} needed`);
    const dst = ownBuffer(n);
    this.src.readInto(this.dataOffset(e), n, dst);
    if (verify && n === e.size && crc32(dst) !== e.crc) throw new FormatError(`zip: CRC mismatch in '${e.name}' (corrupt file)`);
    return dst;
  }
}

/** A buffer of its own, never a slice of Node's shared pool. */
export function ownBuffer(nbytes: number): Buffer {
  return nbytes === 0 ? Buffer.alloc(0) : Buffer.allocUnsafeSlow(nbytes);
}

function copyOwn(b: Buffer): Buffer {
  const out = ownBuffer(b.length);
  b.copy(out);
  return out;
}

// ---- writing -----------------------------------------------------------------------

interface Written {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
}

const ALIGN = 64; // PyTorch's kFieldAlignment

/** Writes a stored zip sequentially to an open file descriptor, as PyTorchStreamWriter does. */
export class ZipWriter {
  private offset = 0;
  private readonly written: Written[] = [];

  constructor(
    private readonly fd: number,
    private readonly forceZip64 = false,
  ) {}

  private write(b: Uint8Array): void {
    let done = 0;
    while (done < b.length) done += writeSync(this.fd, b, done, b.length - done);
    this.offset += b.length;
  }

  /** Adds a record whose data is given in one or more chunks (written in order). */
  add(name: string, chunks: Uint8Array[]): void {
    const nameBytes = Buffer.from(name, 'utf8');
    let size = 0;
    let crc = 0;
    for (const c of chunks) {
      size += c.length;
      crc = crc32(c, crc);
    }
    const zip64 = this.forceZip64 || size >= U32_MAX || this.offset >= U32_MAX;
    const z64Len = zip64 ? 20 : 0;
    const base = this.offset + 30 + nameBytes.length + z64Len + 4;
    const pad = (ALIGN - (base % ALIGN)) % ALIGN;
    const h = Buffer.alloc(30 + nameBytes.length + z64Len + 4 + pad);
    h.writeUInt32LE(SIG_LOCAL, 0);
    h.writeUInt16LE(zip64 ? 45 : 20, 4);
    h.writeUInt16LE(nameBytes.some((b) => b > 127) ? 0x800 : 0, 6);
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(0, 10);
    h.writeUInt16LE(0x21, 12); // 1980-01-01: reproducible output
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    h.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    h.writeUInt16LE(nameBytes.length, 26);
    h.writeUInt16LE(z64Len + 4 + pad, 28);
    nameBytes.copy(h, 30);
    let e = 30 + nameBytes.length;
    if (zip64) {
      h.writeUInt16LE(0x0001, e);
      h.writeUInt16LE(16, e + 2);
      h.writeBigUInt64LE(BigInt(size), e + 4);
      h.writeBigUInt64LE(BigInt(size), e + 12);
      e += 20;
    }
    h.writeUInt16LE(0x4246, e); // "FB": padding to align the data
    h.writeUInt16LE(pad, e + 2);
    const offset = this.offset;
    this.write(h);
    for (const c of chunks) this.write(c);
    this.written.push({ name: nameBytes, crc, size, offset });
  }

  /** Writes the central directory and end records. */
  finish(): void {
    const cdOffset = this.offset;
    for (const w of this.written) {
      const big = this.forceZip64 || w.size >= U32_MAX || w.offset >= U32_MAX;
      const extra = big ? 28 : 0;
      const c = Buffer.alloc(46 + w.name.length + extra);
      c.writeUInt32LE(SIG_CENTRAL, 0);
      c.writeUInt16LE(big ? 45 : 20, 4);
      c.writeUInt16LE(big ? 45 : 20, 6);
      c.writeUInt16LE(w.name.some((b) => b > 127) ? 0x800 : 0, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt16LE(0, 12);
      c.writeUInt16LE(0x21, 14);
      c.writeUInt32LE(w.crc, 16);
      c.writeUInt32LE(big ? U32_MAX : w.size, 20);
      c.writeUInt32LE(big ? U32_MAX : w.size, 24);
      c.writeUInt16LE(w.name.length, 28);
      c.writeUInt16LE(extra, 30);
      c.writeUInt32LE(big ? U32_MAX : w.offset, 42);
      w.name.copy(c, 46);
      if (big) {
        const e = 46 + w.name.length;
        c.writeUInt16LE(0x0001, e);
        c.writeUInt16LE(24, e + 2);
        c.writeBigUInt64LE(BigInt(w.size), e + 4);
        c.writeBigUInt64LE(BigInt(w.size), e + 12);
        c.writeBigUInt64LE(BigInt(w.offset), e + 20);
      }
      this.write(c);
    }
    const cdSize = this.offset - cdOffset;
    const count = this.written.length;
    const zip64 = this.forceZip64 || count >= 0xffff || cdOffset >= U32_MAX || cdSize >= U32_MAX;
    if (zip64) {
      const recPos = this.offset;
      const r = Buffer.alloc(56 + 20);
      r.writeUInt32LE(SIG_EOCD64, 0);
      r.writeBigUInt64LE(44n, 4);
      r.writeUInt16LE(45, 12);
      r.writeUInt16LE(45, 14);
      r.writeBigUInt64LE(BigInt(count), 24);
      r.writeBigUInt64LE(BigInt(count), 32);
      r.writeBigUInt64LE(BigInt(cdSize), 40);
      r.writeBigUInt64LE(BigInt(cdOffset), 48);
      r.writeUInt32LE(SIG_EOCD64_LOCATOR, 56);
      r.writeBigUInt64LE(BigInt(recPos), 64);
      r.writeUInt32LE(1, 72);
      this.write(r);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(SIG_EOCD, 0);
    end.writeUInt16LE(zip64 ? 0xffff : count, 8);
    end.writeUInt16LE(zip64 ? 0xffff : count, 10);
    end.writeUInt32LE(zip64 ? U32_MAX : cdSize, 12);
    end.writeUInt32LE(zip64 ? U32_MAX : cdOffset, 16);
    this.write(end);
  }

  close(): void {
    closeSync(this.fd);
  }
}
