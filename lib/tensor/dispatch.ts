// The runtime of the generated Tensor API (lib/tensor/generated/): picks an
// overload from the JS argument types the way PyTorch's python_arg_parser
// does, converts the arguments and calls the operator through the dispatcher.
// The math and the checks of values (shapes, dims, dtypes) stay in libtorch;
// this only decides which schema a call means and names the argument when a
// value has the wrong JS type.
import { native, op, type Handle, type OpHandle } from '../native.js';
import { dtypeCode, normalizeDtype, type DType } from './dtype.js';

/**
 * Parameter kinds, from the schema's types: T Tensor, TL Tensor[], OTL Tensor?[],
 * S Scalar, i int, I int[], f float, F float[], b bool, B bool[], s str,
 * d ScalarType, L Layout, M MemoryFormat, D Device, G Generator.
 */
export type Kind = 'T' | 'TL' | 'OTL' | 'S' | 'i' | 'I' | 'f' | 'F' | 'b' | 'B' | 's' | 'd' | 'L' | 'M' | 'D' | 'G';
/** A `torch.memory_format` by its Python name. */
export type MemoryFormat = 'contiguous_format' | 'preserve_format' | 'channels_last' | 'channels_last_3d';
/** A `torch.Generator` (lib/generator.ts, above this level): anything carrying a native generator handle. */
export interface GeneratorLike {
  readonly _handle: unknown;
}

/** Flag bits of a parameter. */
export const OPTIONAL = 1; // the type is optional: null passes None
export const DEFAULTED = 2; // has a default: may be left out
export const KWONLY = 4; // keyword-only in Python: only in the options object
export const SIZED = 8; // int[N]/float[N]: a single number is repeated

/** A parameter: [Python name, camelCase name, kind, flags]. */
export type Param = [string, string, Kind, number];
/** What an overload returns: T a new tensor, self the tensor it was called on, TL a list, x a plain value, n nothing, or a tuple of those. */
export type Ret = 'T' | 'self' | 'TL' | 'x' | 'n' | Ret[];

/** One overload as the generator wrote it (arguments in the newest release's schema order). */
export interface Overload {
  /** aten name */
  o: string;
  /** overload name */
  v: string;
  /** parameters; for methods, `self` is left out and sits at position s */
  p: Param[];
  /** position of self in the schema (-1: a function variant) */
  s: number;
  r: Ret;
  /** the first release that has it, when an older one supported here lacks it */
  since?: string;
  /** releases whose schema orders the arguments differently: their argument names in order */
  alt?: Record<string, string[]>;
}

/** An argument of an operator schema as the addon lists it: [name, type, kwargOnly, default (printed) | null, writes]. */
export type SchemaArg = [string, string, boolean, string | null, boolean];
/** An operator schema as the addon lists it (`atenSchemas()`): [name, overload, args, returns: [type, writes][]]. */
export type Schema = [string, string, SchemaArg[], [string, boolean][]];

const BASE_KINDS: Record<string, Kind> = {
  Tensor: 'T',
  'List[Tensor]': 'TL',
  'List[Optional[Tensor]]': 'OTL',
  number: 'S',
  int: 'i',
  'List[int]': 'I',
  float: 'f',
  'List[float]': 'F',
  bool: 'b',
  'List[bool]': 'B',
  str: 's',
  ScalarType: 'd',
  Layout: 'L',
  MemoryFormat: 'M',
  Device: 'D',
  Generator: 'G',
};
// Named-tensor (Dimname) arguments print as str: recognised by their names.
const DIMNAME_ARGS = new Set(['dim', 'dims', 'dim0', 'dim1', 'names', 'name', 'outdim', 'other', 'order', 'start_dim', 'end_dim']);

const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * An operator schema as an {@link Overload} (`method`: self left out, for a
 * Tensor method), or why it cannot be called from JS. One implementation for
 * the generator (scripts/gen-tensor-api.ts) and for `ops.aten`.
 */
