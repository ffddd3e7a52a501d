// A faithful port of PyTorch 1.13's torch/_tensor_str.py (`repr(tensor)`) for
// strided, dense, real-valued tensors, with the default print options.
// Self-contained on purpose: it works on plain host values and knows nothing of
// the native addon, so it can be tested against Python without libtorch.

/** Element types `formatTensor` understands, named as in PyTorch. */
export type FormatDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** What `formatTensor` needs to know about a tensor. */
export interface FormatInput {
  /** The tensor's sizes; `[]` for a 0-dim tensor. */
  shape: number[];
  dtype: FormatDType;
  /** All elements, row-major and contiguous (half types already widened to float). */
  values: ArrayLike<number | bigint | boolean>;
  /** `'cpu'` (the default, not printed) or e.g. `'cuda:0'`. */
  device?: string;
  /** Printed as `requires_grad=True` only when true and there is no `gradFn`. */
  requiresGrad?: boolean;
  /** The autograd node's name, e.g. `'AddBackward0'`. */
  gradFn?: string | null;
}

// PyTorch's default print options (torch._tensor_str.PRINT_OPTS).
const PRECISION = 4;
const THRESHOLD = 1000;
const EDGEITEMS = 3;
const LINEWIDTH = 80;

const PREFIX = 'tensor(';

