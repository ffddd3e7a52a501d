// Cases for the generated Tensor API against the live oracle (test/tensor-api.test.ts,
// scripts/fixtures/tensor_api.py). Each case is data, so the Python side and the
// TypeScript side make the very same call: Python `x.name(*args, **kwargs)`, TypeScript
// `x.camelName(...args, { camelKwargs })`. Families × dtypes × shapes × options.
import * as torch from '../lib/index.js';
import type { Tensor } from '../lib/index.js';

/** An input: [kind, shape, ...]: randn (float32), f64 (float64), pos (> 0.1), unit ((-0.9, 0.9)), int [lo, hi), bool. */
export type InputSpec = [string, number[], ...number[]];
/** An argument: a literal, an input `{ t: i }`, a dtype `{ dtype }`, or a list of them. */
export type Arg = number | boolean | string | null | { t: number } | { dtype: string } | Arg[];
export interface ApiCase {
  name: string;
  inputs: InputSpec[];
  /** m: method of input 0; m_: the same on a clone (in-place); f: torch.* function. */
  call: ['m' | 'm_' | 'f', string, Arg[], Record<string, Arg>];
  grad: boolean;
}

const R = (...s: number[]): InputSpec => ['randn', s];
const D = (...s: number[]): InputSpec => ['f64', s];
const P = (...s: number[]): InputSpec => ['pos', s];
const U = (...s: number[]): InputSpec => ['unit', s];
const I = (lo: number, hi: number, ...s: number[]): InputSpec => ['int', s, lo, hi];
const B = (...s: number[]): InputSpec => ['bool', s];
const t = (i: number) => ({ t: i });

const cases: ApiCase[] = [];
function add(name: string, inputs: InputSpec[], call: ApiCase['call'], grad = true): void {
  cases.push({ name, inputs, call, grad });
}

// Elementwise unary: float32 and float64 methods, the in-place method, the torch.* function.
const UNARY: [string, (...s: number[]) => InputSpec, boolean][] = [
  ['sin', R, true],
  ['cos', R, true],
  ['tan', U, true],
  ['asin', U, true],
  ['acos', U, true],
  ['atan', R, true],
  ['sinh', R, true],
  ['cosh', R, true],
  ['asinh', R, true],
  ['atanh', U, true],
  ['exp2', R, true],
  ['expm1', R, true],
  ['log2', P, true],
  ['log10', P, true],
  ['log1p', P, true],
  ['rsqrt', P, true],
  ['square', R, true],
  ['reciprocal', P, true],
  ['erf', R, true],
  ['erfc', R, true],
  ['erfinv', U, true],
  ['lgamma', P, true],
  ['digamma', P, true],
  ['sign', R, false],
  ['sgn', R, false],
  ['floor', R, false],
  ['ceil', R, false],
  ['round', R, false],
  ['trunc', R, false],
  ['frac', R, true],
  ['deg2rad', R, true],
  ['rad2deg', R, true],
  ['logit', U, false],
  ['i0', R, true],
  ['sinc', R, true],
  ['angle', R, false],
  ['fix', R, false],
  ['negative', R, true],
  ['positive', R, true],
  ['absolute', R, true],
  ['arctan', R, true],
  ['nan_to_num', R, true],
  ['hardshrink', R, true],
  ['isnan', R, false],
  ['isfinite', R, false],
  ['signbit', R, false],
];
const NO_INPLACE = new Set(['isnan', 'isfinite', 'signbit', 'angle', 'positive', 'hardshrink', 'sgn', 'i0', 'logit']);
const NO_FUNCTION = new Set<string>([]);
for (const [op, make, grad] of UNARY) {
  add(`${op}`, [make(3, 4)], ['m', op, [], {}], grad);
  add(`${op}_f64`, [make === R ? D(5) : (make(5).map((x, i) => (i === 0 && x === 'randn' ? 'f64' : x)) as InputSpec)], ['m', op, [], {}], grad);
  // libtorch has no derivative for in-place asinh_/atanh_ (PyTorch raises too).
  if (!NO_INPLACE.has(op)) add(`${op}_`, [make(2, 3)], ['m_', `${op}_`, [], {}], grad && op !== 'asinh' && op !== 'atanh');
  if (!NO_FUNCTION.has(op)) add(`torch_${op}`, [make(4)], ['f', op, [{ t: 0 }], {}], grad);
}
add('round_decimals', [R(3, 4)], ['m', 'round', [], { decimals: 2 }], false);
add('logit_eps', [U(6)], ['m', 'logit', [0.1], {}], true);
add('nan_to_num_args', [R(5)], ['m', 'nan_to_num', [], { nan: 0.5, posinf: 2.0 }], true);

