// A pickle VM that never runs anything, and a pickle writer.
//
// The reader implements the opcodes of protocols 0-5 as data operations only.
// What a GLOBAL names is never looked up: the loader's allow-list (see
// rebuild.ts) turns a few names into inert markers, and refuses every other
// name with an error that names it. REDUCE, BUILD and NEWOBJ are forwarded to
// the same hooks, which only accept those markers. Every length is checked
// against the bytes that remain before anything is allocated, and every opcode
// consumes input, so a hostile pickle cannot hang the VM or make it allocate
// more than a small multiple of its own size.
import { type Cursor, FormatError } from './source.js';

/** The callbacks through which the VM touches anything beyond plain data. */
export interface UnpicklerHooks {
  /** GLOBAL / STACK_GLOBAL / INST: resolve `module.name` or throw. */
  findGlobal(module: string, name: string): unknown;
  /** BINPERSID / PERSID */
  persistentLoad(pid: unknown): unknown;
  /** REDUCE, NEWOBJ, NEWOBJ_EX, OBJ and INST. */
  call(func: unknown, args: unknown[], opcode: string): unknown;
  /** BUILD: returns nothing; mutates `inst`. */
  build(inst: unknown, state: unknown): void;
}

export interface UnpickleResult {
  value: unknown;
  /** Arrays that are Python tuples; the caller freezes them when it is done with them. */
  tuples: unknown[][];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A Python int: a number when exact, a bigint beyond 2^53. */
export function pyInt(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v;
}

/** No checkpoint holds an int of more than a few bytes; this bounds the work a hostile one can ask for. */
const MAX_LONG_BYTES = 1 << 16;

/** Little-endian two's complement, as pickle's LONG1/LONG4 and `decode_long`. */
function decodeLong(bytes: Uint8Array): number | bigint {
  const n = bytes.length;
  if (n > MAX_LONG_BYTES) throw new FormatError(`integer of ${n} bytes is too large`);
  if (n === 0) return 0;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[i];
    if (bytes[n - 1] & 0x80) v -= 2 ** (8 * n);
    return v;
  }
  let hex = '';
  for (let i = n - 1; i >= 0; i--) hex += bytes[i].toString(16).padStart(2, '0');
  let v = BigInt(`0x${hex}`);
  if (bytes[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return pyInt(v);
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function opName(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')} ('${code >= 32 && code < 127 ? String.fromCharCode(code) : '?'}')`;
}

/** Decodes a Python 2 `repr` string literal (protocol 0's STRING argument). */
function decodeStringRepr(raw: string): string {
  const q = raw[0];
  if (raw.length < 2 || (q !== "'" && q !== '"') || raw[raw.length - 1] !== q) {
    throw new FormatError('the STRING opcode argument must be quoted');
  }
  return raw.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/gs, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };
    return simple[e] ?? `\\${e}`;
  });
}

/** Decodes protocol 0's raw-unicode-escape (UNICODE argument). */
function decodeRawUnicode(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u: string, U: string) => String.fromCodePoint(parseInt(u ?? U, 16)));
}

function parseDecimal(line: Buffer, what: string): number | bigint {
  const s = line.toString('latin1').trim().replace(/L$/, '');
  if (s.length > MAX_LONG_BYTES) throw new FormatError(`${what} argument is too long`);
  if (!/^[+-]?\d+$/.test(s)) throw new FormatError(`malformed ${what} argument '${s.slice(0, 40)}'`);
  return pyInt(BigInt(s));
}

/**
 * Runs the pickle that starts at the cursor's position, up to and including its
 * STOP opcode, and leaves the cursor just after it.
 */