export function fromSchema(schema: Schema, method: boolean): Overload | string {
  const [name, overload, args] = schema;
  if (args.some((a, i) => a[4] && !(i === 0 && a[0] === 'self'))) return 'out= variant (writes an argument other than self)';
  if (/dimname|Dimname|names?$/.test(overload)) return 'named tensors (Dimname)';
  const params: Param[] = [];
  for (const a of args) {
    let t = a[1];
    let flags = (a[3] !== null ? DEFAULTED : 0) | (a[2] ? KWONLY : 0);
    const sized = /\[\d+\]$/.exec(t);
    if (sized) {
      t = t.slice(0, sized.index);
      flags |= SIZED;
    }
    const opt = /^Optional\[(.*)\]$/.exec(t);
    if (opt) {
      t = opt[1];
      flags |= OPTIONAL;
    }
    let kind: Kind | undefined = BASE_KINDS[t];
    let why = kind === undefined ? `argument '${a[0]}' has type ${a[1]}` : '';
    if ((kind === 's' || t === 'List[str]') && DIMNAME_ARGS.has(a[0])) {
      kind = undefined;
      why = `argument '${a[0]}' is a Dimname (named tensors)`;
    }
    if (kind === undefined) {
      // A defaulted argument the JS side cannot pass keeps its default.
      if (a[3] !== null) continue;
      return `unsupported argument type: ${why}`;
    }
    params.push([a[0], camel(a[0]), kind, flags]);
  }
  const selfIndex = args.findIndex((a) => a[0] === 'self' && a[1] === 'Tensor');
  const one = (r: [string, boolean]): Ret | string => {
    if (r[1]) return selfIndex >= 0 && args[selfIndex][4] ? 'self' : 'unsupported return: an argument it writes other than self';
    if (r[0] === 'Tensor') return 'T';
    if (r[0] === 'List[Tensor]') return 'TL';
    if (['int', 'float', 'bool', 'number', 'List[int]', 'str'].includes(r[0])) return 'x';
    return `unsupported return: ${r[0]}`;
  };
  const rs = schema[3].map(one);
  // Return codes are at most 4 letters; anything longer is the reason it cannot be returned.
  const bad = rs.find((r) => typeof r === 'string' && r.length > 4);
  if (bad) return bad as string;
  const r: Ret = rs.length === 0 ? 'n' : rs.length === 1 ? (rs[0] as Ret) : (rs as Ret[]);
  if (method) {
    if (selfIndex < 0) return 'no Tensor self argument';
    return { o: name, v: overload, p: params.filter((p) => p[0] !== 'self'), s: selfIndex, r };
  }
  return { o: name, v: overload, p: params, s: -1, r };
}

/** The Tensor class, registered by tensor.ts (which imports this file, so this file cannot import it). */
interface TensorLike {
  readonly _h: Handle;
}
let TensorClass: (new (h: Handle) => TensorLike) | undefined;
let release = '';
/** @internal tensor.ts registers its class and the running libtorch release (major.minor). */
export function registerTensorClass(cls: new (h: Handle) => TensorLike): void {
  TensorClass = cls;
  release = native.torchVersion().split('.').slice(0, 2).join('.');
}
const isTensor = (x: unknown): x is TensorLike => TensorClass !== undefined && x instanceof TensorClass;

const MEMORY_FORMATS: Record<string, number> = { contiguous_format: 0, preserve_format: 1, channels_last: 2, channels_last_3d: 3 };
const LAYOUTS: Record<string, number> = { strided: 0 };

const isInt = (x: unknown): boolean => (typeof x === 'number' && Number.isInteger(x)) || typeof x === 'bigint';
const isNum = (x: unknown): boolean => typeof x === 'number' || typeof x === 'bigint';
const everyOf = (x: unknown, f: (e: unknown) => boolean): boolean => Array.isArray(x) && x.every(f);
const isDtype = (x: unknown): boolean => {
  if (typeof x !== 'string') return false;
  try {
    normalizeDtype(x as DType);
    return true;
  } catch {
    return false;
  }
};