// Elementwise binary, with broadcasting, Tensor and Scalar overloads.
const BINARY: [string, (...s: number[]) => InputSpec, (...s: number[]) => InputSpec, boolean][] = [
  ['atan2', R, R, true],
  ['hypot', R, R, true],
  ['fmod', R, P, true],
  ['remainder', R, P, true],
  ['maximum', R, R, true],
  ['minimum', R, R, true],
  ['fmax', R, R, true],
  ['fmin', R, R, true],
  ['copysign', R, R, true],
  ['logaddexp', R, R, true],
  ['logaddexp2', R, R, true],
  ['xlogy', P, P, true],
  ['true_divide', R, P, true],
  ['floor_divide', R, P, false],
  ['nextafter', R, R, false],
  ['ldexp', R, R, true],
  ['dist', R, R, true],
  ['float_power', P, R, true],
  ['heaviside', R, R, false],
  ['greater', R, R, false],
  ['less_equal', R, R, false],
  ['not_equal', R, R, false],
  ['multiply', R, R, true],
  ['subtract', R, R, true],
];
for (const [op, a, b, grad] of BINARY) {
  add(`${op}_tt`, [a(3, 4), b(3, 4)], ['m', op, [t(1)], {}], grad);
  add(`${op}_bcast`, [a(2, 3, 4), b(4)], ['m', op, [t(1)], {}], grad);
  add(`torch_${op}`, [a(3, 1), b(1, 5)], ['f', op, [t(0), t(1)], {}], grad);
}
for (const op of ['fmod', 'remainder', 'float_power', 'true_divide', 'multiply', 'subtract', 'xlogy']) {
  add(`${op}_scalar`, [P(3, 4)], ['m', op, [1.5], {}], true);
}
for (const op of ['atan2', 'hypot', 'fmod', 'remainder', 'copysign', 'xlogy']) {
  add(`${op}__`, [P(3, 4), P(3, 4)], ['m_', `${op}_`, [t(1)], {}], true);
}
add('subtract_alpha', [R(3), R(3)], ['m', 'subtract', [t(1)], { alpha: 2 }], true);
add('div_mode', [R(3, 4), P(3, 4)], ['m', 'div', [t(1)], { rounding_mode: 'floor' }], false);
add('pow_f', [P(4)], ['f', 'pow', [t(0), 3], {}], true);

// Integer and boolean ops.
for (const op of ['bitwise_and', 'bitwise_or', 'bitwise_xor', 'gcd', 'lcm', 'bitwise_left_shift', 'bitwise_right_shift']) {
  add(`${op}`, [I(1, 20, 3, 4), I(1, 4, 3, 4)], ['m', op, [t(1)], {}], false);
}
add('bitwise_not', [I(-5, 5, 6)], ['m', 'bitwise_not', [], {}], false);
add('logical_and', [B(3, 4), B(3, 4)], ['m', 'logical_and', [t(1)], {}], false);
add('logical_or', [B(3, 4), B(4)], ['m', 'logical_or', [t(1)], {}], false);
add('logical_xor', [B(3, 4), B(3, 4)], ['f', 'logical_xor', [t(0), t(1)], {}], false);
add('logical_not', [B(5)], ['m', 'logical_not', [], {}], false);
add('remainder_int', [I(-9, 9, 8)], ['m', 'remainder', [4], {}], false);
add('bincount', [I(0, 6, 20)], ['m', 'bincount', [], {}], false);
add('bincount_minlength', [I(0, 6, 20)], ['f', 'bincount', [t(0)], { minlength: 9 }], false);

