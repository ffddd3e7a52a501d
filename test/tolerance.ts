// How far a committed float fixture may be from this machine's result.
//
// Bitwise equality with PyTorch holds on the machine where both run (the live
// oracle tests keep it), but not between CPUs: libtorch picks kernels by CPU.
// The vector width (AVX-512, AVX2 or none) changes the order of floating-point
// sums, oneDNN and OpenBLAS block convolutions and matrix products differently,
// fused multiply-add rounds a*b+c once instead of twice, and SLEEF's vectorised
// exp/log/cos differ from libm's in the last bit (both are within 1 ulp).
//
// Each of these is a rounding: it perturbs a value by at most u (the unit
// roundoff, 2^-24 for float32). A result reached through at most n roundings,
// from terms whose absolute values add up to S, is within γ(n)·S of the exact
// value, γ(n) = n·u / (1 − n·u) (Higham, Accuracy and Stability of Numerical
// Algorithms, 2nd ed., §3.1, Lemma 3.1 and eq. 3.5). Two CPUs are each that close
// to it, so they differ by at most 2·γ(n)·S.
//
// Each test states its n (the longest chain of roundings: a sum of K terms is K)
// and S (Σ|terms|). For computations that are linear in each input — convolution,
// matrix products, sums, pooling, bilinear interpolation, a VGG with its ReLUs —
// S is the same computation run in float64 on absolute values (the "absolute
// shadow"), which is exactly Σ|terms|. test/portable.test.ts checks the bounds
// against the kernels other CPUs use.
import { type DType, F, type Tensor, VGG, nn, noGrad, ones, tidy } from '../lib/index.js';
import { type EncodedTensor, decode } from './helpers.js';

/** Unit roundoff of each floating dtype. */
const UNIT_ROUNDOFF: Partial<Record<DType, number>> = {
  float32: 2 ** -24,
  float64: 2 ** -53,
  float16: 2 ** -11,
  bfloat16: 2 ** -8,
};

/** Whether a dtype is floating point (integers and bool must match exactly). */
export function isFloating(dtype: string): boolean {
  return dtype in UNIT_ROUNDOFF;
}

/** γ(n) = n·u/(1 − n·u): the relative error bound of n roundings with unit roundoff u. */
export function gamma(n: number, dtype: DType = 'float32'): number {
  const u = UNIT_ROUNDOFF[dtype];
  if (u === undefined) throw new Error(`gamma: ${dtype} is not a floating dtype`);
  const nu = n * u;
  if (nu >= 1) throw new Error(`gamma: ${n} roundings of ${dtype} bound nothing (n·u = ${nu} ≥ 1)`);
  return nu / (1 - nu);
}

/**
 * γ̃(n) = exp(λ·√n·u + n·u²/(1−u)) − 1 ≈ λ·√n·u: the probabilistic counterpart of
 * γ(n) (Higham and Mary, "A new approach to probabilistic rounding error analysis",
 * SIAM J. Sci. Comput. 41(5), 2019, Theorem 2.4). It models roundings as
 * independent and mean-zero, which holds for sums of random data like seeded
 * weights and activations, and holds with probability ≥ 1 − 2n·exp(−λ²(1−u)²/2):
 * with λ = 10, 1 − 4·10⁻²²·n. The worst case γ(n) assumes every rounding goes the
 * same way, and for the long sums of a network (n up to 25,088) is √n/λ times larger.
 */
export function gammaProbabilistic(n: number, dtype: DType = 'float32'): number {
  const u = UNIT_ROUNDOFF[dtype];
  if (u === undefined) throw new Error(`gammaProbabilistic: ${dtype} is not a floating dtype`);
  const lambda = 10;
  return Math.expm1(lambda * Math.sqrt(n) * u + (n * u * u) / (1 - u));
}

/**
 * An error budget for one result: `n` roundings of terms whose absolute values add
 * up to `scale`, or a `bound` on |Δ| worked out otherwise (a network's, below).
 */
export type Budget = RoundingBudget | { bound: Tensor | number };

/** `n` roundings of terms whose absolute values add up to `scale`: the bound is 2·γ(n)·scale. */
export interface RoundingBudget {
  /** The longest chain of roundings that leads to any element. */
  n: number;
  /**
   * Σ|terms| for each element (a tensor broadcastable to the result, or one number
   * for all of them). The bound is 2·γ(n)·scale.
   */
  scale: Tensor | number;
}

/**
 * Compares a result with a committed fixture within the error budget of two CPUs,
 * 2·γ(n)·scale per element. Integer and bool results of integer computations must
 * match exactly; an integer result rounded from a float computation (a uint8
 * image, say) may move by the float bound rounded up, at most one step where that
 * bound is below 1. Returns null when it holds, or a description of the worst element.
 */
