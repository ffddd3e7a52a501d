// Fuzz inputs: input number i of a run is a pure function of (seed, i), so any
// input can be made again from its number alone (a finding is saved with both).
//
// Seeds are the small valid files of test/fixtures/pth (zip, ZIP64, deflated and
// big-endian zips, legacy files of 2017 and 1.13, the tar format of 0.1.9,
// safetensors, refused pickles) and test/fuzz/seeds (regressions). Mutators are
// generic (bits, bytes, interesting integers, cut, copy, splice) and
// format-aware: pickle opcodes (their integer arguments, globals, memo indices),
// zip records (rebuilt stored or deflated with correct CRCs, so mutations get
// past the checksum, or with lying sizes), the legacy layout (its pickles and
// storage counts), tar headers (with fixed checksums) and the safetensors JSON header.
import { readFileSync, readdirSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { crc32 } from '../../lib/serialization/zip.js';

export type InputKind = 'pth' | 'safetensors';

export interface Seed {
  name: string;
  kind: InputKind;
  bytes: Buffer;
}

export interface FuzzInput {
  index: number;
  kind: InputKind;
  /** The seed it was made from and the mutations applied, for the report. */
  seed: string;
  mutations: string[];
  bytes: Buffer;
}

const FIXTURES = new URL('../fixtures/pth/', import.meta.url);
const SEEDS = new URL('./seeds/', import.meta.url);

export function loadSeeds(): Seed[] {
  const out: Seed[] = [];
  for (const dir of [FIXTURES, SEEDS]) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      if (!/\.(pt|pth|safetensors)$/.test(name)) continue;
      out.push({ name, kind: name.endsWith('.safetensors') ? 'safetensors' : 'pth', bytes: readFileSync(new URL(name, dir)) });
    }
  }
  if (!out.length) throw new Error('fuzz: no seeds found');
  return out;
}

// ---- deterministic randomness ----------------------------------------------------------