// Reductions: dims, keepdim, dtype.
const REDUCE: [string, Arg[], Record<string, Arg>, boolean, (...s: number[]) => InputSpec][] = [
  ['prod', [], {}, true, R],
  ['prod', [1], {}, true, R],
  ['prod', [0, true], {}, true, R],
  ['prod', [1], { dtype: { dtype: 'float64' } }, true, R],
  ['cumsum', [1], {}, true, R],
  ['cumsum', [0], {}, true, R],
  ['cumsum', [-1], { dtype: { dtype: 'float64' } }, true, R],
  ['cumprod', [1], {}, true, R],
  ['cummax', [1], {}, true, R],
  ['cummin', [0], {}, true, R],
  ['logcumsumexp', [1], {}, true, R],
  ['logsumexp', [1], {}, true, R],
  ['logsumexp', [[0, 1]], {}, true, R],
  ['logsumexp', [0, true], {}, true, R],
  ['norm', [], {}, true, R],
  ['norm', [1], {}, true, R],
  ['norm', [3, 1], {}, true, R],
  ['norm', [2, [0, 1], true], {}, true, R],
  ['amax', [1], {}, true, R],
  ['amin', [[0, 1]], {}, true, R],
  ['amax', [0, true], {}, true, R],
  ['nansum', [], {}, true, R],
  ['nanmean', [1], {}, true, R],
  ['median', [], {}, true, R],
  ['median', [1], {}, true, R],
  ['nanmedian', [0], {}, true, R],
  ['mode', [1], {}, false, I.bind(null, 0, 3) as never],
  ['kthvalue', [2, 1], {}, true, R],
  ['kthvalue', [1, 0, true], {}, true, R],
  ['any', [], {}, false, B],
  ['any', [1], {}, false, B],
  ['all', [], {}, false, B],
  ['all', [0, true], {}, false, B],
  ['count_nonzero', [1], {}, false, B],
  ['count_nonzero', [], {}, false, R],
  ['argsort', [1], {}, false, R],
  ['argsort', [0, true], {}, false, R],
  ['msort', [], {}, true, R],
  ['aminmax', [], { dim: 1 }, false, R],
  ['diff', [], {}, true, R],
  ['diff', [2, 0], {}, true, R],
  ['trace', [], {}, true, R],
  ['histc', [], { bins: 5, min: -2, max: 2 }, false, R],
  ['quantile', [0.3], { dim: 1 }, true, R],
  ['nanquantile', [0.7], {}, true, R],
];
REDUCE.forEach(([op, args, kwargs, grad, make], i) => {
  add(`${op}_${i}`, [make(4, 5)], ['m', op, args, kwargs], grad);
  add(`${op}_${i}_f64`, [make === R ? D(3, 4) : make(3, 4)], ['m', op, args, kwargs], grad);
});