export function closeDiff(actual: Tensor, expected: EncodedTensor, budget: Budget): string | null {
  if (actual.dtype !== expected.dtype) return `dtype ${actual.dtype} != ${expected.dtype}`;
  if (actual.shape.join(',') !== expected.shape.join(',')) return `shape [${actual.shape}] != [${expected.shape}]`;
  return tidy(() => {
    const a = actual.detach().double().contiguous().toTypedArray() as Float64Array;
    const b = decode(expected).double().contiguous().toTypedArray() as Float64Array;
    // Integer outputs are rounded from a float computation done in float32.
    const [g, scale] = 'bound' in budget ? [1, budget.bound] : [2 * gamma(budget.n, isFloating(actual.dtype) ? actual.dtype : 'float32'), budget.scale];
    let bound =
      typeof scale === 'number'
        ? new Float64Array(a.length).fill(g * scale)
        : (scale
            .detach()
            .double()
            .abs()
            .mul(g)
            .expand(...actual.shape)
            .contiguous()
            .toTypedArray() as Float64Array);
    if (!isFloating(actual.dtype)) bound = bound.map(Math.ceil);
    let worst = -1;
    let worstExcess = 0;
    for (let i = 0; i < a.length; i++) {
      if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue; // NaN in the same place counts as equal
      const excess = Math.abs(a[i] - b[i]) - bound[i];
      if (!(excess <= worstExcess)) {
        worstExcess = Number.isNaN(excess) ? Infinity : excess;
        worst = i;
      }
    }
    if (worst < 0) return null;
    return (
      `values differ beyond the cross-CPU bound: at flat index ${worst}, ${a[worst]} vs ${b[worst]}, ` +
      `|diff| ${Math.abs(a[worst] - b[worst])} > bound ${bound[worst]}`
    );
  });
}

/**
 * Roundings a seeded normal draw may differ by on another CPU (ATen's vectorised
 * Box–Muller against its scalar one): ≤ 8 roundings of log, sqrt, cos and the
 * scalings, with the cosine's argument error grown by the radius
 * r = √(−2 ln u₁) ≤ √(48 ln 2) ≈ 5.77 (u₁ ≥ 2⁻²⁴) and by 2π.
 */
export const NORMAL_DRAW = 8 * (1 + 2 * Math.PI * 5.77);

/** The budget of seeded normal draws (weights, inputs): NORMAL_DRAW roundings of each value plus the spread (RMS) of the tensor. */
export function normalDrawBudget(t: Tensor): Budget {
  return tidy(() => {
    const spread = t.detach().double().pow(2).mean().sqrt().item() as number;
    return { n: NORMAL_DRAW, scale: absDouble(t).add(spread) };
  });
}

/** The largest number of elements among tensors: no sum in a small op case has more terms than that. */
export function largestNumel(...tensors: (Tensor | EncodedTensor | null | undefined)[]): number {
  let n = 1;
  for (const t of tensors)
    if (t)
      n = Math.max(
        n,
        t.shape.reduce((a, b) => a * b, 1),
      );
  return n;
}

/** Absolute values in float64 (bool and integer tensors are left as they are: they are indices and masks). */
export function absDouble(t: Tensor): Tensor {
  return noGrad(() => (isFloating(t.dtype) ? t.detach().double().abs() : t));
}