/** sfc32 seeded through splitmix32: small, fast, and the same on every machine. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number, stream: number) {
    let s = (seed ^ Math.imul(stream, 0x9e3779b9)) >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
}

// ---- generic byte mutations -------------------------------------------------------------

const INTERESTING_32 = [
  0, 1, 2, 3, 4, 7, 8, 16, 63, 64, 127, 128, 255, 256, 1023, 1024, 4096, 65535, 65536, 0x7fff, 0x8000, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe,
  0x40000000, 0x10000000,
];
const INTERESTING_64 = [0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 1n << 40n];

function interestingBytes(rng: Rng): Buffer {
  const width = rng.pick([1, 2, 4, 8]);
  const b = Buffer.alloc(width);
  if (width === 8) b.writeBigUInt64LE(rng.pick(INTERESTING_64));
  else if (width === 4) b.writeUInt32LE(rng.pick(INTERESTING_32) >>> 0);
  else if (width === 2) b.writeUInt16LE(rng.pick(INTERESTING_32) & 0xffff);
  else b[0] = rng.pick(INTERESTING_32) & 0xff;
  if (width > 1 && rng.chance(0.3)) b.reverse(); // big-endian too
  return b;
}

function genericMutation(rng: Rng, b: Buffer, others: Seed[], log: string[]): Buffer {
  if (b.length === 0) return Buffer.from([rng.int(256)]);
  const at = rng.int(b.length);
  switch (rng.int(8)) {
    case 0: {
      const out = Buffer.from(b);
      out[at] ^= 1 << rng.int(8);
      log.push(`flip bit at ${at}`);
      return out;
    }
    case 1: {
      const out = Buffer.from(b);
      out[at] = rng.chance(0.5) ? rng.int(256) : rng.pick([0, 0xff, 0x7f, 0x80, 0x2e, 0x28]);
      log.push(`set byte ${at}`);
      return out;
    }
    case 2: {
      const out = Buffer.from(b);
      const v = interestingBytes(rng);
      v.copy(out, at);
      log.push(`interesting ${v.length}-byte value at ${at}`);
      return out;
    }
    case 3: {
      const n = 1 + rng.int(Math.min(64, b.length - at));
      log.push(`delete ${n} bytes at ${at}`);
      return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
    }
    case 4: {
      const from = rng.int(b.length);
      const n = 1 + rng.int(Math.min(64, b.length - from));
      log.push(`copy ${n} bytes from ${from} to ${at}`);
      return Buffer.concat([b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)]);
    }
    case 5: {
      log.push(`truncate at ${at}`);
      return b.subarray(0, at);
    }
    case 6: {
      const o = rng.pick(others).bytes;
      const from = rng.int(o.length);
      const n = 1 + rng.int(Math.min(256, o.length - from));
      log.push(`splice ${n} bytes of another seed at ${at}`);
      return Buffer.concat([b.subarray(0, at), o.subarray(from, from + n), b.subarray(at + (rng.chance(0.5) ? n : 0))]);
    }
    default: {
      const out = Buffer.from(b);
      const n = 1 + rng.int(Math.min(16, b.length - at));
      for (let i = 0; i < n; i++) out[at + i] = rng.int(256);
      log.push(`randomize ${n} bytes at ${at}`);
      return out;
    }
  }
}

// ---- pickles ---------------------------------------------------------------------------

interface Op {
  at: number;
  end: number;
  code: number;
}

const FIXED: Record<number, number> = {
  0x4b: 1,
  0x4d: 2,
  0x4a: 4,
  0x68: 1,
  0x71: 1,
  0x6a: 4,
  0x72: 4,
  0x47: 8,
  0x80: 1,
  0x95: 8,
  0x82: 1,
  0x83: 2,
  0x84: 4,
};
const LEN1 = new Set([0x55, 0x8c, 0x43, 0x8a]);
const LEN4 = new Set([0x54, 0x58, 0x42, 0x8b]);
const LEN8 = new Set([0x8d, 0x8e, 0x96]);
const LINES: Record<number, number> = { 0x63: 2, 0x69: 2, 0x49: 1, 0x4c: 1, 0x46: 1, 0x53: 1, 0x56: 1, 0x50: 1, 0x67: 1, 0x70: 1 };
const NOARG = new Set([...'().0129NQRVabdeflostu}]\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98'].map((c) => c.charCodeAt(0)));

/** The opcodes of the pickle at `start`, up to its STOP (or as far as they can be told apart). */
function tokenize(b: Buffer, start: number): Op[] {
  const ops: Op[] = [];
  let p = start;
  while (p < b.length) {
    const code = b[p];
    let end = p + 1;
    if (FIXED[code] !== undefined) end += FIXED[code];
    else if (LEN1.has(code)) end += 1 + (b[p + 1] ?? 0);
    else if (LEN4.has(code)) end += 4 + (p + 5 <= b.length ? b.readUInt32LE(p + 1) : 0);
    else if (LEN8.has(code)) end += 8 + (p + 9 <= b.length ? Number(b.readBigUInt64LE(p + 1) & 0xffffffn) : 0);
    else if (LINES[code] !== undefined) {
      for (let k = 0; k < LINES[code]; k++) {
        const nl = b.indexOf(10, end);
        if (nl < 0) return ops;
        end = nl + 1;
      }
    } else if (!NOARG.has(code)) return ops;
    if (end > b.length) return ops;
    ops.push({ at: p, end, code });
    p = end;
    if (code === 0x2e) break;
  }
  return ops;
}

const GLOBALS = [
  ['torch._utils', '_rebuild_tensor_v2'],
  ['torch._utils', '_rebuild_tensor'],
  ['torch._utils', '_rebuild_tensor_v3'],
  ['torch._utils', '_rebuild_parameter'],
  ['torch._tensor', '_rebuild_from_type_v2'],
  ['torch._tensor', '_rebuild_from_type'],
  ['torch.nn.parameter', 'Parameter'],
  ['collections', 'OrderedDict'],
  ['torch', 'FloatStorage'],
  ['torch', 'DoubleStorage'],
  ['torch', 'HalfStorage'],
  ['torch', 'LongStorage'],
  ['torch', 'ByteStorage'],
  ['torch', 'BoolStorage'],
  ['torch', 'UntypedStorage'],
  ['torch', 'FloatTensor'],
  ['torch', 'LongTensor'],
  ['torch', 'Size'],
  ['torch', 'device'],
  ['torch', 'float16'],
  ['torch', 'int64'],
  ['builtins', 'set'],
  ['builtins', 'frozenset'],
  ['builtins', 'bytearray'],
  ['_codecs', 'encode'],
  ['torch', 'Tensor'],
  ['torch._utils', '_rebuild_sparse_tensor'],
  ['os', 'system'],
  ['torch', 'ComplexFloatStorage'],
];
/** Opcodes worth inserting: structure, memo and the ones that go through the loader's hooks. */
const INSERTABLE = [
  0x28, 0x29, 0x2e, 0x30, 0x31, 0x32, 0x4e, 0x51, 0x52, 0x5d, 0x61, 0x62, 0x65, 0x6c, 0x73, 0x74, 0x75, 0x7d, 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90,
  0x91, 0x93, 0x94,
];