// ---------------------------------------------------------------------------
// Exact decimal formatting of doubles, as Python's '{:.Nf}' / '{:.Ne}' do it.
// JS's toFixed/toExponential round exact ties upwards while Python rounds them
// to even (e.g. 0.03125 → '0.0312'), and toFixed switches to exponent form past
// 1e21, so we expand the double exactly with BigInt and round it ourselves.

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** |x| as digits * 10^-scale, exactly (x finite). */
function exactDecimal(x: number): { digits: bigint; scale: number } {
  f64[0] = Math.abs(x);
  const bits = u64[0];
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & 0xfffffffffffffn;
  let exp2: number;
  if (biased === 0) {
    exp2 = -1074; // subnormal
  } else {
    mant |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (mant === 0n) return { digits: 0n, scale: 0 };
  if (exp2 >= 0) return { digits: mant << BigInt(exp2), scale: 0 };
  // m * 2^-k = m * 5^k / 10^k
  return { digits: mant * 5n ** BigInt(-exp2), scale: -exp2 };
}

/** digits / 10^drop, rounded half to even. */
function roundHalfEven(digits: bigint, drop: number): bigint {
  if (drop <= 0) return digits * 10n ** BigInt(-drop);
  const div = 10n ** BigInt(drop);
  let q = digits / div;
  const r = digits % div;
  const half = div / 2n;
  if (r > half || (r === half && (q & 1n) === 1n)) q += 1n;
  return q;
}

function signOf(x: number): string {
  return x < 0 || Object.is(x, -0) ? '-' : '';
}

/** Python's `'{:.{prec}f}'.format(x)`. */
function pyFixed(x: number, prec: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  const { digits, scale } = exactDecimal(x);
  let s = roundHalfEven(digits, scale - prec).toString();
  if (prec > 0) {
    s = s.padStart(prec + 1, '0');
    s = `${s.slice(0, s.length - prec)}.${s.slice(s.length - prec)}`;
  }
  return signOf(x) + s;
}

/** Python's `'{:.{prec}e}'.format(x)`: exponent signed, at least two digits. */
function pyExp(x: number, prec: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  const { digits, scale } = exactDecimal(x);
  let mant: string;
  let exp10: number;
  if (digits === 0n) {
    mant = '0'.repeat(prec + 1);
    exp10 = 0;
  } else {
    const len = digits.toString().length;
    exp10 = len - 1 - scale;
    let q = roundHalfEven(digits, len - (prec + 1));
    if (q === 10n ** BigInt(prec + 1)) {
      // Rounding carried into a new digit (9.99995 → 10.0000): renormalise.
      q /= 10n;
      exp10 += 1;
    }
    mant = q.toString();
  }
  const m = prec > 0 ? `${mant[0]}.${mant.slice(1)}` : mant;
  const e = `${exp10 < 0 ? '-' : '+'}${String(Math.abs(exp10)).padStart(2, '0')}`;
  return `${signOf(x)}${m}e${e}`;
}

// ---------------------------------------------------------------------------
// Element values

const isFloating = (d: FormatDType): boolean => d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';

function toFloat(v: number | bigint | boolean, dtype: FormatDType): number {
  const x = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
  // The tensor holds float32 (half types are widened to float32 before printing),
  // so round any double that was handed in the way the tensor would have stored it.
  return dtype === 'float64' ? x : Math.fround(x);
}

/** Python's `'{}'.format(v)` for an element of an integer or bool tensor. */
function intString(v: number | bigint | boolean, dtype: FormatDType): string {
  if (dtype === 'bool') return (typeof v === 'bigint' ? v !== 0n : Boolean(v)) ? 'True' : 'False';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? '1' : '0';
  // BigInt avoids JS's exponent form for magnitudes ≥ 1e21.
  return Number.isFinite(v) ? BigInt(Math.trunc(v)).toString() : String(v);
}

// ---------------------------------------------------------------------------
// _Formatter

interface Formatter {
  width: number;
  format(v: number | bigint | boolean): string;
}

function makeFormatter(dtype: FormatDType, values: ArrayLike<number | bigint | boolean>, indices: number[]): Formatter {
  let maxWidth = 1;
  const pad = (s: string): string => (s.length < maxWidth ? ' '.repeat(maxWidth - s.length) + s : s);

  if (!isFloating(dtype)) {
    // Integer/bool widths count every element, zeros included.
    for (const i of indices) maxWidth = Math.max(maxWidth, intString(values[i], dtype).length);
    return { width: maxWidth, format: (v) => pad(intString(v, dtype)) };
  }

  // Floats: only nonzero finite values decide the mode and the width.
  const nz: number[] = [];
  for (const i of indices) {
    const x = toFloat(values[i], dtype);
    if (Number.isFinite(x) && x !== 0) nz.push(x);
  }
  let intMode = true;
  let sciMode = false;
  if (nz.length > 0) {
    let min = Infinity;
    let max = 0;
    for (const x of nz) {
      const a = Math.abs(x);
      if (a < min) min = a;
      if (a > max) max = a;
      if (x !== Math.ceil(x)) intMode = false;
    }
    // PyTorch does this arithmetic in double, as JS does.
    if (intMode) {
      if (max / min > 1000.0 || max > 1.0e8) {
        sciMode = true;
        for (const x of nz) maxWidth = Math.max(maxWidth, pyExp(x, PRECISION).length);
      } else {
        // +1 for the trailing '.' that marks an integer-valued float.
        for (const x of nz) maxWidth = Math.max(maxWidth, pyFixed(x, 0).length + 1);
      }
    } else if (max / min > 1000.0 || max > 1.0e8 || min < 1.0e-4) {
      sciMode = true;
      for (const x of nz) maxWidth = Math.max(maxWidth, pyExp(x, PRECISION).length);
    } else {
      for (const x of nz) maxWidth = Math.max(maxWidth, pyFixed(x, PRECISION).length);
    }
  }

  const format = (v: number | bigint | boolean): string => {
    const x = toFloat(v, dtype);
    if (sciMode) return pad(pyExp(x, PRECISION));
    if (intMode) return pad(pyFixed(x, 0) + (Number.isFinite(x) ? '.' : ''));
    return pad(pyFixed(x, PRECISION));
  };
  return { width: maxWidth, format };
}

// ---------------------------------------------------------------------------
// Layout

function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/** Indices shown along one dimension: all, or the edge items when summarizing. */
function shownIndices(size: number, summarize: boolean): { head: number[]; tail: number[] | null } {
  if (summarize && size > 2 * EDGEITEMS) {
    const head = Array.from({ length: EDGEITEMS }, (_, i) => i);
    const tail = Array.from({ length: EDGEITEMS }, (_, i) => size - EDGEITEMS + i);
    return { head, tail };
  }
  return { head: Array.from({ length: size }, (_, i) => i), tail: null };
}

/** Flat indices of get_summarized_data(self): the elements that will be printed. */
function summarizedIndices(shape: number[], strides: number[], summarize: boolean): number[] {
  const out: number[] = [];
  const walk = (dim: number, offset: number): void => {
    if (dim === shape.length) {
      out.push(offset);
      return;
    }
    const { head, tail } = shownIndices(shape[dim], summarize);
    for (const i of head.concat(tail ?? [])) walk(dim + 1, offset + i * strides[dim]);
  };
  walk(0, 0);
  return out;
}

function vectorStr(input: FormatInput, offset: number, size: number, indent: number, summarize: boolean, fmt: Formatter): string {
  // element length includes the ", " separator
  const elementLength = fmt.width + 2;
  const perLine = Math.max(1, Math.floor((LINEWIDTH - indent) / elementLength));
  const { head, tail } = shownIndices(size, summarize);
  const data = head.map((i) => fmt.format(input.values[offset + i]));
  if (tail) {
    data.push(' ...');
    for (const i of tail) data.push(fmt.format(input.values[offset + i]));
  }
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += perLine) lines.push(data.slice(i, i + perLine).join(', '));
  return `[${lines.join(`,\n${' '.repeat(indent + 1)}`)}]`;
}

