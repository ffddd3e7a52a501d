// Random-access bytes from a file or a buffer, and a forward cursor over a range
// of them for the pickle VM. Files are never read whole: the loader reads the
// pickle through a small window and each storage straight into its own buffer,
// so a 500 MB checkpoint never sits in JS memory twice.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Thrown by {@link load} and the safetensors readers for anything wrong with the
 * bytes being read: a truncated, corrupt or hostile file (`err instanceof FormatError`).
 */
export class FormatError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FormatError';
  }
}

/** `e` with `prefix` (the function and file) in front of its message, keeping FormatError's class. */
export function withContext(prefix: string, e: unknown): Error {
  const message = `${prefix}: ${e instanceof Error ? e.message : String(e)}`;
  return e instanceof FormatError ? new FormatError(message, { cause: e }) : new Error(message, { cause: e });
}

/** Random access to the bytes of a file or a buffer. */
export interface Source {
  /** For messages: the path, or `<buffer>`. */
  readonly name: string;
  readonly size: number;
  /** Copies bytes [pos, pos + n) into `dst` at `dstOffset`; throws if they are not all there. */
  readInto(pos: number, n: number, dst: Uint8Array, dstOffset?: number): void;
  /** Bytes [pos, pos + n): a view for buffer sources, a fresh copy for files. */
  read(pos: number, n: number): Buffer;
  close(): void;
}

function checkRange(src: Source, pos: number, n: number): void {
  if (!(pos >= 0 && n >= 0 && pos + n <= src.size)) {
    throw new FormatError(`truncated file: needs bytes ${pos}..${pos + n} but holds ${src.size}`);
  }
}

class BufferSource implements Source {
  readonly name = '<buffer>';
  readonly size: number;
  constructor(private readonly buf: Buffer) {
    this.size = buf.length;
  }
  readInto(pos: number, n: number, dst: Uint8Array, dstOffset = 0): void {
    checkRange(this, pos, n);
    dst.set(this.buf.subarray(pos, pos + n), dstOffset);
  }
  read(pos: number, n: number): Buffer {
    checkRange(this, pos, n);
    return this.buf.subarray(pos, pos + n);
  }
  close(): void {}
}

class FileSource implements Source {
  readonly size: number;
  private fd: number | null;
  constructor(readonly name: string) {
    this.fd = openSync(name, 'r');
    try {
      const st = fstatSync(this.fd);
      if (!st.isFile()) throw new Error(`${name} is not a regular file`);
      this.size = st.size;
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }
  readInto(pos: number, n: number, dst: Uint8Array, dstOffset = 0): void {
    checkRange(this, pos, n);
    if (this.fd === null) throw new Error('file is closed');
    let done = 0;
    while (done < n) {
      // readSync caps one read at 2 GiB; loop for short reads too.
      const chunk = Math.min(n - done, 0x40000000);
      const got = readSync(this.fd, dst, dstOffset + done, chunk, pos + done);
      if (got === 0) throw new FormatError(`truncated file: it ended at byte ${pos + done} while being read`);
      done += got;
    }
  }
  read(pos: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    this.readInto(pos, n, out);
    return out;
  }
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** What `load` and `loadSafetensors` accept: a path (string or file URL) or the bytes themselves. */
export type PathOrBuffer = string | URL | Uint8Array | ArrayBuffer;

export function openSource(input: PathOrBuffer, fn: string): Source {
  if (typeof input === 'string') return new FileSource(input);
  if (input instanceof URL) return new FileSource(fileURLToPath(input));
  if (input instanceof ArrayBuffer) return new BufferSource(Buffer.from(input));
  if (input instanceof Uint8Array) return new BufferSource(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  throw new TypeError(`${fn}(): expected a path, a file URL, a Buffer/Uint8Array or an ArrayBuffer, got ${input === null ? 'null' : typeof input}`);
}

/** A source over bytes already in memory. */
export function bufferSource(buf: Buffer): Source {
  return new BufferSource(buf);
}

/** Sub-range of a source, as its own source (tar members). */
export class RangeSource implements Source {
  constructor(
    private readonly src: Source,
    private readonly start: number,
    readonly size: number,
  ) {}
  get name(): string {
    return this.src.name;
  }
  readInto(pos: number, n: number, dst: Uint8Array, dstOffset = 0): void {
    checkRange(this, pos, n);
    this.src.readInto(this.start + pos, n, dst, dstOffset);
  }
  read(pos: number, n: number): Buffer {
    checkRange(this, pos, n);
    return this.src.read(this.start + pos, n);
  }
  close(): void {}
}

const WINDOW = 1 << 20;

/**
 * A forward reader over [start, end) of a source, reading files through a
 * window of about 1 MiB. Views it returns are valid until the next read.
 */
export class Cursor {
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  pos: number;

  constructor(
    private readonly src: Source,
    start: number,
    readonly end: number = src.size,
  ) {
    this.pos = start;
    if (src instanceof BufferSource) {
      this.buf = src.read(0, src.size);
    }
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private ensure(n: number): number {
    if (n > this.end - this.pos) {
      throw new FormatError(`truncated data: needs ${n} more byte(s) at byte ${this.pos} but the data ends at byte ${this.end}`);
    }
    let off = this.pos - this.bufStart;
    if (off < 0 || off + n > this.buf.length) {
      const len = Math.min(Math.max(n, WINDOW), this.end - this.pos);
      this.buf = this.src.read(this.pos, len);
      this.bufStart = this.pos;
      off = 0;
    }
    return off;
  }

  u8(): number {
    const off = this.ensure(1);
    this.pos += 1;
    return this.buf[off];
  }
  /** A view of the next n bytes (valid until the next read). */
  take(n: number): Buffer {
    const off = this.ensure(n);
    this.pos += n;
    return this.buf.subarray(off, off + n);
  }
  u16(): number {
    return this.take(2).readUInt16LE(0);
  }
  u32(): number {
    return this.take(4).readUInt32LE(0);
  }
  i32(): number {
    return this.take(4).readInt32LE(0);
  }
  /** A little-endian int64 as a number; throws beyond 2^53. */
  i64(): number {
    const v = this.take(8).readBigInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError(`absurd 64-bit count ${v} at byte ${this.pos - 8}`);
    }
    return Number(v);
  }
  /** Bytes up to (not including) the next newline, which is consumed. */
  line(max = 1 << 16): Buffer {
    const start = this.pos;
    const limit = Math.min(this.end - start, max + 1);
    for (let scan = 64; ; scan = Math.min(scan * 4, limit)) {
      const n = Math.min(scan, limit);
      const off = this.ensure(n);
      const at = this.buf.subarray(off, off + n).indexOf(10);
      if (at >= 0) {
        this.pos = start + at + 1;
        return this.buf.subarray(off, off + at);
      }
      if (n === limit) {
        throw new FormatError(n > max ? `line longer than ${max} bytes at byte ${start}` : `truncated data: unterminated line at byte ${start}`);
      }
    }
  }
}