function intOp(rng: Rng): Buffer {
  const v = rng.chance(0.5) ? rng.pick(INTERESTING_32) : rng.int(70000);
  switch (rng.int(4)) {
    case 0:
      return Buffer.from([0x4b, v & 0xff]);
    case 1: {
      const b = Buffer.alloc(3);
      b[0] = 0x4d;
      b.writeUInt16LE(v & 0xffff, 1);
      return b;
    }
    case 2: {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v | 0, 1);
      return b;
    }
    default: {
      // LONG1 with up to 9 bytes: beyond 2^53 and negative too
      const n = 1 + rng.int(9);
      const b = Buffer.alloc(2 + n);
      b[0] = 0x8a;
      b[1] = n;
      for (let i = 0; i < n; i++) b[2 + i] = rng.chance(0.5) ? 0xff : rng.int(256);
      return b;
    }
  }
}

function globalOp(rng: Rng): Buffer {
  const [m, n] = rng.pick(GLOBALS);
  return Buffer.from(`c${m}\n${n}\n`, 'latin1');
}

/** One mutation of the pickle that starts at `start`; the bytes after its STOP are kept. */
function mutatePickle(rng: Rng, b: Buffer, start: number, log: string[]): Buffer {
  const ops = tokenize(b, start);
  if (ops.length < 2) return b;
  const end = ops[ops.length - 1].end;
  const i = rng.int(ops.length - 1); // never the STOP itself, unless duplicated
  const op = ops[i];
  const body = (parts: Buffer[]): Buffer => Buffer.concat([b.subarray(0, op.at), ...parts, b.subarray(op.end)]);
  const ints = ops.filter((o) => [0x4b, 0x4d, 0x4a, 0x8a].includes(o.code));
  const memo = ops.filter((o) => [0x68, 0x6a, 0x71, 0x72].includes(o.code));
  switch (rng.int(9)) {
    case 0:
      log.push(`pickle: delete op 0x${op.code.toString(16)} at ${op.at}`);
      return body([]);
    case 1:
      log.push(`pickle: duplicate op 0x${op.code.toString(16)} at ${op.at}`);
      return body([b.subarray(op.at, op.end), b.subarray(op.at, op.end)]);
    case 2: {
      const code = rng.pick(INSERTABLE);
      log.push(`pickle: insert op 0x${code.toString(16)} before ${op.at}`);
      return body([Buffer.from([code]), b.subarray(op.at, op.end)]);
    }
    case 3: {
      if (!ints.length) return b;
      const t = rng.pick(ints);
      log.push(`pickle: replace the int at ${t.at}`);
      return Buffer.concat([b.subarray(0, t.at), intOp(rng), b.subarray(t.end)]);
    }
    case 4: {
      log.push(`pickle: insert a global before ${op.at}`);
      return body([globalOp(rng), b.subarray(op.at, op.end)]);
    }
    case 5: {
      const globals = ops.filter((o) => o.code === 0x63);
      if (!globals.length) return b;
      const g = rng.pick(globals);
      log.push(`pickle: replace the global at ${g.at}`);
      return Buffer.concat([b.subarray(0, g.at), globalOp(rng), b.subarray(g.end)]);
    }
    case 6: {
      if (!memo.length) return b;
      const m = rng.pick(memo);
      const out = Buffer.from(b);
      if (m.code === 0x68 || m.code === 0x71) out[m.at + 1] = rng.chance(0.5) ? rng.int(8) : rng.int(256);
      else out.writeUInt32LE(rng.chance(0.5) ? rng.int(8) : rng.pick(INTERESTING_32) >>> 0, m.at + 1);
      log.push(`pickle: memo index at ${m.at}`);
      return out;
    }
    case 7: {
      // Move an op somewhere else: reorders arguments, MARKs and calls.
      const j = rng.int(ops.length - 1);
      const other = ops[j];
      log.push(`pickle: move op at ${op.at} before ${other.at}`);
      const moved = b.subarray(op.at, op.end);
      const without = Buffer.concat([b.subarray(0, op.at), b.subarray(op.end, end)]);
      const target = other.at > op.at ? other.at - (op.end - op.at) : other.at;
      return Buffer.concat([without.subarray(0, target), moved, without.subarray(target), b.subarray(end)]);
    }
    default: {
      // Copy a run of ops from elsewhere in the pickle (repeats tensors, builds, calls).
      const j = rng.int(ops.length - 1);
      const k = Math.min(ops.length - 1, j + 1 + rng.int(12));
      log.push(`pickle: copy ops ${j}..${k} before ${op.at}`);
      return body([b.subarray(ops[j].at, ops[k].at), b.subarray(op.at, op.end)]);
    }
  }
}