/** The error budget of a network's output, and of what its training step computes from it. */
export interface NetworkBudget {
  /** The bound on |Δ| of every output element (∞-norm). */
  bound: number;
  /** The bound on every element of a parameter's gradient, relative to that gradient's largest element. */
  gradRelative: number;
  /** For each BatchNorm in training mode, by module path: the bound on its input, and what its running statistics need. */
  batchStats: Map<string, { bound: number; input: Tensor; count: number }>;
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const maxAbs = (t: Tensor): number => noGrad(() => t.abs().max().item() as number);

/**
 * The cross-CPU budget of a network's `output` for `input` (a network of this
 * package's layers; the output is what the caller's forward gave), in the ∞-norm,
 * layer by layer. Each layer adds the rounding error of its own sums, 2·γ̃(K)·‖S‖
 * with S its absolute shadow on the actual input (|W|·|x| + |b| for a convolution
 * or a linear layer, K its fan-in), and carries the error of its input forward:
 * - ReLU and max pooling are 1-Lipschitz in the ∞-norm: the error passes unchanged;
 * - dropout in training scales it by 1/(1−p), batch norm by max |γ|/√(var+ε),
 *   and average pooling by at most 1;
 * - a convolution or linear layer scales it as it scales its input, ‖W·x‖/‖x‖.
 *   That is the one assumption: an error made of many independent roundings
 *   is a random direction for W, not its worst case. The worst case, |W|·|e|,
 *   grows like ∏ fan-in·E|w| over the layers (10²⁷ for vgg16) and bounds nothing.
 * Products of two errors are left out (first order).
 */
export function networkBudget(model: nn.Module<any, any>, input: Tensor, output: Tensor): NetworkBudget {
  const batchStats: NetworkBudget['batchStats'] = new Map();
  let reductions = 0; // the longest sum on the way, for the gradients' budget
  const walk = (m: nn.Module<any, any>, path: string, e: number, x: Tensor): [number, Tensor] =>
    noGrad(() => {
      const at = path ? `${path}.` : '';
      if (m instanceof VGG) {
        [e, x] = walk(m.features, `${at}features`, e, x);
        if (m.avgpool) [e, x] = walk(m.avgpool, `${at}avgpool`, e, x);
        return walk(m.classifier, `${at}classifier`, e, x.flatten(1));
      }
      if (m instanceof nn.Sequential) {
        for (const [name, child] of m.namedChildren()) [e, x] = walk(child, `${at}${name}`, e, x);
        return [e, x];
      }
      if (m instanceof nn.Conv2d || m instanceof nn.Linear) {
        const conv = m instanceof nn.Conv2d;
        if (conv && m.paddingMode !== 'zeros') throw new Error(`networkBudget: no budget for padding mode ${m.paddingMode}`);
        const apply = (v: Tensor, w: Tensor, b: Tensor | null): Tensor =>
          m instanceof nn.Conv2d ? F.conv2d(v, w, b, m.stride, m.padding, m.dilation, m.groups) : F.linear(v, w, b);
        const y = m(x) as Tensor;
        const shadow = apply(x.abs(), m.weight.abs(), m.bias ? m.bias.abs() : null);
        const fanIn = m instanceof nn.Conv2d ? (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1] : m.inFeatures;
        const gain = maxAbs(apply(x, m.weight, null)) / maxAbs(x);
        reductions = Math.max(reductions, fanIn + 1);
        return [gain * e + 2 * gammaProbabilistic(fanIn + 1) * maxAbs(shadow), y];
      }
      if (m instanceof nn.BatchNorm2d) {
        const training = m.training || !m.trackRunningStats;
        const count = numel(x.shape) / x.shape[1];
        const [mean, variance] = training ? [x.mean([0, 2, 3]), x.var([0, 2, 3], { unbiased: false })] : [m.runningMean!, m.runningVar!];
        const scale = (m.weight ? m.weight.abs() : ones([x.shape[1]])).div(variance.add(m.eps).sqrt());
        const y = F.batchNorm(x, training ? null : m.runningMean, training ? null : m.runningVar, { weight: m.weight, bias: m.bias, training, eps: m.eps });
        const shadow = x
          .abs()
          .add(mean.abs().view(1, -1, 1, 1))
          .mul(scale.view(1, -1, 1, 1))
          .add(m.bias ? m.bias.abs().view(1, -1, 1, 1) : 0);
        // In training the statistics are sums of `count` terms: their errors move every output by up to as much again.
        const n = 6 + (training ? 2 * count : 0);
        if (training) batchStats.set(path, { bound: e, input: x, count });
        reductions = Math.max(reductions, n);
        return [maxAbs(scale) * e * (training ? 2 : 1) + 2 * gammaProbabilistic(n) * maxAbs(shadow), y];
      }
      if (m instanceof nn.AvgPool2d || m instanceof nn.AdaptiveAvgPool2d) {
        const y = m(x) as Tensor;
        const window = x.shape
          .slice(2)
          .map((d, i) => Math.ceil(d / y.shape[2 + i]) + 1)
          .reduce((a, b) => a * b, 1);
        return [e + 2 * gammaProbabilistic(window) * maxAbs(y.abs()), y];
      }
      if (m instanceof nn.Dropout) {
        // The actual masks are the model's own; the error grows by the most a kept value grows, plus that scaling's rounding.
        const grow = m.training && m.p > 0 ? 1 / (1 - m.p) : 1;
        return [grow * e + (grow > 1 ? 2 * gammaProbabilistic(1) * grow * maxAbs(x) : 0), x];
      }
      if (m instanceof nn.ReLU || m instanceof nn.MaxPool2d || m instanceof nn.Flatten || m instanceof nn.Identity) {
        return [e, m(x) as Tensor];
      }
      throw new Error(`networkBudget: no error budget for ${m.constructor.name}`);
    });
  const [bound] = walk(model, '', 0, input.detach());
  // Backward runs the same layers transposed (sums of the same order) and then sums
  // each weight's gradient over the batch and positions: its relative error is at
  // most the forward's twice over, plus that last sum.
  const largestSum = Math.max(reductions, numel(input.shape));
  return { bound, gradRelative: 2 * (bound / maxAbs(output)) + 2 * gammaProbabilistic(largestSum), batchStats };
}
