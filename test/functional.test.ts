// torch.nn.functional's call forms: positional, keywords (a trailing options object) and both,
// as Python calls them. Against PyTorch called with keywords (scripts/fixtures/functional.py,
// committed fixture and live oracle), with F.max_pool2d(..., return_indices=True) for
// maxPool2dWithIndices; each keyword form against the positional one bit for bit; the errors of
// unknown names, names given twice, too many positional arguments and missing ones; the layers'
// option forms.
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { F, type Tensor, manualSeed, nn, randint, randn, rand, tidy } from '../lib/index.js';
import { isPlainObject, parseArgs } from '../lib/utils/args.js';
import { snakeCase } from '../lib/utils/pyrepr.js';
import { pair } from '../lib/nn/modules/utils.js';
import { bytesOf, hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { type Fixture, type Impl, check } from './op-replay.js';

/** The TypeScript form of each case of scripts/fixtures/functional.py (the Python call in its comment there). */
const IMPLS: Record<string, Impl> = {
  max_pool2d_indices: (x) => F.maxPool2dWithIndices(x, 2),
  max_pool2d_indices_args: (x) => F.maxPool2dWithIndices(x, 3, { stride: 2, padding: 1, ceilMode: true }),
  max_pool2d_indices_dilation: (x) => F.maxPool2dWithIndices(x, { kernelSize: [2, 3], stride: [1, 2], dilation: 2 }),
  max_pool2d_indices_overlap: (x) => F.maxPool2dWithIndices(x, 3, 1, 1),
  max_pool2d_indices_ties: (x) => F.maxPool2dWithIndices(x.float(), 2),
  max_pool2d_indices_3d: (x) => F.maxPool2dWithIndices(x, 2, { stride: 1 }),
  conv2d_kw: (x, w, b) => F.conv2d(x, w, { bias: b, stride: 2, padding: 1 }),
  conv2d_mixed: (x, w, b) => F.conv2d(x, w, b, { padding: 'same', dilation: 2, groups: 2 }),
  conv2d_stride_kw: (x, w) => F.conv2d(x, w, null, [2, 1], { padding: [1, 0] }),
  batch_norm_kw: (x, w, b, rm, rv) => [
    F.batchNorm(x, { runningMean: rm, runningVar: rv, weight: w, bias: b, training: true, momentum: 0.3, eps: 1e-3 }),
    rm,
    rv,
  ],
  batch_norm_mixed: (x, w, b, rm, rv) => F.batchNorm(x, rm, rv, w, { bias: b, eps: 1e-4 }),
  max_pool2d_kw: (x) => F.maxPool2d(x, { kernelSize: 2, stride: 1, padding: 1 }),
  max_pool2d_mixed: (x) => F.maxPool2d(x, 3, 2, { ceilMode: true }),
  avg_pool2d_kw: (x) => F.avgPool2d(x, 3, 2, { padding: 1, countIncludePad: false, divisorOverride: 5 }),
  avg_pool2d_positional: (x) => F.avgPool2d(x, 3, 2, 1, true, false),
  adaptive_avg_pool2d_kw: (x) => F.adaptiveAvgPool2d(x, { outputSize: [3, null] }),
  linear_kw: (x, w, b) => F.linear(x, w, { bias: b }),
  relu_kw: (x) => F.relu(x.clone(), { inplace: true }),
  dropout_kw: (x) => F.dropout(x, { p: 0.3, training: false }),
  softmax_kw: (x) => F.softmax(x, { dim: 1 }),
  log_softmax_kw: (x) => F.logSoftmax(x, { dim: 0, dtype: 'float64' }),
  cross_entropy_mixed: (x, t, w) => F.crossEntropy(x, t, w, { ignoreIndex: 1, labelSmoothing: 0.2 }),
  nll_loss_mixed: (x, t, w) => F.nllLoss(x, t, w, { reduction: 'sum' }),
  mse_loss_kw: (a, b) => F.mseLoss(a, b, { reduction: 'none' }),
  interpolate_positional: (x) => F.interpolate(x, null, 2, 'bilinear', true),
  interpolate_mixed: (x) => F.interpolate(x, [6, 9], { mode: 'bicubic', alignCorners: false }),
  pad_kw: (x) => F.pad(x, [1, 2, 2, 1], { mode: 'replicate' }),
  pad_value_kw: (x) => F.pad(x, [1, 1], { value: 0.25 }),
};

describe('F called with keywords, against PyTorch (committed fixture)', () => {
  const fixture = readFixture<Fixture>('functional.json');

  it('covers every TypeScript case and every fixture case', () => {
    expect(fixture.cases.map((c) => c.name).sort()).toEqual(Object.keys(IMPLS).sort());
  });

  it('forward and gradients equal PyTorch within the rounding budget of another CPU', () => {
    check(fixture, IMPLS, false);
  });

  it('maxPool2dWithIndices: indices are int64 flat positions in each H×W plane, exactly PyTorch’s', () => {
    const c = fixture.cases.find((k) => k.name === 'max_pool2d_indices_args')!;
    expect(c.outputs[1].dtype).toBe('int64');
    tidy(() => {
      const x = randn(2, 3, 9, 10);
      const [y, i] = F.maxPool2dWithIndices(x, 3, { stride: 2, padding: 1, ceilMode: true });
      expect(i.dtype).toBe('int64');
      expect(i.shape).toEqual(y.shape);
      // Each index picks the maximum out of its input plane.
      const plane = 9 * 10;
      const xs = x.toTypedArray();
      const ys = y.toTypedArray();
      const is = i.toTypedArray();
      const perPlane = y.shape[2] * y.shape[3];
      for (let k = 0; k < ys.length; k++) {
        const at = Number(is[k]);
        expect(at >= 0 && at < plane).toBe(true);
        expect(xs[Math.floor(k / perPlane) * plane + at]).toBe(ys[k]);
      }
      // The same values as maxPool2d.
      expect(bytesOf(F.maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true })).equals(bytesOf(y))).toBe(true);
    });
  });
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('F called with keywords, against PyTorch (live oracle)', () => {
  it('re-runs the oracle now and matches it bitwise', async () => {
    check(await runOracle<Fixture>('scripts/fixtures/functional.py'), IMPLS, true);
  });
});

/** A function as plain JS sees it: calls that the overloads do not type, to check what runs. */
const js = (f: unknown) => f as (...args: unknown[]) => Tensor | Tensor[];
/** `new C(...args)` as plain JS may call it. */
const jsNew = <T = nn.Module<any, any>>(C: unknown, ...args: unknown[]): T => new (C as new (...a: unknown[]) => T)(...args);

function same(a: Tensor | Tensor[], b: Tensor | Tensor[]): string | null {
  const as = Array.isArray(a) ? a : [a];
  const bs = Array.isArray(b) ? b : [b];
  if (as.length !== bs.length) return `${as.length} outputs vs ${bs.length}`;
  for (let k = 0; k < as.length; k++) {
    if (as[k].dtype !== bs[k].dtype) return `output ${k}: dtype ${as[k].dtype} vs ${bs[k].dtype}`;
    if (as[k].shape.join() !== bs[k].shape.join()) return `output ${k}: shape [${as[k].shape}] vs [${bs[k].shape}]`;
    if (!bytesOf(as[k]).equals(bytesOf(bs[k]))) return `output ${k}: values differ`;
  }
  return null;
}

describe('keyword, positional and mixed forms give the same result, bit for bit', () => {
  const x = randn(2, 3, 9, 9);
  const w = randn(4, 3, 3, 3);
  const b = randn(4);
  const x2 = randn(5, 8);
  const lw = randn(3, 8);
  const lb = randn(3);
  const logits = randn(6, 5);
  const target = randint(0, 5, [6]);
  const cw = rand(5).add(0.1);
  const g = rand(3).add(0.5);
  const bb = randn(3);
  const rm = randn(3);
  const rv = rand(3).add(0.1);
  // Fresh running statistics for each form: training updates them in place.
  const stats = (): [Tensor, Tensor] => [rm.clone(), rv.clone()];

  // [name, forms...]: every form must give what the first gives.
  const FORMS: [string, ...(() => Tensor | Tensor[])[]][] = [
    [
      'conv2d',
      () => F.conv2d(x, w, b, 2, 1, 1, 1),
      () => F.conv2d(x, w, { bias: b, stride: 2, padding: 1, dilation: 1, groups: 1 }),
      () => F.conv2d(x, w, b, { stride: 2, padding: 1 }),
      () => F.conv2d(x, w, b, 2, { padding: 1 }),
      () => F.conv2d(x, w, b, 2, 1, { dilation: 1 }),
      () => F.conv2d(x, w, b, 2, 1, 1, { groups: 1 }),
      () => js(F.conv2d)(x, w, b, 2, 1, 1, 1, {}),
      // a positional undefined is a default, so the name may come after it
      () => js(F.conv2d)(x, w, undefined, undefined, 1, { bias: b, stride: 2 }),
      // an options object from another realm is still an options object
      () => js(F.conv2d)(x, w, b, runInNewContext('({ stride: 2, padding: 1 })')),
    ],
    ['conv2d without bias', () => F.conv2d(x, w), () => F.conv2d(x, w, null), () => F.conv2d(x, w, {}), () => F.conv2d(x, w, { bias: null })],
    ['conv2d same', () => F.conv2d(x, w, null, 1, 'same'), () => F.conv2d(x, w, { padding: 'same' })],
    ['linear', () => F.linear(x2, lw, lb), () => F.linear(x2, lw, { bias: lb })],
    ['linear without bias', () => F.linear(x2, lw), () => F.linear(x2, lw, null), () => F.linear(x2, lw, {})],
    [
      'batchNorm eval',
      () => F.batchNorm(x, rm, rv, g, bb, false, 0.1, 1e-3),
      () => F.batchNorm(x, rm, rv, { weight: g, bias: bb, eps: 1e-3 }),
      () => F.batchNorm(x, { runningMean: rm, runningVar: rv, weight: g, bias: bb, eps: 1e-3 }),
      () => F.batchNorm(x, rm, rv, g, { bias: bb, eps: 1e-3 }),
      () => F.batchNorm(x, rm, rv, g, bb, { eps: 1e-3 }),
      () => F.batchNorm(x, rm, rv, g, bb, false, { eps: 1e-3 }),
      () => F.batchNorm(x, rm, rv, g, bb, false, 0.1, { eps: 1e-3 }),
    ],
    [
      'batchNorm training (output and updated statistics)',
      () => {
        const [m, v] = stats();
        return [F.batchNorm(x, m, v, g, bb, true, 0.3), m, v];
      },
      () => {
        const [m, v] = stats();
        return [F.batchNorm(x, { runningMean: m, runningVar: v, weight: g, bias: bb, training: true, momentum: 0.3 }), m, v];
      },
      () => {
        const [m, v] = stats();
        return [F.batchNorm(x, m, v, { weight: g, bias: bb, training: true, momentum: 0.3 }), m, v];
      },
    ],
    [
      'batchNorm without statistics',
      () => F.batchNorm(x, null, null, null, null, true),
      () => F.batchNorm(x, { runningMean: null, runningVar: null, training: true }),
    ],
    [
      'maxPool2d',
      () => F.maxPool2d(x, 3, 2, 1, 1, true),
      () => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1, dilation: 1, ceilMode: true }),
      () => F.maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true }),
      () => F.maxPool2d(x, 3, 2, { padding: 1, ceilMode: true }),
      () => F.maxPool2d(x, 3, 2, 1, { ceilMode: true }),
      () => F.maxPool2d(x, 3, 2, 1, 1, { ceilMode: true } as never),
    ],
    [
      'maxPool2d default stride',
      () => F.maxPool2d(x, 2),
      () => F.maxPool2d(x, 2, null),
      () => F.maxPool2d(x, 2, 2),
      () => F.maxPool2d(x, { kernelSize: 2, stride: null }),
    ],
    [
      'maxPool2dWithIndices',
      () => F.maxPool2dWithIndices(x, 3, 2, 1, 1, true),
      () => F.maxPool2dWithIndices(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }),
      () => F.maxPool2dWithIndices(x, 3, { stride: 2, padding: 1, ceilMode: true }),
      () => F.maxPool2dWithIndices(x, 3, 2, { padding: 1, ceilMode: true }),
    ],
    [
      'avgPool2d',
      () => F.avgPool2d(x, 3, 2, 1, true, false, 4),
      () => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false, divisorOverride: 4 }),
      () => F.avgPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false, divisorOverride: 4 }),
      () => F.avgPool2d(x, 3, 2, 1, { ceilMode: true, countIncludePad: false, divisorOverride: 4 }),
      () => F.avgPool2d(x, 3, 2, 1, true, false, { divisorOverride: 4 }),
    ],
    ['adaptiveAvgPool2d', () => F.adaptiveAvgPool2d(x, [4, null]), () => F.adaptiveAvgPool2d(x, { outputSize: [4, null] })],
    ['relu', () => F.relu(x), () => F.relu(x, false), () => F.relu(x, {}), () => F.relu(x, { inplace: false })],
    ['relu inplace', () => F.relu(x.clone(), true), () => F.relu(x.clone(), { inplace: true }), () => F.relu_(x.clone())],
    ['dropout eval', () => F.dropout(x, 0.3, false), () => F.dropout(x, { p: 0.3, training: false }), () => F.dropout(x, 0.3, { training: false })],
    [
      'dropout training (same seed)',
      () => {
        manualSeed(7);
        return F.dropout(x, 0.3);
      },
      () => {
        manualSeed(7);
        return F.dropout(x, 0.3, true, false);
      },
      () => {
        manualSeed(7);
        return F.dropout(x, { p: 0.3 });
      },
      () => {
        manualSeed(7);
        return F.dropout(x, 0.3, { training: true, inplace: false });
      },
      () => {
        manualSeed(7);
        return F.dropout(x, 0.3, true, { inplace: false });
      },
      () => {
        manualSeed(7);
        return F.dropout(x.clone(), { p: 0.3, inplace: true });
      },
    ],
    ['softmax', () => F.softmax(x, 1), () => F.softmax(x, { dim: 1 })],
    ['softmax dtype', () => F.softmax(x, 1, { dtype: 'float64' }), () => F.softmax(x, { dim: 1, dtype: 'float64' }), () => x.softmax(1, { dtype: 'float64' })],
    ['logSoftmax', () => F.logSoftmax(x, -1), () => F.logSoftmax(x, { dim: -1 })],
    [
      'crossEntropy',
      () => F.crossEntropy(logits, target, cw, { ignoreIndex: 2, reduction: 'sum', labelSmoothing: 0.1 }),
      () => F.crossEntropy(logits, target, { weight: cw, ignoreIndex: 2, reduction: 'sum', labelSmoothing: 0.1 }),
    ],
    ['crossEntropy without weight', () => F.crossEntropy(logits, target), () => F.crossEntropy(logits, target, null), () => F.crossEntropy(logits, target, {})],
    ['nllLoss', () => F.nllLoss(logits, target, cw, { reduction: 'none' }), () => F.nllLoss(logits, target, { weight: cw, reduction: 'none' })],
    ['mseLoss', () => F.mseLoss(x2, x2.neg()), () => F.mseLoss(x2, x2.neg(), {}), () => F.mseLoss(x2, x2.neg(), { reduction: 'mean' })],
    [
      'interpolate',
      () => F.interpolate(x, null, 2, 'bilinear', true),
      () => F.interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true }),
      () => F.interpolate(x, undefined, 2, { mode: 'bilinear', alignCorners: true }),
      () => F.interpolate(x, null, 2, 'bilinear', { alignCorners: true }),
      () => F.interpolate(x, { size: null, scaleFactor: 2, mode: 'bilinear', alignCorners: true, recomputeScaleFactor: null }),
    ],
    [
      'interpolate size',
      () => F.interpolate(x, [5, 7]),
      () => F.interpolate(x, { size: [5, 7] }),
      () => F.interpolate(x, [5, 7], {}),
      () => F.interpolate(x, [5, 7], null, 'nearest'),
    ],
    [
      'pad',
      () => F.pad(x, [1, 2, 0, 1], 'constant', 0.5),
      () => F.pad(x, [1, 2, 0, 1], { value: 0.5 }),
      () => F.pad(x, [1, 2, 0, 1], 'constant', { value: 0.5 }),
    ],
    ['pad mode', () => F.pad(x, [2, 2, 1, 1], 'reflect'), () => F.pad(x, [2, 2, 1, 1], { mode: 'reflect' })],
  ];

  it.each(FORMS)('%s', (_name, first, ...others) => {
    tidy(() => {
      const want = first();
      others.forEach((form, k) => {
        expect(same(form(), want), `form ${k + 2}`).toBeNull();
      });
    });
  });
});

