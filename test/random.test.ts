// Seeded randomness and creation functions against PyTorch, plus the native-core
// issue's headline example end to end.
import { describe, expect, it } from 'vitest';
import {
  F,
  type Tensor,
  arange,
  empty,
  eye,
  full,
  getRngState,
  linspace,
  manualSeed,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  randnLike,
  setNumThreads,
  setRngState,
  tensor,
  tidy,
  zeros,
} from '../lib/index.js';
import { type EncodedTensor, bitwiseDiff, decode, hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { type Budget, NORMAL_DRAW, absDouble, closeDiff, normalDrawBudget } from './tolerance.js';

interface Fixture {
  headline: { x: EncodedTensor; loss: EncodedTensor; grad: EncodedTensor; gradSum: EncodedTensor };
  streams: Record<string, EncodedTensor>;
  state: EncodedTensor;
  afterState: EncodedTensor;
  creation: Record<string, EncodedTensor>;
}

/**
 * Checks every value; `exact`: bit for bit (the live oracle on this machine), else
 * the random draws and what is computed from them within the budget of another CPU
 * (tolerance.ts). Integer draws, masks, states and creation functions stay exact.
 */
function checkAll(fx: Fixture, exact: boolean): void {
  setNumThreads(2);
  const problems: string[] = [];
  const expectSame = (actual: Tensor, expected: EncodedTensor, what: string, budget?: Budget): void => {
    const d = budget && !exact ? closeDiff(actual, expected, budget) : bitwiseDiff(actual, expected);
    if (d) problems.push(`${what}: ${d}`);
  };
  /** Uniform draws: at most two roundings (scale, then shift) of |from| + |to − from|. */
  const uniform = (from: number, to: number): Budget => ({ n: 2, scale: Math.abs(from) + Math.abs(to - from) });
  tidy(() => {
    // Headline example.
    manualSeed(777);
    const x = randn(2, 3, 32, 32);
    const w = randn([8, 3, 3, 3], { requiresGrad: true });
    const y = F.conv2d(x, w, null, 1, 1).relu();
    const loss = F.crossEntropy(y.flatten(1).index(':', ':10'), tensor([1, 2]));
    loss.backward();
    // The headline's own budget: the same program in float64 on |x| and |w| is Σ|terms| of its
    // convolution (27 terms), of the gradient (2·32·32 terms) and of its sum; x and w are draws.
    let headline: { loss: Budget; grad: Budget; gradSum: Budget } | undefined;
    if (!exact) {
      const xs = absDouble(x);
      const ws = absDouble(w).requiresGrad_();
      const ys = F.conv2d(xs, ws, null, 1, 1);
      const ls = F.crossEntropy(ys.flatten(1).index(':', ':10'), tensor([1, 2]));
      ls.backward();
      const n = 27 + 2 * 32 * 32 + 8 * 27 + 2 * NORMAL_DRAW;
      headline = {
        loss: { n, scale: ls.add(absDouble(loss)) },
        grad: { n, scale: ws.grad!.add(absDouble(w.grad!)) },
        gradSum: { n, scale: ws.grad!.sum().add(absDouble(w.grad!.sum())) },
      };
    }
    expectSame(x, fx.headline.x, 'x', normalDrawBudget(x));
    expectSame(loss, fx.headline.loss, 'loss', headline?.loss);
    expectSame(w.grad!, fx.headline.grad, 'w.grad', headline?.grad);
    expectSame(w.grad!.sum(), fx.headline.gradSum, 'w.grad.sum()', headline?.gradSum);

    // Random streams, drawn in the same order as the oracle.
    manualSeed(1);
    const s = fx.streams;
    expectSame(rand(5), s.rand, 'rand', uniform(0, 1));
    expectSame(randint(0, 10, [6]), s.randint, 'randint');
    expectSame(randint(7, [2, 3]), s.randint_high, 'randint(high)');
    const drawn = (t: Tensor, e: EncodedTensor, what: string): void => expectSame(t, e, what, normalDrawBudget(t));
    drawn(randn(3, 2), s.randn, 'randn');
    drawn(empty(4).normal_(2, 3), s.normal_, 'normal_');
    expectSame(empty(4).uniform_(-1, 1), s.uniform_, 'uniform_', uniform(-1, 1));
    expectSame(F.dropout(ones(4, 8), 0.3, true), s.dropout, 'dropout mask');
    const buf = ones(4, 8);
    F.dropout(buf, 0.5, true, true);
    expectSame(buf, s.dropout_inplace, 'dropout inplace');
    drawn(randnLike(zeros([2, 2], { dtype: 'float64' })), s.randn_like, 'randnLike');
    drawn(randn([3], { dtype: 'float64' }), s.randn_f64, 'randn float64');

    // RNG state round trip, byte-identical to torch.get_rng_state().
    manualSeed(5);
    randn(10);
    const state = getRngState();
    expectSame(state, fx.state, 'rng state');
    randn(100);
    setRngState(decode(fx.state));
    drawn(randn(4), fx.afterState, 'stream after setRngState');

    const c = fx.creation;
    expectSame(arange(5), c.arange_int, 'arange(5)');
    expectSame(arange(0, 2, 0.25), c.arange_float, 'arange float');
    expectSame(arange(-3, 7, 2), c.arange_start, 'arange start');
    expectSame(linspace(-1, 1, 7), c.linspace, 'linspace', { n: 3, scale: 2 }); // start + i·step: a product and a sum of terms ≤ 2
    expectSame(eye(3), c.eye, 'eye');
    expectSame(eye(2, 4), c.eye_rect, 'eye rect');
    expectSame(full([2, 2], 3), c.full_int, 'full int');
    expectSame(full([2], 0.5), c.full_float, 'full float');
    expectSame(zeros([2, 3], { dtype: 'float64' }), c.zeros_f64, 'zeros f64');
    expectSame(ones([3], { dtype: 'int32' }), c.ones_i32, 'ones i32');
    expectSame(
      tensor([
        [1, 2],
        [3, 4],
      ]),
      c.tensor_int,
      'tensor int',
    );
    expectSame(
      tensor([
        [1.5, 2],
        [3, 4],
      ]),
      c.tensor_float,
      'tensor float',
    );
    expectSame(tensor([true, false, true]), c.tensor_bool, 'tensor bool');
    expectSame(tensor([0.1, 1000.5, -2.25], { dtype: 'float16' }).float(), c.tensor_half, 'tensor half');
    expect(onesLike(x).shape).toEqual([2, 3, 32, 32]);
  });
  expect(problems).toEqual([]);
}

describe('random numbers and creation against PyTorch', () => {
  it('matches the committed fixture (draws within the rounding budget of another CPU)', () => {
    checkAll(readFixture<Fixture>('rng.json'), false);
  });
  it.skipIf(!hasTorchPython && !requireLiveOracle)('matches a live run of the oracle bit for bit', async () => {
    checkAll(await runOracle<Fixture>('scripts/fixtures/rng.py'), true);
  });
  it('the same seed gives the same stream, another seed another', () => {
    tidy(() => {
      manualSeed(42);
      const a = randn(16);
      manualSeed(42);
      const b = randn(16);
      manualSeed(43);
      const c = randn(16);
      expect(a.equal(b)).toBe(true);
      expect(a.equal(c)).toBe(false);
    });
  });
});