/** Whether a JS value has the JS type a parameter takes (`loose`: a number for a Tensor, as Python's wrapped numbers). */
function fits(kind: Kind, flags: number, x: unknown, loose: boolean): boolean {
  if (x === null) return (flags & OPTIONAL) !== 0;
  switch (kind) {
    case 'T':
      return isTensor(x) || (loose && (isNum(x) || typeof x === 'boolean'));
    case 'TL':
      return everyOf(x, isTensor);
    case 'OTL':
      return everyOf(x, (e) => e === null || isTensor(e));
    case 'S':
      return isNum(x) || typeof x === 'boolean';
    case 'i':
      return isInt(x);
    case 'I':
      return everyOf(x, isInt) || ((flags & SIZED) !== 0 && isInt(x));
    case 'f':
      return typeof x === 'number';
    case 'F':
      return everyOf(x, (e) => typeof e === 'number') || ((flags & SIZED) !== 0 && typeof x === 'number');
    case 'b':
      return typeof x === 'boolean';
    case 'B':
      return everyOf(x, (e) => typeof e === 'boolean');
    case 's':
      return typeof x === 'string';
    case 'd':
      return isDtype(x);
    case 'L':
      return typeof x === 'string' && Object.hasOwn(LAYOUTS, x);
    case 'M':
      return typeof x === 'string' && Object.hasOwn(MEMORY_FORMATS, x);
    case 'D':
      return typeof x === 'string';
    case 'G':
      return typeof x === 'object' && x !== null && '_handle' in x;
  }
}

/** The addon's form of a value that fits its parameter. */
function convert(kind: Kind, x: unknown): unknown {
  if (x === null || x === undefined) return x;
  switch (kind) {
    case 'T':
      // A number where a Tensor goes: [x] asks the addon for a wrapped-number tensor.
      return isTensor(x) ? x._h : [x];
    case 'TL':
      return (x as TensorLike[]).map((t) => t._h);
    case 'OTL':
      return (x as (TensorLike | null)[]).map((t) => (t === null ? null : t._h));
    case 'd':
      return dtypeCode(normalizeDtype(x as DType));
    case 'L':
      return LAYOUTS[x as string];
    case 'M':
      return MEMORY_FORMATS[x as string];
    case 'G':
      return (x as { _handle: unknown })._handle;
    default:
      return x;
  }
}

const TYPE_NAMES: Record<Kind, string> = {
  T: 'Tensor',
  TL: 'Tensor[]',
  OTL: '(Tensor | null)[]',
  S: 'number',
  i: 'int',
  I: 'int[]',
  f: 'float',
  F: 'float[]',
  b: 'boolean',
  B: 'boolean[]',
  s: 'string',
  d: 'DType',
  L: 'Layout',
  M: 'MemoryFormat',
  D: 'Device',
  G: 'Generator',
};
function jsType(x: unknown): string {
  if (isTensor(x)) return 'Tensor';
  if (Array.isArray(x)) return `[${x.map(jsType).join(', ')}]`;
  if (x === null) return 'null';
  if (typeof x === 'number') return Number.isInteger(x) ? 'int' : 'float';
  if (typeof x === 'object') return `{${Object.keys(x).join(', ')}}`;
  return typeof x;
}
function signature(ov: Overload): string {
  const pos = ov.p.filter((p) => !(p[3] & KWONLY));
  const kw = ov.p.filter((p) => p[3] & KWONLY);
  const show = (p: Param) => `${TYPE_NAMES[p[2]]}${p[3] & OPTIONAL ? '?' : ''} ${p[1]}${p[3] & DEFAULTED ? '?' : ''}`;
  return `(${[...pos.map(show), ...(kw.length ? [`{${kw.map(show).join(', ')}}`] : [])].join(', ')})`;
}

const isOptions = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x) && !isTensor(x) && !('_handle' in x);

const FAIL = '';
/** While resolving, a misfit is only FAIL: messages are built when one is thrown. */
function no(explain: boolean, why: () => string): string {
  return explain ? why() : FAIL;
}