// ---- zip -----------------------------------------------------------------------------

export interface ZipRecord {
  name: string;
  data: Buffer;
  deflate: boolean;
  /** Sizes and CRC written in the headers, when they should lie. */
  lieSize?: number;
  lieCrc?: number;
  /** An already deflated body (then `data` is ignored, and lieSize and lieCrc must be given). */
  raw?: Buffer;
}

/** The records of a zip, found through its local headers (no validation: the seeds are valid). */
function readZipRecords(b: Buffer): ZipRecord[] | null {
  const out: ZipRecord[] = [];
  let p = 0;
  while (p + 30 <= b.length && b.readUInt32LE(p) === 0x04034b50) {
    const method = b.readUInt16LE(p + 8);
    let csize = b.readUInt32LE(p + 18);
    const nameLen = b.readUInt16LE(p + 26);
    const extraLen = b.readUInt16LE(p + 28);
    const name = b.toString('utf8', p + 30, p + 30 + nameLen);
    if (csize === 0xffffffff) {
      // ZIP64 extra field
      const e = p + 30 + nameLen;
      const idx = b.indexOf(Buffer.from([1, 0]), e);
      if (idx < 0 || idx > e + extraLen) return null;
      csize = Number(b.readBigUInt64LE(idx + 12));
    }
    const start = p + 30 + nameLen + extraLen;
    if (start + csize > b.length) return null;
    const raw = b.subarray(start, start + csize);
    let data: Buffer;
    try {
      data = method === 8 ? inflateRawSync(raw, { maxOutputLength: 1 << 26 }) : Buffer.from(raw);
    } catch {
      return null;
    }
    out.push({ name, data, deflate: method === 8 });
    p = start + csize;
  }
  return out.length ? out : null;
}