describe('bad keyword calls are errors that name the argument', () => {
  const x = randn(2, 3);
  const x4 = randn(1, 3, 8, 8);
  const w = randn(4, 3, 3, 3);
  const b = randn(4);
  const target = randint(0, 3, [2]);
  type Bad = [name: string, call: () => unknown, message: RegExp];
  const CASES: Bad[] = [
    // unknown names, with a close match where there is one
    [
      'conv2d misspelt',
      () => F.conv2d(x4, w, { paddin: 1 } as never),
      /^conv2d\(\): unknown option 'paddin' \(did you mean 'padding'\?\); allowed: 'bias', 'stride', 'padding', 'dilation', 'groups'$/,
    ],
    ['conv2d snake_case', () => F.conv2d(x4, w, b, { padding_mode: 'zeros' } as never), /conv2d\(\): unknown option 'padding_mode'/],
    ['linear', () => F.linear(x, randn(2, 3), { biass: null } as never), /linear\(\): unknown option 'biass' \(did you mean 'bias'\?\)/],
    ['batchNorm', () => F.batchNorm(x4, null, null, { momentm: 0.1 } as never), /batchNorm\(\): unknown option 'momentm' \(did you mean 'momentum'\?\)/],
    ['maxPool2d', () => F.maxPool2d(x4, 2, { ceil_mode: true } as never), /maxPool2d\(\): unknown option 'ceil_mode' \(did you mean 'ceilMode'\?\)/],
    [
      'maxPool2d returnIndices',
      () => F.maxPool2d(x4, 2, { returnIndices: true } as never),
      /maxPool2d\(\): unknown option 'returnIndices'; allowed: 'kernelSize', 'stride', 'padding', 'dilation', 'ceilMode'/,
    ],
    [
      'maxPool2dWithIndices',
      () => F.maxPool2dWithIndices(x4, 2, { strides: 2 } as never),
      /maxPool2dWithIndices\(\): unknown option 'strides' \(did you mean 'stride'\?\)/,
    ],
    ['avgPool2d', () => F.avgPool2d(x4, 2, { countIncludePadding: false } as never), /avgPool2d\(\): unknown option 'countIncludePadding'/],
    [
      'adaptiveAvgPool2d',
      () => F.adaptiveAvgPool2d(x4, { output_size: 2 } as never),
      /adaptiveAvgPool2d\(\): unknown option 'output_size' \(did you mean 'outputSize'\?\)/,
    ],
    ['relu', () => F.relu(x, { in_place: true } as never), /relu\(\): unknown option 'in_place' \(did you mean 'inplace'\?\)/],
    ['dropout', () => F.dropout(x, { rate: 0.1 } as never), /dropout\(\): unknown option 'rate'; allowed: 'p', 'training', 'inplace'/],
    ['softmax', () => F.softmax(x, { axis: 1 } as never), /softmax\(\): unknown option 'axis'; allowed: 'dim', 'dtype'/],
    ['logSoftmax', () => F.logSoftmax(x, 1, { dtyp: 'float64' } as never), /logSoftmax\(\): unknown option 'dtyp' \(did you mean 'dtype'\?\)/],
    [
      'crossEntropy',
      () => F.crossEntropy(x, target, { label_smoothing: 0.1 } as never),
      /crossEntropy\(\): unknown option 'label_smoothing' \(did you mean 'labelSmoothing'\?\)/,
    ],
    ['nllLoss', () => F.nllLoss(x, target, { ignoreIdx: 0 } as never), /nllLoss\(\): unknown option 'ignoreIdx'/],
    ['mseLoss', () => F.mseLoss(x, x, { reduce: false } as never), /mseLoss\(\): unknown option 'reduce'; allowed: 'reduction'/],
    ['interpolate', () => F.interpolate(x4, { scale_factor: 2 } as never), /interpolate\(\): unknown option 'scale_factor' \(did you mean 'scaleFactor'\?\)/],
    ['pad', () => F.pad(x4, [1, 1], { fill: 0 } as never), /pad\(\): unknown option 'fill'; allowed: 'mode', 'value'/],
    // a name also given positionally (Python: "got multiple values for argument")
    ['conv2d bias twice', () => F.conv2d(x4, w, b, { bias: b } as never), /^conv2d\(\): got multiple values for argument 'bias'/],
    ['conv2d stride twice', () => F.conv2d(x4, w, b, 2, { stride: 1 } as never), /conv2d\(\): got multiple values for argument 'stride'/],
    ['maxPool2d kernelSize twice', () => F.maxPool2d(x4, 2, { kernelSize: 2 } as never), /maxPool2d\(\): got multiple values for argument 'kernelSize'/],
    [
      'batchNorm runningMean twice',
      () => F.batchNorm(x4, null, null, { runningMean: null } as never),
      /batchNorm\(\): got multiple values for argument 'runningMean'/,
    ],
    ['dropout p twice', () => F.dropout(x, 0.1, { p: 0.2 } as never), /dropout\(\): got multiple values for argument 'p'/],
    ['interpolate size twice', () => F.interpolate(x4, 4, { size: 4 } as never), /interpolate\(\): got multiple values for argument 'size'/],
    [
      'crossEntropy weight twice',
      () => F.crossEntropy(x, target, randn(3), { weight: null } as never),
      /crossEntropy\(\): got multiple values for argument 'weight'/,
    ],
    // too many positional arguments; keyword-only ones (as in Python) only by name
    [
      'conv2d too many',
      () => js(F.conv2d)(x4, w, b, 1, 0, 1, 1, 1),
      /conv2d\(\): too many positional arguments: 6 given where it takes at most 5 \('bias', 'stride', 'padding', 'dilation', 'groups'\)/,
    ],
    ['linear too many', () => js(F.linear)(x, randn(2, 3), null, 1), /linear\(\): too many positional arguments: 2 given where it takes at most 1 \('bias'\)/],
    ['relu too many', () => js(F.relu)(x, false, false), /relu\(\): too many positional arguments/],
    [
      'softmax dtype positional',
      () => js(F.softmax)(x, 1, 'float64'),
      /softmax\(\): too many positional arguments: 2 given where it takes at most 1 \('dim'\); 'dtype' only by name, in an options object/,
    ],
    [
      'crossEntropy ignoreIndex positional',
      () => js(F.crossEntropy)(x, target, null, 1),
      /crossEntropy\(\): too many positional arguments: 2 given where it takes at most 1 \('weight'\); 'ignoreIndex', 'reduction', 'labelSmoothing' only by name/,
    ],
    [
      'mseLoss reduction positional',
      () => js(F.mseLoss)(x, x, 'sum'),
      /mseLoss\(\): too many positional arguments: 1 given where it takes none; 'reduction' only by name/,
    ],
    // a required argument given neither way
    ['maxPool2d no kernelSize', () => F.maxPool2d(x4, { stride: 2 } as never), /maxPool2d\(\): missing required argument 'kernelSize'/],
    ['avgPool2d no kernelSize', () => js(F.avgPool2d)(x4), /avgPool2d\(\): missing required argument 'kernelSize'/],
    ['adaptiveAvgPool2d no outputSize', () => F.adaptiveAvgPool2d(x4, {} as never), /adaptiveAvgPool2d\(\): missing required argument 'outputSize'/],
    ['batchNorm no runningVar', () => F.batchNorm(x4, { runningMean: null, training: true } as never), /batchNorm\(\): missing required argument 'runningVar'/],
    ['softmax no dim', () => F.softmax(x, {} as never), /softmax\(\): missing required argument 'dim'/],
    // an options object is only ever the last argument: elsewhere it is a bad value
    ['conv2d options before a positional', () => js(F.conv2d)(x4, w, { padding: 1 }, 1), /argument 'bias' must be a Tensor, got an object/],
  ];

  it.each(CASES)('%s', (_name, call, message) => {
    let error: unknown;
    try {
      call();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
    if (!/must be a Tensor/.test(message.source)) expect(error).toBeInstanceOf(TypeError);
  });
});

describe('layers take their arguments positionally, by name, or both, with the functionals’ names', () => {
  const built = (make: () => nn.Module<any, any>): { repr: string; state: [string, Buffer][] } => {
    manualSeed(3);
    const m = make();
    const state = [...m.stateDict()].map(([k, t]): [string, Buffer] => [k, bytesOf(t)]);
    const repr = m.toString();
    m.dispose();
    return { repr, state };
  };
  const FORMS: [string, string, ...(() => nn.Module<any, any>)[]][] = [
    [
      'Conv2d',
      'Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)',
      () => new nn.Conv2d(3, 8, 3, { stride: 2, padding: 1, bias: false }),
      () => new nn.Conv2d(3, 8, { kernelSize: 3, stride: 2, padding: 1, bias: false }),
      () => new nn.Conv2d(3, 8, 3, 2, 1, 1, 1, false),
      () => jsNew(nn.Conv2d, 3, 8, 3, 2, { padding: 1, bias: false }),
    ],
    [
      'Conv2d padding mode',
      'Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), padding_mode=reflect)',
      () => new nn.Conv2d(3, 8, 3, { padding: 1, paddingMode: 'reflect' }),
      () => new nn.Conv2d(3, 8, 3, 1, 1, 1, 1, true, 'reflect'),
    ],
    ['Linear', 'Linear(in_features=4, out_features=2, bias=False)', () => new nn.Linear(4, 2, { bias: false }), () => new nn.Linear(4, 2, false)],
    [
      'BatchNorm2d',
      'BatchNorm2d(4, eps=0.001, momentum=None, affine=True, track_running_stats=True)',
      () => new nn.BatchNorm2d(4, { eps: 1e-3, momentum: null }),
      () => new nn.BatchNorm2d(4, 1e-3, null),
    ],
    [
      'MaxPool2d',
      'MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)',
      () => new nn.MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }),
      () => new nn.MaxPool2d({ kernelSize: 3, stride: 2, padding: 1, ceilMode: true }),
      () => new nn.MaxPool2d(3, 2, 1, 1, { ceilMode: true }),
    ],
    [
      'AvgPool2d',
      'AvgPool2d(kernel_size=3, stride=1, padding=1)',
      () => new nn.AvgPool2d(3, 1, 1),
      () => new nn.AvgPool2d(3, { stride: 1, padding: 1 }),
      () => new nn.AvgPool2d({ kernelSize: 3, stride: 1, padding: 1 }),
    ],
    [
      'AdaptiveAvgPool2d',
      'AdaptiveAvgPool2d(output_size=(7, 7))',
      () => new nn.AdaptiveAvgPool2d([7, 7]),
      () => new nn.AdaptiveAvgPool2d({ outputSize: [7, 7] }),
    ],
    ['ReLU', 'ReLU(inplace=True)', () => new nn.ReLU(true), () => new nn.ReLU({ inplace: true })],
    [
      'Dropout',
      'Dropout(p=0.2, inplace=True)',
      () => new nn.Dropout(0.2, true),
      () => new nn.Dropout({ p: 0.2, inplace: true }),
      () => new nn.Dropout(0.2, { inplace: true }),
    ],
    ['Flatten', 'Flatten(start_dim=2, end_dim=-1)', () => new nn.Flatten(2), () => new nn.Flatten({ startDim: 2 })],
  ];

  it.each(FORMS)('%s', (_name, repr, first, ...others) => {
    const want = built(first);
    expect(want.repr).toBe(repr);
    for (const form of others) expect(built(form)).toEqual(want);
  });

  it('CrossEntropyLoss: weight positionally or by name, the rest by name', () => {
    const w = rand(5).add(0.1);
    const a = new nn.CrossEntropyLoss(w, { reduction: 'sum', labelSmoothing: 0.1 });
    const b = new nn.CrossEntropyLoss({ weight: w, reduction: 'sum', labelSmoothing: 0.1 });
    const logits = randn(6, 5);
    const target = randint(0, 5, [6]);
    expect(same(a(logits, target), F.crossEntropy(logits, target, w, { reduction: 'sum', labelSmoothing: 0.1 }))).toBeNull();
    expect(same(b(logits, target), a(logits, target))).toBeNull();
    expect(() => jsNew(nn.CrossEntropyLoss, w, -1)).toThrow(
      /CrossEntropyLoss: too many positional arguments: 2 given where it takes at most 1 \('weight'\); 'ignoreIndex', 'reduction', 'labelSmoothing' only by name/,
    );
  });

  it('refuses a name given twice, a missing kernel size and positional ceilMode (nn.MaxPool2d’s fifth is return_indices)', () => {
    expect(() => new nn.Conv2d(3, 8, 3, { kernelSize: 3 } as never)).toThrow(/^Conv2d: got multiple values for argument 'kernelSize'/);
    expect(() => new nn.Conv2d(3, 8, {} as never)).toThrow(/^Conv2d: missing required argument 'kernelSize'/);
    expect(() => new nn.Conv2d(3, 8, 3, { strid: 2 } as never)).toThrow(/^Conv2d: unknown option 'strid' \(did you mean 'stride'\?\)/);
    expect(() => jsNew(nn.MaxPool2d, 3, 2, 1, 1, true)).toThrow(
      /^MaxPool2d: too many positional arguments: 5 given where it takes at most 4 \('kernelSize', 'stride', 'padding', 'dilation'\); 'ceilMode' only by name/,
    );
    expect(() => new nn.ReLU({ inplace: 'yes' } as never)).toThrow(/^ReLU: inplace must be a boolean, got 'yes' \(string\)/);
    expect(() => new nn.Dropout({ p: 2 })).toThrow(/dropout probability has to be between 0 and 1, but got 2/);
  });

  it('module options carry the functionals’ names (Conv2d’s are conv2d’s but bias, a flag)', () => {
    // A compile-time check as much as a run-time one: conv2d's options, less bias, are Conv2d options.
    const shared: Omit<F.ConvOptions, 'bias'> = { stride: 2, padding: 1, dilation: 1, groups: 1 };
    const opts: nn.Conv2dOptions = { ...shared, bias: true };
    const conv = new nn.Conv2d(3, 8, 3, opts);
    tidy(() => {
      const x = randn(1, 3, 9, 9);
      expect(same(conv(x), F.conv2d(x, conv.weight, { ...shared, bias: conv.bias }))).toBeNull();
    });
    conv.dispose();
  });
});