/** What a call needs of an overload, worked out on its first call: its operator handle and argument positions. */
interface Compiled {
  handle: OpHandle;
  /** each parameter's position in the running release's schema (-1: not in it) */
  pos: number[];
  selfPos: number;
  required: number;
  /** A compiled check-and-call for the plainest form of the call, or null (see fastPath). */
  fast: ((self: TensorLike | undefined, args: unknown[]) => unknown) | null;
}

/** What a fast path returns when the call is not its plain form (the general path decides). */
const NOPE = Symbol('not the plain form');
// Kinds whose check and conversion a fast path inlines.
const FAST_CHECKS: Partial<Record<Kind, (x: string) => string>> = {
  T: (x) => `${x} instanceof T`,
  S: (x) => `(typeof ${x} === 'number' || typeof ${x} === 'boolean')`,
  i: (x) => `Number.isInteger(${x})`,
  f: (x) => `typeof ${x} === 'number'`,
  b: (x) => `typeof ${x} === 'boolean'`,
};

/**
 * Compiles (once per overload) the call with exactly its required positional arguments
 * and nothing else, the common form (\`x.sin()\`, \`x.gather(1, idx)\`, \`torch.add(a, b)\`):
 * one function with the checks of the strict pass inlined, the arguments in the schema's
 * positions and the result wrapped, so that such a call costs what a hand-written method does.
 * It accepts a subset of what bind() accepts strictly, so trying it first changes no choice.
 */
function fastPath(ov: Prepared, c: Omit<Compiled, 'fast'>): Compiled['fast'] {
  const required = ov.p.filter((p) => !(p[3] & (DEFAULTED | KWONLY)));
  if (ov.p.slice(0, required.length).some((p) => p[3] & (DEFAULTED | KWONLY))) return null;
  // A required keyword-only argument (scatter.reduce's reduce) is never in the plain form.
  if (ov.p.some((p) => p[3] & KWONLY && !(p[3] & DEFAULTED))) return null;
  if (!required.every((p) => FAST_CHECKS[p[2]] !== undefined)) return null;
  if (ov.r !== 'T' && ov.r !== 'x' && !(ov.r === 'self' && ov.s >= 0)) return null;
  const slots: string[] = [];
  if (ov.s >= 0) slots[c.selfPos] = 'self._h';
  required.forEach((p, j) => {
    slots[c.pos[j]] = p[2] === 'T' ? `a[${j}]._h` : `a[${j}]`;
  });
  for (let i = 0; i < slots.length; i++) if (slots[i] === undefined) return null;
  const checks = required.map((p, j) => `if (!(${(FAST_CHECKS[p[2]] as (x: string) => string)(`a[${j}]`)})) return NOPE;`).join('\n');
  const call = `call(h${slots.map((x) => `, ${x}`).join('')})`;
  const ret = ov.r === 'T' ? `new T(${call})` : ov.r === 'self' ? `(${call}, self)` : call;
  const body = `return function fast(self, a) {\nif (a.length !== ${required.length}) return NOPE;\n${checks}\nreturn ${ret};\n};`;
  return new Function('T', 'call', 'h', 'NOPE', body)(TensorClass, native.call, c.handle, NOPE);
}
/**
 * An overload as calls use it: the generator's plain object copied into one class, so that
 * every overload has the same hidden class (the generated tables' objects differ in their
 * optional fields, which would make the property reads on the hot path megamorphic), with
 * room for what its first call works out.
 */
class Prepared implements Overload {
  o: string;
  v: string;
  p: Param[];
  s: number;
  r: Ret;
  since: string | undefined;
  alt: Record<string, string[]> | undefined;
  c: Compiled | undefined = undefined;
  constructor(ov: Overload) {
    this.o = ov.o;
    this.v = ov.v;
    this.p = ov.p;
    this.s = ov.s;
    this.r = ov.r;
    this.since = ov.since;
    this.alt = ov.alt;
  }
}

