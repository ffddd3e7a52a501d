// Every op, forward and gradient, against PyTorch on the same libtorch.
// The committed fixture (scripts/fixtures/ops.py) makes this run without Python;
// where /usr/bin/python3 has torch, the oracle is re-run live and compared too.
import { describe, expect, it } from 'vitest';
import { F, cat, stack, where } from '../lib/index.js';
import { hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { type Fixture, type Impl, check } from './op-replay.js';

const IMPLS: Record<string, Impl> = {
  add: (a, b) => a.add(b, 2.5),
  add_scalar: (a) => a.add(1.5),
  sub: (a, b) => a.sub(b),
  mul: (a, b) => a.mul(b),
  mul_scalar: (a) => a.mul(3),
  div: (a, b) => a.div(b),
  div_scalar: (a) => a.div(7),
  pow_scalar: (a) => a.pow(2.5),
  pow_tensor: (a, b) => a.pow(b),
  neg: (a) => a.neg(),
  abs: (a) => a.abs(),
  sqrt: (a) => a.sqrt(),
  exp: (a) => a.exp(),
  log: (a) => a.log(),
  clamp: (a) => a.clamp(-0.5, 0.7),
  clamp_min: (a) => a.clamp(0.1),
  matmul: (a, b) => a.matmul(b),
  mm: (a, b) => a.mm(b),
  sum: (a) => a.sum(),
  sum_dims: (a) => a.sum([0, 2], true),
  mean: (a) => a.mean(),
  mean_dim: (a) => a.mean(1),
  max: (a) => a.max(),
  max_dim: (a) => a.max(1, true),
  min_dim: (a) => a.min(0),
  maximum: (a, b) => a.max(b),
  argmax: (a) => a.argmax(1),
  argmin: (a) => a.argmin(),
  std: (a) => a.std(),
  std_dim: (a) => a.std(1, { unbiased: false, keepdim: true }),
  var_dim: (a) => a.var(0),
  eq: (a, b) => a.eq(b),
  ne_scalar: (a) => a.ne(1),
  lt: (a, b) => a.lt(b),
  le_scalar: (a) => a.le(0),
  gt: (a, b) => a.gt(b),
  ge_scalar: (a) => a.ge(0.25),
  where: (c, a, b) => where(c, a, b),
  where_scalar: (c, a) => where(c, a, 0.5),
  softmax: (a) => a.softmax(1),
  log_softmax: (a) => a.logSoftmax(0),
  topk: (a) => a.topk(3),
  topk_smallest: (a) => a.topk(2, 0, false),
  sort: (a) => a.sort(1, true),
  view: (a) => a.view(3, 4),
  reshape: (a) => a.permute(1, 0, 2).reshape(6, -1),
  flatten: (a) => a.flatten(1),
  flatten_range: (a) => a.flatten(1, 2),
  permute: (a) => a.permute(2, 0, 1).contiguous(),
  transpose: (a) => a.transpose(0, 2),
  t: (a) => a.t(),
  squeeze: (a) => a.squeeze(),
  squeeze_dim: (a) => a.squeeze(2),
  unsqueeze: (a) => a.unsqueeze(1),
  expand: (a) => a.expand(3, 4),
  narrow: (a) => a.narrow(0, 1, 3),
  select: (a) => a.select(1, -1),
  index_slices: (a) => a.index(':', '1:4', '::2'),
  index_int_none: (a) => a.index(1, null, ':', -2),
  index_ellipsis: (a) => a.index('...', { start: 1, stop: 3 }),
  index_tensor: (a, i) => a.index(i),
  index_tensor_dim1: (a, i) => a.index(':', i),
  index_bool: (a, m) => a.index(m),
  cat: (a, b) => cat([a, b]),
  cat_dim1: (a, b) => cat([a, b], 1),
  stack: (a, b) => stack([a, b], 1),
  split: (a) => a.split(3),
  split_sizes: (a) => a.split([2, 5]),
  chunk: (a) => a.chunk(3, 1),
  conv2d: (x, w, b) => F.conv2d(x, w, b, 1, 1),
  conv2d_stride_dil: (x, w) => F.conv2d(x, w, null, [2, 1], [1, 0], [2, 1]),
  conv2d_groups: (x, w, b) => F.conv2d(x, w, b, 1, 0, 1, 2),
  conv2d_same: (x, w) => F.conv2d(x, w, null, 1, 'same'),
  batch_norm_train: (x, w, b, rm, rv) => [F.batchNorm(x, rm, rv, { weight: w, bias: b, training: true, momentum: 0.2, eps: 1e-4 }), rm, rv],
  batch_norm_eval: (x, w, b, rm, rv) => F.batchNorm(x, rm, rv, { weight: w, bias: b, training: false }),
  max_pool2d: (x) => F.maxPool2d(x, 2),
  max_pool2d_args: (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1, dilation: 1, ceilMode: true }),
  max_pool2d_dilation: (x) => F.maxPool2d(x, [2, 3], { stride: [1, 2], dilation: 2 }),
  avg_pool2d: (x) => F.avgPool2d(x, 2),
  avg_pool2d_args: (x) => F.avgPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
  adaptive_avg_pool2d: (x) => F.adaptiveAvgPool2d(x, [7, 7]),
  adaptive_avg_pool2d_up: (x) => F.adaptiveAvgPool2d(x, 7),
  linear: (x, w, b) => F.linear(x, w, b),
  linear_nobias: (x, w) => F.linear(x, w),
  relu: (x) => F.relu(x),
  relu_inplace: (x) => F.relu(x.clone(), true),
  dropout_eval: (x) => F.dropout(x, 0.5, false),
  cross_entropy: (x, t) => F.crossEntropy(x, t),
  cross_entropy_args: (x, t, w) => F.crossEntropy(x, t, { weight: w, ignoreIndex: 2, reduction: 'sum', labelSmoothing: 0.1 }),
  cross_entropy_none: (x, t) => F.crossEntropy(x, t, { reduction: 'none' }),
  cross_entropy_probs: (x, p) => F.crossEntropy(x, p.div(p.sum(1, true))),
  nll_loss: (x, t) => F.nllLoss(x.logSoftmax(1), t),
  nll_loss_args: (x, t, w) => F.nllLoss(x, t, { weight: w, ignoreIndex: 1, reduction: 'none' }),
  mse_loss: (a, b) => F.mseLoss(a, b),
  mse_loss_sum: (a, b) => F.mseLoss(a, b, { reduction: 'sum' }),
  interpolate_bilinear: (x) => F.interpolate(x, { size: [8, 9], mode: 'bilinear', alignCorners: false }),
  interpolate_bilinear_ac: (x) => F.interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true }),
  interpolate_antialias: (x) => F.interpolate(x, { size: [7, 9], mode: 'bilinear', antialias: true }),
  interpolate_nearest: (x) => F.interpolate(x, { scaleFactor: 2.5 }),
  pad_constant: (x) => F.pad(x, [1, 2, 0, 1], 'constant', 0.5),
  pad_reflect: (x) => F.pad(x, [2, 2, 1, 1], 'reflect'),
  add_: (a, b) => a.clone().add_(b, -0.5),
  mul_: (a, b) => a.clone().mul_(b),
  addcmul_: (a, b, c) => a.clone().addcmul_(b, c, 0.3),
  addcdiv_: (a, b, c) => a.clone().addcdiv_(b, c, -0.7),
  clamp_: (a) => a.clone().clamp_(-0.2, 0.3),
  copy_: (a, b) => a.clone().copy_(b),
  fill_: (a) => a.clone().fill_(2.5),
  zero_: (a) => a.clone().zero_(),
  to_float64: (a) => a.to('float64'),
  to_half_back: (a) => a.half().float(),
  long: (a) => a.mul(10).long(),
};

describe('ops against PyTorch (committed fixture)', () => {
  const fixture = readFixture<Fixture>('ops.json');

  it('covers every TypeScript case and every fixture case', () => {
    expect(fixture.cases.map((c) => c.name).sort()).toEqual(Object.keys(IMPLS).sort());
  });

  it('forward and gradients equal PyTorch within the rounding budget of another CPU', () => {
    check(fixture, IMPLS, false);
  });
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('ops against PyTorch (live oracle)', () => {
  it('re-runs the oracle now and matches it bitwise', async () => {
    check(await runOracle<Fixture>('scripts/fixtures/ops.py'), IMPLS, true);
  });
});