/** A zip of `records`, stored or deflated, with PyTorch's 64-byte data alignment when stored (Python's zipfile writes either). */
export function writeZip(records: ZipRecord[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const body = r.raw ?? (r.deflate ? deflateRawSync(r.data) : r.data);
    const crc = r.lieCrc ?? crc32(r.data);
    const size = r.lieSize ?? r.data.length;
    const base = offset + 30 + name.length + 4;
    const pad = r.deflate ? 0 : (64 - (base % 64)) % 64;
    const h = Buffer.alloc(30 + name.length + 4 + pad);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(r.deflate ? 8 : 0, 8);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(body.length, 18);
    h.writeUInt32LE(size, 22);
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(4 + pad, 28);
    name.copy(h, 30);
    h.writeUInt16LE(0x4246, 30 + name.length);
    h.writeUInt16LE(pad, 32 + name.length);
    const c = Buffer.alloc(46 + name.length);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(r.deflate ? 8 : 0, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    name.copy(c, 46);
    parts.push(h, body);
    central.push(c);
    offset += h.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

function mutateZip(rng: Rng, b: Buffer, log: string[]): Buffer {
  const records = readZipRecords(b);
  if (!records) return b;
  const pkl = records.find((r) => r.name.endsWith('/data.pkl'));
  const storages = records.filter((r) => /\/data\/[^/]+$/.test(r.name));
  switch (rng.int(6)) {
    case 0:
    case 1:
    case 2:
      if (!pkl) return b;
      pkl.data = mutatePickle(rng, pkl.data, 0, log);
      break;
    case 3: {
      // Deflate some records (what Python's zipfile writes with ZIP_DEFLATED).
      for (const r of records) r.deflate = rng.chance(0.6);
      log.push('zip: deflate records');
      break;
    }
    case 4: {
      // A record whose headers lie about its size (a bomb claims more than it holds, or more than the pickle says).
      const r = rng.pick(storages.length ? storages : records);
      r.deflate = rng.chance(0.7);
      if (rng.chance(0.5)) r.data = Buffer.concat([r.data, Buffer.alloc(rng.pick([1, 4, 4096, 1 << 20]))]);
      else r.lieSize = rng.pick([0, r.data.length + 1, r.data.length * 2, r.data.length - 1, 0xfffffffe, 1 << 30]) >>> 0;
      log.push(`zip: record ${r.name} of another size`);
      break;
    }
    default: {
      // Rename, drop or duplicate a record.
      const i = rng.int(records.length);
      const what = rng.int(3);
      if (what === 0) records.splice(i, 1);
      else if (what === 1) records.splice(rng.int(records.length), 0, { ...records[i] });
      else records[i].name = records[i].name.replace(/[^/]+$/, (m) => rng.pick(['0', '1', 'data.pkl', 'byteorder', `${m}x`]));
      log.push(`zip: ${['drop', 'duplicate', 'rename'][what]} record ${i}`);
    }
  }
  const bo = records.find((r) => r.name.endsWith('/byteorder'));
  if (bo && rng.chance(0.05)) bo.data = Buffer.from(rng.pick(['big', 'little', 'middle', '']));
  return writeZip(records);
}

// ---- legacy ---------------------------------------------------------------------------

function mutateLegacy(rng: Rng, b: Buffer, log: string[]): Buffer {
  // magic, protocol, sys_info, the main pickle, the key list, then storages.
  const starts: number[] = [];
  let p = 0;
  for (let k = 0; k < 5; k++) {
    const ops = tokenize(b, p);
    if (!ops.length || ops[ops.length - 1].code !== 0x2e) break;
    starts.push(p);
    p = ops[ops.length - 1].end;
  }
  if (starts.length < 4) return b;
  if (starts.length === 5 && rng.chance(0.15)) {
    // A storage's element count (the int64 after the key list).
    const out = Buffer.from(b);
    if (p + 8 <= out.length) out.writeBigInt64LE(BigInt.asIntN(64, rng.pick(INTERESTING_64) - (rng.chance(0.5) ? 1n : 0n)), p);
    log.push('legacy: first storage count');
    return out;
  }
  const which = rng.chance(0.8) ? 3 : rng.pick(starts.map((_, i) => i));
  log.push(`legacy: pickle ${which}`);
  return mutatePickle(rng, b, starts[which], log);
}

// ---- tar ------------------------------------------------------------------------------

function tarChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

function mutateTar(rng: Rng, b: Buffer, others: Seed[], log: string[]): Buffer {
  const members: { header: number; data: number; size: number; name: string }[] = [];
  for (let p = 0; p + 512 <= b.length; ) {
    const h = b.subarray(p, p + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isFinite(size)) break;
    members.push({ header: p, data: p + 512, size, name: h.toString('latin1', 0, 100).replace(/\0.*$/s, '') });
    p += 512 + Math.ceil(size / 512) * 512;
  }
  const files = members.filter((m) => ['pickle', 'tensors', 'storages', 'sys_info'].includes(m.name));
  if (!files.length) return b;
  const m = rng.pick(files);
  if (rng.chance(0.25)) {
    // A header field (size, type, name), with a correct checksum so it is read.
    const out = Buffer.from(b);
    const h = out.subarray(m.header, m.header + 512);
    const field = rng.int(3);
    if (field === 0)
      h.write(
        `${rng
          .pick([0, 1, m.size - 1, m.size + 1, m.size * 2, 0o77777777777])
          .toString(8)
          .padStart(11, '0')}\0`,
        124,
        'latin1',
      );
    else if (field === 1) h[156] = rng.pick([0x30, 0x35, 0x4c, 0x78, 0x37, 0]);
    else h.write(`${rng.pick(['pickle', 'tensors', 'storages', 'sys_info'])}\0`, 0, 'latin1');
    tarChecksum(h);
    log.push(`tar: header field ${field} of ${m.name}`);
    return out;
  }
  // A member's content: its pickles (storages and tensors hold several, with raw data between).
  const content = b.subarray(m.data, m.data + m.size);
  const starts = [0];
  for (let p = 0, k = 0; k < 8; k++) {
    const ops = tokenize(content, p);
    if (!ops.length || ops[ops.length - 1].code !== 0x2e) break;
    p = ops[ops.length - 1].end;
    if (p < content.length && content[p] === 0x80) starts.push(p);
  }
  const mutated = rng.chance(0.8) ? mutatePickle(rng, content, rng.pick(starts), log) : genericMutation(rng, content, others, log);
  log.push(`tar: content of ${m.name}`);
  // Rewrite the member with its new size and checksum.
  const h = Buffer.from(b.subarray(m.header, m.header + 512));
  h.write(`${mutated.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  tarChecksum(h);
  const padded = Buffer.alloc(Math.ceil(mutated.length / 512) * 512);
  mutated.copy(padded);
  const after = m.data + Math.ceil(m.size / 512) * 512;
  return Buffer.concat([b.subarray(0, m.header), h, padded, b.subarray(after)]);
}

// ---- safetensors ------------------------------------------------------------------------

const ST_DTYPES = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'C64', 'U64', '', 'f32'];

function mutateSafetensors(rng: Rng, b: Buffer, log: string[]): Buffer {
  if (b.length < 8) return b;
  const n = Number(b.readBigUInt64LE(0));
  if (n > b.length - 8) return b;
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(b.toString('utf8', 8, 8 + n)) as Record<string, unknown>;
  } catch {
    return b;
  }
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  if (!names.length) return b;
  const name = rng.pick(names);
  const e = header[name] as { dtype: unknown; shape: unknown[]; data_offsets: unknown[] };
  const weird = (): unknown => rng.pick([0, 1, 2, -1, 1.5, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, null, '3', [], {}, 4096, 65536]);
  switch (rng.int(7)) {
    case 0:
      e.dtype = rng.pick(ST_DTYPES);
      break;
    case 1:
      if (Array.isArray(e.shape) && e.shape.length) e.shape[rng.int(e.shape.length)] = weird();
      else e.shape = [weird()];
      break;
    case 2:
      e.shape = rng.chance(0.5) ? [] : Array.from({ length: rng.int(70) }, () => 1);
      break;
    case 3:
      if (Array.isArray(e.data_offsets)) e.data_offsets[rng.int(2)] = weird();
      break;
    case 4:
      header[`${name}.copy`] = { ...e };
      break; // overlapping data
    case 5:
      delete header[name];
      break;
    default:
      header.__metadata__ = rng.chance(0.5) ? { k: 1 } : rng.pick([null, 'x', { a: 'b' }]);
  }
  log.push(`safetensors: header of '${name}'`);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, b.subarray(8 + n)]);
}

// ---- one input ---------------------------------------------------------------------------

function formatOf(b: Buffer, kind: InputKind): 'zip' | 'legacy' | 'tar' | 'safetensors' | 'other' {
  if (kind === 'safetensors') return 'safetensors';
  if (b.length >= 4 && b.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (b.length >= 262 && b.toString('latin1', 257, 262) === 'ustar') return 'tar';
  if (b[0] === 0x80) return 'legacy';
  return 'other';
}

/** Input number `index` of the run seeded with `seed`. */
export function makeInput(seeds: Seed[], seed: number, index: number): FuzzInput {
  const rng = new Rng(seed, index);
  const s = rng.pick(seeds);
  const log: string[] = [];
  let bytes = s.bytes;
  const rounds = 1 + rng.int(rng.chance(0.2) ? 8 : 3);
  for (let r = 0; r < rounds; r++) {
    const fmt = formatOf(bytes, s.kind);
    if (rng.chance(0.6)) {
      // The format-aware mutators parse what earlier rounds may have broken: when
      // they cannot, a generic mutation takes their place (still deterministic).
      try {
        if (fmt === 'zip') bytes = mutateZip(rng, bytes, log);
        else if (fmt === 'legacy') bytes = mutateLegacy(rng, bytes, log);
        else if (fmt === 'tar') bytes = mutateTar(rng, bytes, seeds, log);
        else if (fmt === 'safetensors') bytes = mutateSafetensors(rng, bytes, log);
        else bytes = genericMutation(rng, bytes, seeds, log);
      } catch {
        bytes = genericMutation(rng, bytes, seeds, log);
      }
    } else {
      bytes = genericMutation(rng, bytes, seeds, log);
    }
  }
  return { index, kind: s.kind, seed: s.name, mutations: log, bytes: bytes === s.bytes ? Buffer.from(bytes) : bytes };
}