function tensorStrWithFormatter(
  input: FormatInput,
  strides: number[],
  dim: number,
  offset: number,
  indent: number,
  summarize: boolean,
  fmt: Formatter,
): string {
  const shape = input.shape;
  const rank = shape.length - dim;
  if (rank === 0) return fmt.format(input.values[offset]);
  if (rank === 1) return vectorStr(input, offset, shape[dim], indent, summarize, fmt);
  const sub = (i: number): string => tensorStrWithFormatter(input, strides, dim + 1, offset + i * strides[dim], indent + 1, summarize, fmt);
  const { head, tail } = shownIndices(shape[dim], summarize);
  const slices = head.map(sub);
  if (tail) slices.push('...', ...tail.map(sub));
  // Blank lines between blocks grow with the block's rank, as in PyTorch.
  return `[${slices.join(`,${'\n'.repeat(rank - 1)}${' '.repeat(indent + 1)}`)}]`;
}

function tensorStr(input: FormatInput, numel: number, indent: number): string {
  const summarize = numel > THRESHOLD;
  const strides = stridesOf(input.shape);
  // The formatter sees only the summarized data, so hidden values don't widen columns.
  const fmt = makeFormatter(input.dtype, input.values, summarizedIndices(input.shape, strides, summarize));
  return tensorStrWithFormatter(input, strides, 0, 0, indent, summarize, fmt);
}

function addSuffixes(tensorString: string, suffixes: string[], indent: number): string {
  const parts = [tensorString];
  // Ported as is, including PyTorch's off-by-two in measuring the last line.
  let lastLineLen = tensorString.length - tensorString.lastIndexOf('\n') + 1;
  for (const suffix of suffixes) {
    if (lastLineLen + suffix.length + 2 > LINEWIDTH) {
      parts.push(`,\n${' '.repeat(indent)}${suffix}`);
      lastLineLen = indent + suffix.length;
    } else {
      parts.push(`, ${suffix}`);
      lastLineLen += suffix.length + 2;
    }
  }
  parts.push(')');
  return parts.join('');
}

/** Python's str(tuple(shape)). */
function tupleStr(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/**
 * Renders a tensor exactly as PyTorch 1.13's `repr(tensor)` does with the default
 * print options (precision 4, threshold 1000, edge items 3, line width 80, automatic
 * scientific notation).
 *
 * Covers the int/fixed/scientific float modes, nan/inf, summarization with `...`,
 * line wrapping, 0-dim and empty tensors, and the `device=`, `dtype=`,
 * `grad_fn=`/`requires_grad=` suffixes (float32, int64 and bool are the implicit
 * dtypes; for an empty tensor every dtype but float32 is shown, plus its size
 * unless it is 1-D).
 *
 * @example
 * formatTensor({ shape: [2], dtype: 'float32', values: [1, 2.5] }) // 'tensor([1.0000, 2.5000])'
 */
export function formatTensor(input: FormatInput): string {
  const { shape, dtype } = input;
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel > 0 && input.values.length < numel) {
    throw new RangeError(`formatTensor: shape [${shape.join(', ')}] needs ${numel} values, got ${input.values.length}`);
  }
  const indent = PREFIX.length;
  const suffixes: string[] = [];
  const device = input.device ?? 'cpu';
  if (device !== 'cpu') suffixes.push(`device='${device}'`);

  let body: string;
  if (numel === 0) {
    // Empty tensors: no elements to infer the dtype from, so only float32 is implicit.
    if (shape.length !== 1) suffixes.push(`size=${tupleStr(shape)}`);
    if (dtype !== 'float32') suffixes.push(`dtype=torch.${dtype}`);
    body = '[]';
  } else {
    if (dtype !== 'float32' && dtype !== 'int64' && dtype !== 'bool') suffixes.push(`dtype=torch.${dtype}`);
    body = tensorStr(input, numel, indent);
  }

  if (input.gradFn) suffixes.push(`grad_fn=<${input.gradFn}>`);
  else if (input.requiresGrad) suffixes.push('requires_grad=True');

  return addSuffixes(PREFIX + body, suffixes, indent);
}