// Indexing and scatter/gather.
add('gather', [R(3, 4), I(0, 4, 3, 2)], ['m', 'gather', [1, t(1)], {}], true);
add('gather_dim0', [R(3, 4), I(0, 3, 2, 4)], ['m', 'gather', [0, t(1)], {}], true);
add('torch_gather', [D(3, 4), I(0, 4, 3, 4)], ['f', 'gather', [t(0), 1, t(1)], {}], true);
add('scatter_src', [R(3, 5), I(0, 5, 3, 2), R(3, 2)], ['m', 'scatter', [1, t(1), t(2)], {}], true);
add('scatter_value', [R(3, 5), I(0, 5, 3, 2)], ['m', 'scatter', [1, t(1), 2.5], {}], true);
add('scatter_reduce', [R(3, 5), I(0, 5, 3, 2), R(3, 2)], ['m', 'scatter', [1, t(1), t(2)], { reduce: 'add' }], false);
add('scatter__', [R(3, 5), I(0, 5, 3, 2), R(3, 2)], ['m_', 'scatter_', [1, t(1), t(2)], {}], true);
add('scatter_add', [R(3, 5), I(0, 5, 3, 2), R(3, 2)], ['m', 'scatter_add', [1, t(1), t(2)], {}], true);
add('scatter_add_', [R(3, 5), I(0, 5, 3, 2), R(3, 2)], ['m_', 'scatter_add_', [1, t(1), t(2)], {}], true);
add('index_select', [R(5, 4), I(0, 5, 3)], ['m', 'index_select', [0, t(1)], {}], true);
add('index_select_1', [D(5, 4), I(0, 4, 6)], ['m', 'index_select', [1, t(1)], {}], true);
add('index_add', [R(5, 4), I(0, 5, 3), R(3, 4)], ['m', 'index_add', [0, t(1), t(2)], {}], true);
add('index_add_alpha', [R(5, 4), I(0, 5, 3), R(3, 4)], ['m', 'index_add', [0, t(1), t(2)], { alpha: 0.5 }], true);
add('index_fill', [R(5, 4), I(0, 4, 2)], ['m', 'index_fill', [1, t(1), -1], {}], true);
add('index_copy', [R(5, 4), ['int', [2], 0, 1], R(2, 4)], ['m', 'index_copy', [0, t(1), t(2)], {}], false);
add('masked_fill', [R(3, 4), B(3, 4)], ['m', 'masked_fill', [t(1), 0], {}], true);
add('masked_fill_bcast', [R(3, 4), B(4)], ['m', 'masked_fill', [t(1), -2.5], {}], true);
add('masked_fill_', [R(3, 4), B(3, 4)], ['m_', 'masked_fill_', [t(1), 1.5], {}], true);
add('masked_select', [R(3, 4), B(3, 4)], ['m', 'masked_select', [t(1)], {}], true);
add('masked_scatter', [R(3, 4), B(3, 4), R(12)], ['m', 'masked_scatter', [t(1), t(2)], {}], true);
add('take', [R(3, 4), I(0, 12, 5)], ['m', 'take', [t(1)], {}], true);
add('take_along_dim', [R(3, 4), I(0, 4, 3, 2)], ['m', 'take_along_dim', [t(1), 1], {}], true);
add('nonzero', [B(3, 4)], ['m', 'nonzero', [], {}], false);
add('argwhere', [B(3, 4)], ['m', 'argwhere', [], {}], false);
add('put', [R(3, 4), I(0, 12, 3), R(3)], ['m', 'put', [t(1), t(2)], {}], false);
add('bucketize', [R(8), ['pos', [5]]], ['f', 'bucketize', [t(0), t(1)], {}], false);
add('searchsorted', [['pos', [6]], R(4)], ['f', 'searchsorted', [t(0), t(1)], { right: true }], false);