function compile(ov: Prepared, name: string): Compiled {
  let c = ov.c;
  if (c !== undefined) return c;
  if (ov.since !== undefined && compareRelease(release, ov.since) < 0) {
    throw new Error(`${name}(): aten::${ov.o}${ov.v ? `.${ov.v}` : ''} arrived in libtorch ${ov.since}; the running libtorch is ${native.torchVersion()}`);
  }
  const params = ov.p;
  const names = ov.alt?.[release];
  const all = ov.s >= 0 ? [...params.slice(0, ov.s).map((p) => p[0]), 'self', ...params.slice(ov.s).map((p) => p[0])] : params.map((p) => p[0]);
  const target = names ?? all;
  const base = {
    handle: op(`aten::${ov.o}`, ov.v),
    pos: params.map((p) => target.indexOf(p[0])),
    selfPos: ov.s >= 0 ? target.indexOf('self') : -1,
    required: params.filter((p) => !(p[3] & DEFAULTED)).length,
  };
  c = { ...base, fast: fastPath(ov, base) };
  ov.c = c;
  return c;
}

function put(out: unknown[], c: Compiled, ov: Overload, j: number, x: unknown): void {
  if (c.pos[j] < 0) throw new TypeError(`${ov.o}(): argument '${ov.p[j][1]}' is not in libtorch ${release}'s schema of aten::${ov.o}.${ov.v}`);
  out[c.pos[j]] = convert(ov.p[j][2], x);
}

/**
 * The native argument list (in the running schema's order) when `args` fit
 * overload `ov`, else why they do not (for the error message).
 */
function bind(ov: Prepared, name: string, self: TensorLike | undefined, args: unknown[], loose: boolean, explain = false): unknown[] | string {
  const params = ov.p;
  let given = args.length;
  let opts: Record<string, unknown> | undefined;
  if (given > 0 && isOptions(args[given - 1])) {
    opts = args[given - 1] as Record<string, unknown>;
    given--;
  }
  // Check first, convert after: a failed overload must not resolve its operator.
  let k = 0;
  let packed: unknown[] | undefined;
  let requiredGiven = 0;
  for (let i = 0; i < given; i++) {
    const p = params[k];
    if (p === undefined || p[3] & KWONLY) return no(explain, () => `takes at most ${k} positional arguments`);
    const x = args[i];
    // Python's *args for a last list parameter: x.repeat(2, 3), einsum('ij->i', a, b); only
    // on the second pass, so that x.hsplit(3) means hsplit.int, not hsplit.array([3]).
    if (loose && (p[2] === 'I' || p[2] === 'TL') && !Array.isArray(x) && (params[k + 1] === undefined || params[k + 1][3] & KWONLY)) {
      packed = args.slice(i, given);
      if (!fits(p[2], 0, packed, false)) return no(explain, () => `argument '${p[1]}' (position ${i + 1}) must be ${TYPE_NAMES[p[2]]}, not ${jsType(x)}`);
      if (!(p[3] & DEFAULTED)) requiredGiven++;
      k++;
      break;
    }
    if (x === undefined) {
      if (!(p[3] & DEFAULTED)) return no(explain, () => `missing required argument '${p[1]}'`);
    } else {
      if (!fits(p[2], p[3], x, loose))
        return no(explain, () => `argument '${p[1]}' (position ${i + 1}) must be ${TYPE_NAMES[p[2]]}${p[3] & OPTIONAL ? ' or null' : ''}, not ${jsType(x)}`);
      if (!(p[3] & DEFAULTED)) requiredGiven++;
    }
    k++;
  }
  let named: number[] | undefined;
  if (opts !== undefined) {
    named = [];
    for (const key of Object.keys(opts)) {
      // As in Python, any argument may be given by name.
      const j = params.findIndex((p) => p[1] === key);
      if (j < 0) return no(explain, () => `got an unexpected keyword argument '${key}'`);
      if (j < k && args[j] !== undefined) return no(explain, () => `got multiple values for argument '${key}'`);
      const x = opts[key];
      if (x === undefined) continue;
      if (!fits(params[j][2], params[j][3], x, loose)) {
        return no(explain, () => `argument '${key}' must be ${TYPE_NAMES[params[j][2]]}${params[j][3] & OPTIONAL ? ' or null' : ''}, not ${jsType(x)}`);
      }
      if (!(params[j][3] & DEFAULTED)) requiredGiven++;
      named.push(j);
    }
  }
  const c = compile(ov, name);
  if (requiredGiven < c.required) {
    const missing = params.findIndex((p, j) => !(p[3] & DEFAULTED) && (j >= k || args[j] === undefined) && !named?.includes(j));
    return no(explain, () => `missing required argument '${params[missing][1]}'`);
  }
  const out: unknown[] = [];
  if (self !== undefined) out[c.selfPos] = self._h;
  const last = packed === undefined ? k : k - 1;
  for (let j = 0; j < last; j++) if (args[j] !== undefined) put(out, c, ov, j, args[j]);
  if (packed !== undefined) put(out, c, ov, last, packed);
  if (named !== undefined) for (const j of named) put(out, c, ov, j, (opts as Record<string, unknown>)[params[j][1]]);
  return out;
}