describe('argument helpers', () => {
  it('isPlainObject: object literals from any realm, not Tensors, arrays, null or class instances', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject(Object.create(null))).toBe(true);
    expect(isPlainObject(runInNewContext('({ a: 1 })'))).toBe(true);
    const t = randn(2);
    expect(isPlainObject(t)).toBe(false);
    t.dispose();
    for (const v of [[], null, undefined, 1, 'a', new Map(), new (class Options {})(), () => 0]) expect(isPlainObject(v)).toBe(false);
  });

  it('parseArgs: positional in order, then names; undefined is not given', () => {
    expect(parseArgs('f()', [1, undefined, { c: 3 }], ['a', 'b', 'c'])).toEqual({ a: 1, c: 3 });
    expect(parseArgs('f()', [], ['a'])).toEqual({});
    expect(parseArgs('f()', [null], ['a'])).toEqual({ a: null });
    expect(() => parseArgs('f()', [{ alpha: 1, zeta: 2 }], ['alpha'])).toThrow(/^f\(\): unknown option 'zeta'; allowed: 'alpha'$/);
  });

  it('one pair() (nn layers, functional, transforms) and one snakeCase() (module state keys, optimizer state)', () => {
    expect(pair(3)).toEqual([3, 3]);
    expect(pair([2, 5])).toEqual([2, 5]);
    expect(pair([4])).toEqual([4, 4]);
    expect(pair(null)).toEqual([null, null]);
    expect(snakeCase('runningMean')).toBe('running_mean');
    expect(snakeCase('numBatchesTracked')).toBe('num_batches_tracked');
    expect(snakeCase('weightDecay')).toBe('weight_decay');
  });
});