// Shapes, views and products.
add('repeat', [R(2, 3)], ['m', 'repeat', [2, 1], {}], true);
add('repeat_list', [R(2, 3)], ['m', 'repeat', [[1, 2, 2]], {}], true);
add('flip', [R(2, 3, 4)], ['m', 'flip', [0], {}], true);
add('flip_dims', [R(2, 3, 4)], ['m', 'flip', [[0, 2]], {}], true);
add('roll', [R(3, 4)], ['m', 'roll', [1, 1], {}], true);
add('roll_flat', [R(3, 4)], ['m', 'roll', [5], {}], true);
add(
  'roll_dims',
  [R(3, 4)],
  [
    'm',
    'roll',
    [
      [1, -1],
      [0, 1],
    ],
    {},
  ],
  true,
);
add('tile', [R(2, 3)], ['m', 'tile', [[2, 2]], {}], true);
add('movedim', [R(2, 3, 4)], ['m', 'movedim', [0, 2], {}], true);
add('swapaxes', [R(2, 3, 4)], ['m', 'swapaxes', [0, 1], {}], true);
add('diag', [R(4)], ['m', 'diag', [], {}], true);
add('diag_off', [R(4, 4)], ['m', 'diag', [1], {}], true);
add('diagonal', [R(3, 4)], ['m', 'diagonal', [], { offset: -1 }], true);
add('tril', [R(4, 4)], ['m', 'tril', [], {}], true);
add('triu', [R(4, 5)], ['m', 'triu', [1], {}], true);
add('tril_', [R(4, 4)], ['m_', 'tril_', [-1], {}], true);
add('rot90', [R(3, 4)], ['m', 'rot90', [1, [0, 1]], {}], true);
add('unflatten', [R(2, 12)], ['m', 'unflatten', [1, [3, 4]], {}], true);
add('unbind', [R(3, 4)], ['m', 'unbind', [1], {}], true);
add('tensor_split', [R(7, 2)], ['m', 'tensor_split', [3], {}], true);
add('split_with_sizes', [R(7, 2)], ['m', 'split_with_sizes', [[2, 5]], {}], true);
add('hsplit', [R(2, 6)], ['m', 'hsplit', [3], {}], true);
add('outer', [R(3), R(4)], ['m', 'outer', [t(1)], {}], true);
add('torch_outer', [D(3), D(2)], ['f', 'outer', [t(0), t(1)], {}], true);
add('bmm', [R(2, 3, 4), R(2, 4, 5)], ['m', 'bmm', [t(1)], {}], true);
add('torch_bmm', [D(2, 3, 4), D(2, 4, 2)], ['f', 'bmm', [t(0), t(1)], {}], true);
add('mv', [R(3, 4), R(4)], ['m', 'mv', [t(1)], {}], true);
add('dot', [R(5), R(5)], ['m', 'dot', [t(1)], {}], true);
add('kron', [R(2, 2), R(2, 3)], ['m', 'kron', [t(1)], {}], true);
add('cross', [R(4, 3), R(4, 3)], ['m', 'cross', [t(1)], { dim: 1 }], true);
add('addmm', [R(3, 5), R(3, 4), R(4, 5)], ['m', 'addmm', [t(1), t(2)], {}], true);
add('addmm_beta', [R(3, 5), R(3, 4), R(4, 5)], ['m', 'addmm', [t(1), t(2)], { beta: 0.5, alpha: 2 }], true);
add('addmv', [R(3), R(3, 4), R(4)], ['m', 'addmv', [t(1), t(2)], {}], true);
add('baddbmm', [R(2, 3, 5), R(2, 3, 4), R(2, 4, 5)], ['m', 'baddbmm', [t(1), t(2)], {}], true);
add('addcmul', [R(3, 4), R(3, 4), R(4)], ['m', 'addcmul', [t(1), t(2)], { value: 0.3 }], true);
add('addcdiv', [R(3, 4), R(3, 4), P(3, 4)], ['m', 'addcdiv', [t(1), t(2)], {}], true);
add('lerp_scalar', [R(3, 4), R(3, 4)], ['m', 'lerp', [t(1), 0.3], {}], true);
add('lerp_tensor', [R(3, 4), R(3, 4), U(3, 4)], ['m', 'lerp', [t(1), t(2)], {}], true);
add('torch_lerp', [D(5), D(5)], ['f', 'lerp', [t(0), t(1), 0.75], {}], true);
add('clamp_min', [R(3, 4)], ['m', 'clamp_min', [0.1], {}], true);
add('clamp_max_t', [R(3, 4), R(3, 4)], ['m', 'clamp_max', [t(1)], {}], true);
add('clip', [R(3, 4)], ['m', 'clip', [-0.5, 0.5], {}], true);
add('einsum_mm', [R(3, 4), R(4, 5)], ['f', 'einsum', ['ij,jk->ik', t(0), t(1)], {}], true);
add('einsum_list', [R(3, 4), R(4, 5)], ['f', 'einsum', ['ij,jk->ik', [t(0), t(1)]], {}], true);
add('einsum_trace', [R(4, 4)], ['f', 'einsum', ['ii->', t(0)], {}], true);
add('einsum_batch', [D(2, 3, 4), D(2, 4, 5)], ['f', 'einsum', ['bij,bjk->bik', t(0), t(1)], {}], true);
add('hstack', [R(2, 3), R(2, 2)], ['f', 'hstack', [[t(0), t(1)]], {}], true);
add('vstack', [R(2, 3), R(1, 3)], ['f', 'vstack', [[t(0), t(1)]], {}], true);
add('block_diag', [R(2, 2), R(1, 3)], ['f', 'block_diag', [t(0), t(1)], {}], true);
add('cartesian_prod', [R(2), R(3)], ['f', 'cartesian_prod', [t(0), t(1)], {}], true);
add('cdist', [R(3, 4), R(5, 4)], ['f', 'cdist', [t(0), t(1)], {}], true);
add('isclose', [R(5), R(5)], ['m', 'isclose', [t(1)], { atol: 0.5 }], false);
add('unique_consecutive', [I(0, 3, 10)], ['m', 'unique_consecutive', [], { return_inverse: true, return_counts: true }], false);
add('unique', [I(0, 5, 12)], ['m', 'unique', [], {}], false);
add('unique_all', [I(0, 5, 12)], ['m', 'unique', [], { return_inverse: true, return_counts: true }], false);
add('unique_dim', [I(0, 2, 6, 2)], ['m', 'unique', [], { dim: 0, return_counts: true }], false);
add('to_dtype', [R(3)], ['m', 'to', [{ dtype: 'float64' }], {}], true);
add('type_as', [R(3), D(2)], ['m', 'type_as', [t(1)], {}], true);
add('new_zeros', [R(3)], ['m', 'new_zeros', [[2, 2]], {}], false);
add('new_full', [D(3)], ['m', 'new_full', [[2], 1.5], {}], false);
add('zeros_like_f', [R(2, 3)], ['f', 'zeros_like', [t(0)], { dtype: { dtype: 'int32' } }], false);
add('full_like', [R(2, 3)], ['f', 'full_like', [t(0), 7], {}], false);
add('eye_f', [], ['f', 'eye', [3, 4], { dtype: { dtype: 'float64' } }], false);
add('softplus_f', [R(6)], ['f', 'softmax', [t(0), 0], {}], true);
add('var_mean', [R(3, 4)], ['f', 'var_mean', [t(0), 1], {}], true);
add('std_mean', [D(3, 4)], ['f', 'std_mean', [t(0)], { dim: 0, unbiased: false }], true);