export function unpickle(cur: Cursor, hooks: UnpicklerHooks): UnpickleResult {
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const tuples: unknown[][] = [];
  const tupleSet = new WeakSet<object>();
  const start = cur.pos;

  const underflow = (): never => {
    throw new FormatError(`pickle stack underflow at byte ${cur.pos - 1}`);
  };
  const pop = (): unknown => {
    if (stack.length === 0) underflow();
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) underflow();
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) throw new FormatError(`pickle opcode at byte ${cur.pos - 1} needs a MARK that is not there`);
    stack = prev;
    return items;
  };
  const tuple = (items: unknown[]): unknown[] => {
    tuples.push(items);
    tupleSet.add(items);
    return items;
  };
  const memoGet = (i: number | bigint): unknown => {
    const k = Number(i);
    if (!memo.has(k)) throw new FormatError(`pickle memo has no entry ${i} (byte ${cur.pos})`);
    return memo.get(k);
  };
  const memoPut = (i: number | bigint): void => {
    if (typeof i !== 'number' || i < 0) throw new FormatError(`bad pickle memo index ${i}`);
    memo.set(i, top());
  };
  const asList = (v: unknown): unknown[] => {
    if (!Array.isArray(v) || tupleSet.has(v)) throw new FormatError(`can only append to a list, got ${kind(v)}`);
    return v;
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) throw new FormatError(`can only set items of a dict, got ${kind(target)}`);
    if (items.length % 2) throw new FormatError('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const addItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Set)) throw new FormatError(`can only add items to a set, got ${kind(target)}`);
    for (const it of items) target.add(it);
  };
  const str = (b: Buffer): string => utf8.decode(b);
  const asArgs = (v: unknown, op: string): unknown[] => {
    if (!Array.isArray(v)) throw new FormatError(`${op} arguments must be a tuple, got ${kind(v)}`);
    return v;
  };
  const global = (module: string, name: string): unknown => hooks.findGlobal(module, name);

  for (;;) {
    const code = cur.u8();
    switch (code) {
      // ---- framing and end -------------------------------------------------
      case 0x80: {
        // PROTO
        const proto = cur.u8();
        if (proto > 5) throw new FormatError(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: {
        // FRAME: an 8-byte length we do not need
        const n = cur.take(8).readBigUInt64LE(0);
        if (n > BigInt(cur.remaining)) throw new FormatError(`pickle frame of ${n} bytes runs past the end of the data`);
        break;
      }
      case 0x2e: {
        // STOP
        const value = pop();
        // Python ignores values left on the stack; so do we, but an open MARK means a corrupt stream.
        if (metastack.length) throw new FormatError('pickle ended with an open MARK');
        return { value, tuples };
      }
      // ---- constants -------------------------------------------------------
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4a:
        stack.push(cur.i32());
        break; // BININT
      case 0x4b:
        stack.push(cur.u8());
        break; // BININT1
      case 0x4d:
        stack.push(cur.u16());
        break; // BININT2
      case 0x8a:
        stack.push(decodeLong(cur.take(cur.u8())));
        break; // LONG1
      case 0x8b: {
        // LONG4
        const n = cur.i32();
        if (n < 0) throw new FormatError('LONG4 with a negative length');
        stack.push(decodeLong(cur.take(n)));
        break;
      }
      case 0x49: {
        // INT (protocol 0): I00/I01 are False/True
        const s = cur.line().toString('latin1').trim();
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else stack.push(parseDecimal(Buffer.from(s, 'latin1'), 'INT'));
        break;
      }
      case 0x4c:
        stack.push(parseDecimal(cur.line(), 'LONG'));
        break; // LONG
      case 0x47:
        stack.push(cur.take(8).readDoubleBE(0));
        break; // BINFLOAT
      case 0x46: {
        // FLOAT
        const s = cur.line().toString('latin1').trim();
        const v = Number(s.replace(/^(-?)inf$/i, '$1Infinity').replace(/^nan$/i, 'NaN'));
        if (Number.isNaN(v) && !/^nan$/i.test(s)) throw new FormatError(`malformed FLOAT argument '${s.slice(0, 40)}'`);
        stack.push(v);
        break;
      }
      // ---- strings and bytes -------------------------------------------------
      case 0x58:
        stack.push(str(cur.take(cur.u32())));
        break; // BINUNICODE
      case 0x8c:
        stack.push(str(cur.take(cur.u8())));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(str(cur.take(u64len(cur))));
        break; // BINUNICODE8
      case 0x56:
        stack.push(decodeRawUnicode(cur.line()));
        break; // UNICODE
      // Python 2 `str`: torch.load decodes them with encoding='utf-8'.
      case 0x55:
        stack.push(str(cur.take(cur.u8())));
        break; // SHORT_BINSTRING
      case 0x54: {
        // BINSTRING
        const n = cur.i32();
        if (n < 0) throw new FormatError('BINSTRING with a negative length');
        stack.push(str(cur.take(n)));
        break;
      }
      case 0x53:
        stack.push(decodeStringRepr(cur.line().toString('latin1')));
        break; // STRING
      case 0x43:
        stack.push(Buffer.from(cur.take(cur.u8())));
        break; // SHORT_BINBYTES
      case 0x42:
        stack.push(Buffer.from(cur.take(cur.u32())));
        break; // BINBYTES
      case 0x8e:
        stack.push(Buffer.from(cur.take(u64len(cur))));
        break; // BINBYTES8
      case 0x96:
        stack.push(Buffer.from(cur.take(u64len(cur))));
        break; // BYTEARRAY8
      case 0x97:
      case 0x98: // NEXT_BUFFER, READONLY_BUFFER
        throw new FormatError('pickle uses out-of-band buffers (protocol 5), which a file cannot carry');
      // ---- containers --------------------------------------------------------
      case 0x28:
        metastack.push(stack);
        stack = [];
        break; // MARK
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push(tuple([]));
        break; // EMPTY_TUPLE
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x8f:
        stack.push(new Set());
        break; // EMPTY_SET
      // (popMark() replaces `stack`: take the items before naming the stack to push on.)
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x74: {
        // TUPLE
        const items = tuple(popMark());
        stack.push(items);
        break;
      }
      case 0x85:
        stack.push(tuple([pop()]));
        break; // TUPLE1
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b, c]));
        break;
      }
      case 0x64: {
        // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(new Set(items));
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        asList(top()).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = asList(top());
        for (const it of items) list.push(it);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        addItems(top(), items);
        break;
      }
      // ---- stack and memo ----------------------------------------------------
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        stack.push(top());
        break; // DUP
      case 0x68:
        stack.push(memoGet(cur.u8()));
        break; // BINGET
      case 0x6a:
        stack.push(memoGet(cur.u32()));
        break; // LONG_BINGET
      case 0x67:
        stack.push(memoGet(parseDecimal(cur.line(), 'GET')));
        break; // GET
      case 0x71:
        memoPut(cur.u8());
        break; // BINPUT
      case 0x72:
        memoPut(cur.u32());
        break; // LONG_BINPUT
      case 0x70:
        memoPut(parseDecimal(cur.line(), 'PUT'));
        break; // PUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      // ---- the risky ones: all go through the hooks ------------------------------
      case 0x63: {
        // GLOBAL
        const module = cur.line().toString('utf8');
        const name = cur.line().toString('utf8');
        stack.push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new FormatError('STACK_GLOBAL needs two strings');
        stack.push(global(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = asArgs(pop(), 'REDUCE');
        const func = pop();
        stack.push(hooks.call(func, args, 'REDUCE'));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = asArgs(pop(), 'NEWOBJ');
        const cls = pop();
        stack.push(hooks.call(cls, args, 'NEWOBJ'));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = asArgs(pop(), 'NEWOBJ_EX');
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) throw new FormatError('NEWOBJ_EX with keyword arguments is not supported');
        stack.push(hooks.call(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x69: {
        // INST
        const module = cur.line().toString('utf8');
        const name = cur.line().toString('utf8');
        const cls = global(module, name);
        const made = hooks.call(cls, popMark(), 'INST');
        stack.push(made);
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        if (items.length === 0) underflow();
        const made = hooks.call(items[0], items.slice(1), 'OBJ');
        stack.push(made);
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        hooks.build(top(), state);
        break;
      }
      case 0x51:
        stack.push(hooks.persistentLoad(pop()));
        break; // BINPERSID
      case 0x50:
        stack.push(hooks.persistentLoad(cur.line().toString('utf8')));
        break; // PERSID
      case 0x82:
      case 0x83:
      case 0x84: // EXT1, EXT2, EXT4
        throw new FormatError('pickle uses the copyreg extension registry (EXT opcodes), which is not allowed');
      default:
        throw new FormatError(`unknown pickle opcode ${opName(code)} at byte ${cur.pos - 1} (the pickle starts at byte ${start})`);
    }
  }
}

function u64len(cur: Cursor): number {
  const n = cur.take(8).readBigUInt64LE(0);
  if (n > BigInt(cur.remaining)) throw new FormatError(`length ${n} runs past the end of the data`);
  return Number(n);
}

export function kind(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list or tuple';
  if (v instanceof Map) return 'a dict';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}

// ---- writing ------------------------------------------------------------------------

/** Growable output for the pickle writer. */
export class ByteSink {
  private buf = Buffer.allocUnsafe(1 << 12);
  length = 0;
  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  byte(b: number): void {
    this.grow(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u16(v: number): void {
    this.grow(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.grow(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.grow(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  f64be(v: number): void {
    this.grow(8);
    this.buf.writeDoubleBE(v, this.length);
    this.length += 8;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Minimal little-endian two's complement bytes of `v` (pickle's encode_long). */
export function encodeLong(v: bigint): Buffer {
  if (v === 0n) return Buffer.alloc(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    const b = Number(x & 0xffn);
    out.push(b);
    x >>= 8n;
    if ((x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80)) break;
  }
  return Buffer.from(out);
}

/**
 * The opcode writer for protocol 2, the protocol `torch.save` uses. It emits
 * only opcodes PyTorch's `weights_only` unpickler understands, except BINFLOAT
 * and `_codecs.encode` (bytes), which PyTorch 1.13's does not know.
 */
export class PickleWriter {
  readonly out = new ByteSink();
  private memoSize = 0;
  private readonly globals = new Map<string, number>();

  constructor() {
    this.out.byte(0x80);
    this.out.byte(2);
  }
  mark(): void {
    this.out.byte(0x28);
  }
  none(): void {
    this.out.byte(0x4e);
  }
  bool(v: boolean): void {
    this.out.byte(v ? 0x88 : 0x89);
  }
  int(v: number | bigint): void {
    if (typeof v === 'number') {
      if (v >= 0 && v < 256) {
        this.out.byte(0x4b);
        this.out.byte(v);
        return;
      }
      if (v >= 0 && v < 65536) {
        this.out.byte(0x4d);
        this.out.u16(v);
        return;
      }
      if (v >= -0x80000000 && v <= 0x7fffffff) {
        this.out.byte(0x4a);
        this.out.i32(v);
        return;
      }
      v = BigInt(v);
    }
    if (v >= -0x80000000n && v <= 0x7fffffffn) return this.int(Number(v));
    const bytes = encodeLong(v);
    if (bytes.length < 256) {
      this.out.byte(0x8a);
      this.out.byte(bytes.length);
    } else {
      this.out.byte(0x8b);
      this.out.i32(bytes.length);
    }
    this.out.bytes(bytes);
  }
  float(v: number): void {
    this.out.byte(0x47);
    this.out.f64be(v);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.out.byte(0x58);
    this.out.u32(b.length);
    this.out.bytes(b);
  }
  /** GLOBAL, memoized: the second use of a name is a BINGET. */
  global(module: string, name: string): void {
    const key = `${module}\n${name}\n`;
    const at = this.globals.get(key);
    if (at !== undefined) return this.get(at);
    this.out.byte(0x63);
    this.out.bytes(Buffer.from(key, 'utf8'));
    this.globals.set(key, this.put());
  }
  /** Memoizes the top of the stack; returns its memo index. */
  put(): number {
    const i = this.memoSize++;
    if (i < 256) {
      this.out.byte(0x71);
      this.out.byte(i);
    } else {
      this.out.byte(0x72);
      this.out.u32(i);
    }
    return i;
  }
  get(i: number): void {
    if (i < 256) {
      this.out.byte(0x68);
      this.out.byte(i);
    } else {
      this.out.byte(0x6a);
      this.out.u32(i);
    }
  }
  op(code: number): void {
    this.out.byte(code);
  }
  stop(): Buffer {
    this.out.byte(0x2e);
    return this.out.result();
  }
}

export const OP = {
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_LIST: 0x5d,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEMS: 0x75,
  REDUCE: 0x52,
  BUILD: 0x62,
  BINPERSID: 0x51,
} as const;