function compareRelease(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}

function result(r: Ret, out: unknown, self: unknown, args: unknown[]): unknown {
  if (r === 'T') return new (TensorClass as new (h: Handle) => TensorLike)(out as Handle);
  // The tensor changed in place: the very object passed (a second wrapper on its handle would free it twice).
  if (r === 'self') return self ?? args.find((a) => isTensor(a) && a._h === out);
  if (r === 'TL') return (out as Handle[]).map((h) => new (TensorClass as new (h: Handle) => TensorLike)(h));
  if (Array.isArray(r)) return r.map((rk, i) => result(rk, (out as unknown[])[i], self, args));
  if (r === 'n') return undefined;
  return out;
}

/**
 * Calls the overload of a generated method or function that fits `args`.
 * `self` is the tensor of a method call (undefined for a function); `name` is
 * the public name, for messages.
 */
export function invoke(name: string, table: readonly Overload[], self: TensorLike | undefined, args: unknown[]): unknown {
  // The first call of a name turns its table's entries into Prepared ones, in place.
  if (!(table[0] instanceof Prepared)) {
    const t = table as Overload[];
    for (let i = 0; i < t.length; i++) t[i] = new Prepared(t[i]);
  }
  const overloads = table as readonly Prepared[];
  let bound: unknown[] | string = '';
  let ov: Prepared | undefined;
  // Strict first (a Tensor parameter takes a Tensor), then loose (a number
  // becomes a wrapped-number tensor), as PyTorch tries `x.pow(2)` on the Scalar overload first.
  for (let pass = 0; pass < 2 && ov === undefined; pass++) {
    for (const candidate of overloads) {
      if (pass === 0) {
        const fast = candidate.c?.fast;
        if (fast) {
          const r = fast(self, args);
          if (r !== NOPE) return r;
        }
      }
      const b = bind(candidate, name, self, args, pass === 1);
      if (typeof b !== 'string') {
        ov = candidate;
        bound = b;
        break;
      }
    }
  }
  if (ov === undefined) {
    if (overloads.length === 1) bound = bind(overloads[0], name, self, args, false, true);
    if (overloads.length === 1) throw new TypeError(`${name}(): ${bound}`);
    throw new TypeError(
      `${name}() received an invalid combination of arguments - got (${args.map(jsType).join(', ')}), but expected one of:\n${overloads.map((o) => ` * ${signature(o)}`).join('\n')}`,
    );
  }
  const h = (ov.c as Compiled).handle;
  const b = bound as unknown[];
  // Fixed arities avoid a spread on the common short calls.
  const out =
    b.length === 1
      ? native.call(h, b[0])
      : b.length === 2
        ? native.call(h, b[0], b[1])
        : b.length === 3
          ? native.call(h, b[0], b[1], b[2])
          : native.call(h, ...b);
  return result(ov.r, out, self, args);
}