export const CASES: ApiCase[] = cases;

const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
function value(a: Arg, inputs: Tensor[]): unknown {
  if (Array.isArray(a)) return a.map((x) => value(x, inputs));
  if (a !== null && typeof a === 'object') return 't' in a ? inputs[a.t] : a.dtype;
  return a;
}
/** The TypeScript side of a case: the same call through the generated API. */
export function implOf(c: ApiCase): (...inputs: Tensor[]) => Tensor | Tensor[] {
  const [how, name, args, kwargs] = c.call;
  const outer = (...inputs: Tensor[]) => {
    try {
      return call(inputs);
    } catch (e) {
      throw new Error(`case ${c.name}: ${(e as Error).message}`);
    }
  };
  const call = (inputs: Tensor[]): Tensor | Tensor[] => {
    const a = args.map((x) => value(x, inputs));
    const keys = Object.keys(kwargs);
    if (keys.length) a.push(Object.fromEntries(keys.map((k) => [camel(k), value(kwargs[k], inputs)])));
    const js = camel(name.replace(/_$/, '')) + (name.endsWith('_') ? '_' : '');
    let r: unknown;
    if (how === 'f') {
      const fn = (torch as unknown as Record<string, (...x: unknown[]) => unknown>)[js];
      if (typeof fn !== 'function') throw new Error(`the package exports no function ${js}`);
      r = fn(...a);
    } else {
      const self = how === 'm_' ? inputs[0].clone() : inputs[0];
      const m = (self as unknown as Record<string, (...x: unknown[]) => unknown>)[js];
      if (typeof m !== 'function') throw new Error(`Tensor has no method ${js}`);
      r = m.apply(self, a);
    }
    return r as Tensor | Tensor[];
  };
  return outer;
}
