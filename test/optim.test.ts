// Optimizers against torch.optim: 20 steps from the same start with the same
// gradients must give PyTorch's parameters and state bit for bit. The committed
// fixture (scripts/fixtures/optim.py) makes this run without Python; where
// /usr/bin/python3 has torch, the oracle is re-run live and compared too.
//
// The committed fixture was written by torch 1.13 on another CPU. Its values are
// compared within a rounding budget, which also covers releases whose Adam
// rounds differently (see ROUNDINGS_PER_STEP); its state-dict layouts are
// translated to the running torch's (optim-layout.ts). The live oracle is the
// running torch itself and is compared bit for bit, layouts as they are.
import { describe, expect, it } from 'vitest';
import { Tensor, enableGrad, memory, nn, noGrad, tidy, zeros } from '../lib/index.js';
import * as optim from '../lib/optim/index.js';
import { optimRules, rules } from '../lib/optim/releases.js';
import { releaseOf } from '../lib/runtime.js';
import { type EncodedTensor, bitwiseDiff, decode, hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { FIXTURE_TORCH, groupsAsRunning, stateAsRunning } from './optim-layout.js';
import { type Budget, absDouble, closeDiff } from './tolerance.js';

type Plain = null | number | boolean | string | Plain[] | { tensor: EncodedTensor } | { __map__: [unknown, Plain][] } | { [k: string]: Plain };
interface PyOptState {
  state: [number, Record<string, Plain>][];
  param_groups: Record<string, Plain>[];
}
interface OptCase {
  name: string;
  optimizer: 'SGD' | 'Adam' | 'AdamW';
  kwargs: Record<string, Plain>;
  groups: (Record<string, Plain> & { params: number[] })[] | null;
  lrChanges: [number, number][];
  init: EncodedTensor[];
  grads: (EncodedTensor | null)[][];
  after: EncodedTensor[][];
  midState: PyOptState;
  finalState: PyOptState;
}
interface Fixture {
  torch: string;
  optimizers: OptCase[];
}

const MID = 10;
const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const camelKeys = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));

function makeOptimizer(c: OptCase, params: Tensor[]): optim.Optimizer {
  const input = c.groups === null ? params : c.groups.map((g) => ({ ...camelKeys(g), params: g.params.map((i) => params[i]) }));
  const opts = camelKeys(c.kwargs);
  switch (c.optimizer) {
    case 'SGD':
      return new optim.SGD(input as Tensor[], opts);
    case 'Adam':
      return new optim.Adam(input as Tensor[], opts);
    case 'AdamW':
      return new optim.AdamW(input as Tensor[], opts);
  }
}

const isTensorPlain = (v: unknown): v is { tensor: EncodedTensor } => v !== null && typeof v === 'object' && 'tensor' in v;

type Layout = 'python' | 'python-object-keys' | 'python-pth-maps';

/**
 * Python's state dict (JSON form) with tensors decoded: `state` as a Map of
 * index → state, or as an object keyed by strings; or, as the project's .pth
 * reader returns it, every dict a Map and every tuple (betas) a frozen array.
 */
function pyStateToTs(py: PyOptState, layout: Layout): optim.OptimizerStateDictInput {
  const entries = py.state.map(
    ([k, s]) => [k, Object.fromEntries(Object.entries(s).map(([n, v]) => [n, isTensorPlain(v) ? decode(v.tensor) : v]))] as [number, Record<string, unknown>],
  );
  if (layout === 'python-object-keys') {
    return { state: Object.fromEntries(entries.map(([k, v]) => [String(k), v])), param_groups: py.param_groups };
  }
  if (layout === 'python-pth-maps') {
    const groups = py.param_groups.map((g) => new Map(Object.entries(g).map(([k, v]) => [k, k === 'betas' ? Object.freeze(v) : v])));
    return new Map<string, unknown>([
      ['state', new Map(entries.map(([k, v]) => [k, new Map(Object.entries(v))]))],
      ['param_groups', groups],
    ]) as never;
  }
  return { state: new Map(entries), param_groups: py.param_groups };
}

/** Differences between a TypeScript state dict and PyTorch's, in content and in order. */
function stateDiff(sd: optim.OptimizerStateDict, py: PyOptState, stateOrder = true, budget?: Budgets['state']): string[] {
  const problems: string[] = [];
  const sorted = (k: number[]): number[] => (stateOrder ? k : [...k].sort((a, b) => a - b));
  const keys = sorted([...sd.state.keys()]);
  const pyKeys = sorted(py.state.map(([k]) => k));
  if (keys.join() !== pyKeys.join()) problems.push(`state keys [${keys}] != [${pyKeys}]`);
  for (const [k, pyState] of py.state) {
    const s = sd.state.get(k);
    if (!s) continue;
    if (Object.keys(s).join() !== Object.keys(pyState).join()) problems.push(`state[${k}] keys ${Object.keys(s)} != ${Object.keys(pyState)}`);
    for (const [n, v] of Object.entries(pyState)) {
      const mine = s[n];
      if (isTensorPlain(v)) {
        if (!(mine instanceof Tensor)) problems.push(`state[${k}].${n} is not a Tensor`);
        else {
          const d = budget ? closeDiff(mine, v.tensor, budget(k, mine)) : bitwiseDiff(mine, v.tensor);
          if (d) problems.push(`state[${k}].${n}: ${d}`);
        }
      } else if (mine !== v) problems.push(`state[${k}].${n}: ${String(mine)} != ${String(v)}`);
    }
  }
  if (JSON.stringify(sd.param_groups) !== JSON.stringify(py.param_groups)) {
    problems.push(`param_groups ${JSON.stringify(sd.param_groups)} != ${JSON.stringify(py.param_groups)}`);
  }
  return problems;
}

function setGrads(params: Tensor[], grads: (EncodedTensor | null)[]): void {
  params.forEach((p, j) => {
    const g = grads[j];
    p.grad = g === null ? null : decode(g);
  });
}

function applyLrChanges(opt: optim.Optimizer, c: OptCase, step: number): void {
  for (const [at, lr] of c.lrChanges) if (at === step) for (const g of opt.paramGroups) g.lr = lr;
}

function checkParams(params: Tensor[], expected: EncodedTensor[], label: string, problems: string[], budget?: (j: number) => Budget): void {
  params.forEach((p, j) => {
    const d = budget ? closeDiff(p, expected[j], budget(j)) : bitwiseDiff(p, expected[j]);
    if (d) problems.push(`${label} param ${j}: ${d}`);
  });
}

/**
 * Roundings of one optimizer step on one element, at most: two moving averages
 * (2 each), two bias corrections, a square root, ε, a division, the learning
 * rate, weight decay (2), AMSGrad's maximum and the update itself.
 *
 * torch ≥ 2.1 computes Adam's first moment as `m.lerp_(g, w)` (w = 1 − β1): on
 * the CPU `m + w·(g − m)` for w < 0.5, else `g − (1 − w)·(g − m)`, 3 roundings
 * (2 with FMA) of terms adding up to at most 2·(|m| + |g|), where 1.13's
 * `m·β1 + w·g` has 2 to 3 roundings of |m| + |g|. Both stay within this count and
 * the state's scale (every past |g| and the current |m| are in it), so the
 * budget still bounds a lerp result against the fixture's mul/add one: each is
 * within γ(n)·S of the exact value, the two within 2·γ(n)·S. The same holds for
 * `bc2 ** 0.5` (pow, within an ulp) against 1.13's correctly rounded sqrt.
 */
const ROUNDINGS_PER_STEP = 16;

interface Budgets {
  /** Parameter j after `step` steps. */
  param: (step: number, j: number) => Budget;
  /** A state tensor of the parameter with state-dict key k (one budget for all of them). */
  state: (k: number, t: Tensor) => Budget;
}

/**
 * The cross-CPU budget of a case (tolerance.ts), from PyTorch's own trajectory:
 * a parameter is its start plus every update so far, so Σ|terms| is |p| plus
 * Σ|p_t − p_{t−1}|; the state (momentum, exp_avg, exp_avg_sq) is a weighted sum,
 * with weights ≤ 1, of the gradients, their squares and the decayed parameters.
 * The gradients are given, so an error in one step does not feed the next
 * gradient; it only adds its own roundings.
 */
function budgetsOf(c: OptCase, upTo: number): Budgets {
  const decays = [c.kwargs.weight_decay, ...(c.groups ?? []).map((g) => g.weight_decay)].map((v) => (typeof v === 'number' ? v : 0));
  const decay = Math.max(0, ...decays);
  // State-dict keys number the parameters group by group.
  const order = c.groups ? c.groups.flatMap((g) => g.params) : c.init.map((_, j) => j);
  const moved: Tensor[][] = [];
  const fed: Tensor[] = c.init.map((e) => absDouble(decode(e)).mul(0));
  let previous = c.init.map(decode);
  let total = previous.map((p) => absDouble(p).mul(0));
  for (let step = 0; step < upTo; step++) {
    const now = c.after[step].map(decode);
    total = total.map((t, j) => t.add(absDouble(now[j].sub(previous[j]))));
    c.grads[step].forEach((g, j) => {
      if (g)
        fed[j] = fed[j]
          .add(absDouble(decode(g)))
          .add(absDouble(decode(g)).pow(2))
          .add(absDouble(previous[j]).mul(decay));
    });
    moved.push(total);
    previous = now;
  }
  return {
    param: (step, j) => ({ n: ROUNDINGS_PER_STEP * step, scale: moved[step - 1][j].add(absDouble(decode(c.after[step - 1][j]))) }),
    // The 0-d `step` counter is a count, exact in float: a budget of a single rounding of itself.
    state: (k, t) => (t.dim() === 0 ? { n: 1, scale: absDouble(t) } : { n: ROUNDINGS_PER_STEP * upTo, scale: fed[order[k]].add(absDouble(t)) }),
  };
}

/**
 * PyTorch's state dict as the running torch writes it: the live oracle's as it
 * is (`exact`), the committed 1.13 fixture's translated to the running torch's
 * layout; `loaded`: by an optimizer that loaded the 1.13 state dict.
 */
function asRunning(c: OptCase, py: PyOptState, exact: boolean, loaded = false): PyOptState {
  if (exact) return py;
  return {
    state: stateAsRunning(c.optimizer, py.state, loaded),
    param_groups: groupsAsRunning(c.optimizer, py.param_groups, loaded) as PyOptState['param_groups'],
  };
}

/** Replays a case from the start (or, with `resumeFrom`, from PyTorch's state after MID steps); returns mismatches. */
function replay(c: OptCase, exact: boolean, resumeFrom?: Layout): string[] {
  return tidy(() => {
    const problems: string[] = [];
    const mid = exact ? undefined : budgetsOf(c, MID);
    const final = exact ? undefined : budgetsOf(c, c.after.length);
    const first = resumeFrom ? MID : 0;
    const start = resumeFrom ? c.after[MID - 1] : c.init;
    const params = start.map((e) => decode(e).requiresGrad_());
    const opt = makeOptimizer(c, params);
    if (resumeFrom) opt.loadStateDict(pyStateToTs(c.midState, resumeFrom));
    for (let step = first; step < c.after.length; step++) {
      applyLrChanges(opt, c, step);
      setGrads(params, c.grads[step]);
      opt.step();
      checkParams(params, c.after[step], `step ${step + 1}:`, problems, final && ((j) => final.param(step + 1, j)));
      if (step + 1 === MID)
        problems.push(...stateDiff(opt.stateDict(), asRunning(c, c.midState, exact), true, mid?.state).map((p) => `after ${MID} steps: ${p}`));
    }
    // A plain object orders integer keys ascending, so state loaded from one keeps that order.
    const expected = asRunning(c, c.finalState, exact, resumeFrom !== undefined);
    problems.push(...stateDiff(opt.stateDict(), expected, resumeFrom !== 'python-object-keys', final?.state).map((p) => `final: ${p}`));
    opt.dispose();
    return problems.slice(0, 10);
  });
}

function check(fixture: Fixture, exact: boolean): void {
  const failures: string[] = [];
  for (const c of fixture.optimizers) for (const p of replay(c, exact)) failures.push(`${c.name}: ${p}`);
  expect(failures).toEqual([]);
}

const fixture = readFixture<Fixture>('optim.json');

describe('optimizers against torch.optim (committed fixture)', () => {
  it('covers SGD, Adam and AdamW in every configuration', () => {
    // optim-layout.ts translates from this release's layouts.
    expect(fixture.torch).toMatch(FIXTURE_TORCH);
    expect(fixture.optimizers.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'sgd_plain',
        'sgd_momentum_dampening',
        'sgd_nesterov_wd',
        'sgd_maximize',
        'adam_default',
        'adam_amsgrad_wd',
        'adamw',
        'sgd_groups',
        'adam_groups',
        'sgd_lr_change',
        'adam_lr_change',
      ]),
    );
  });

  it("20 steps give PyTorch's parameters and state dicts, within the rounding budget of another CPU", () => {
    check(fixture, false);
  });

  it("loading PyTorch's state dict after 10 steps continues as PyTorch", () => {
    const failures: string[] = [];
    for (const c of fixture.optimizers) {
      for (const p of replay(c, false, 'python')) failures.push(`${c.name}: ${p}`);
    }
    // `state` keyed by strings (as a JSON or object-based reader gives it) loads the same.
    for (const p of replay(fixture.optimizers.find((c) => c.name === 'adam_groups')!, false, 'python-object-keys')) failures.push(`object keys: ${p}`);
    // As the .pth reader hands over PyTorch's file: every dict a Map, tuples frozen.
    for (const c of fixture.optimizers) for (const p of replay(c, false, 'python-pth-maps')) failures.push(`${c.name} (Maps): ${p}`);
    expect(failures).toEqual([]);
  });

  it('stateDict → new optimizer → loadStateDict gives identical next steps', () => {
    const failures: string[] = [];
    for (const c of fixture.optimizers) {
      tidy(() => {
        const budgets = budgetsOf(c, c.after.length);
        const a = c.init.map((e) => decode(e).requiresGrad_());
        const optA = makeOptimizer(c, a);
        for (let step = 0; step < MID; step++) {
          applyLrChanges(optA, c, step);
          setGrads(a, c.grads[step]);
          optA.step();
        }
        const b = a.map((p) => p.detach().clone().requiresGrad_());
        const optB = makeOptimizer(c, b);
        tidy(() => optB.loadStateDict(optA.stateDict()));
        for (let step = MID; step < c.after.length; step++) {
          for (const [opt, ps, who] of [
            [optA, a, 'original'],
            [optB, b, 'restored'],
          ] as const) {
            applyLrChanges(opt, c, step);
            setGrads(ps, c.grads[step]);
            opt.step();
            checkParams(ps, c.after[step], `${c.name} ${who} step ${step + 1}:`, failures, (j) => budgets.param(step + 1, j));
          }
          // The restored optimizer continues bit for bit as the original.
          a.forEach((p, j) => expect(p.equal(b[j]), `${c.name} step ${step + 1} param ${j}`).toBe(true));
        }
        failures.push(...stateDiff(optB.stateDict(), asRunning(c, c.finalState, false), true, budgets.state).map((p) => `${c.name} restored final: ${p}`));
        optA.dispose();
        optB.dispose();
      });
    }
    expect(failures).toEqual([]);
  });

  it("the state dict has PyTorch's layout: integer keys, snake_case names, params as index lists", () => {
    tidy(() => {
      const w = zeros(2, 2).requiresGrad_();
      const b = zeros(2).requiresGrad_();
      const opt = new optim.Adam(
        [
          { params: [w], lr: 0.1 },
          { params: b, amsgrad: true },
        ],
        { weightDecay: 0.5 },
      );
      w.grad = zeros(2, 2).add(1);
      b.grad = zeros(2).add(1);
      opt.step();
      const sd = opt.stateDict();
      expect(sd.state).toBeInstanceOf(Map);
      expect([...sd.state.keys()]).toEqual([0, 1]);
      expect(Object.keys(sd.state.get(0)!)).toEqual(['step', 'exp_avg', 'exp_avg_sq']);
      expect(Object.keys(sd.state.get(1)!)).toEqual(['step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']);
      const step = sd.state.get(0)!.step as Tensor;
      expect([step.dtype, step.shape, step.item()]).toEqual(['float32', [], 1]);
      // fused defaults to False in torch 1.13's Adam, to None from 2.0.
      const fused = rules.adamFusedNone ? null : false;
      expect(sd.param_groups).toEqual([
        {
          lr: 0.1,
          betas: [0.9, 0.999],
          eps: 1e-8,
          weight_decay: 0.5,
          amsgrad: false,
          maximize: false,
          foreach: null,
          capturable: false,
          differentiable: false,
          fused,
          params: [0],
        },
        {
          amsgrad: true,
          lr: 0.001,
          betas: [0.9, 0.999],
          eps: 1e-8,
          weight_decay: 0.5,
          maximize: false,
          foreach: null,
          capturable: false,
          differentiable: false,
          fused,
          params: [1],
        },
      ]);
      // betas is a tuple in PyTorch: a frozen array, which the .pth writer saves as a tuple.
      expect(Object.isFrozen(sd.param_groups[0].betas)).toBe(true);
      expect(Object.isFrozen(sd.param_groups[0].params)).toBe(false);
      // Plain data only: Maps, objects, arrays, numbers, booleans, null, Tensors.
      const sgd = new optim.SGD([w], { lr: 0.1 });
      sgd.step();
      // Without momentum torch 1.13 records a None buffer, torch 2.x no state.
      expect(sgd.stateDict().state.get(0)).toEqual(rules.sgdFused ? undefined : { momentum_buffer: null });
      // The state dict's tensors are new handles: disposing them leaves the optimizer's state intact.
      for (const s of sd.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
      expect((opt.state.get(w)!.expAvg as Tensor).isDisposed).toBe(false);
      opt.dispose();
      sgd.dispose();
    });
  });

  it('an Adam checkpoint with a number step (PyTorch < 1.12) loads with a tensor step', () => {
    tidy(() => {
      const w = zeros(3).requiresGrad_();
      const opt = new optim.Adam([w]);
      opt.loadStateDict({
        state: new Map([[0, { step: 4, exp_avg: zeros(3), exp_avg_sq: zeros(3) }]]),
        param_groups: [{ lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false, params: [0] }],
      });
      const step = opt.state.get(w)!.step as Tensor;
      expect([step.dtype, step.item()]).toEqual(['float32', 4]);
      // Missing options (maximize, foreach, …) are filled in from the defaults, as PyTorch's __setstate__ does.
      expect(opt.paramGroups[0].maximize).toBe(false);
      expect(opt.paramGroups[0].params[0]).toBe(w);
      opt.dispose();
    });
  });

  it('a checkpoint mixing tensor and number steps upgrades as the running torch does', () => {
    tidy(() => {
      const w = zeros(2).requiresGrad_();
      const v = zeros(2).requiresGrad_();
      const opt = new optim.Adam([w, v]);
      opt.loadStateDict({
        state: new Map([
          [0, { step: zeros([]).add(3), exp_avg: zeros(2), exp_avg_sq: zeros(2) }],
          [1, { step: 4, exp_avg: zeros(2), exp_avg_sq: zeros(2) }],
        ]),
        param_groups: [{ lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false, params: [0, 1] }],
      });
      // Python's load_state_dict of the same dict: 1.13 looks at the first step only and leaves the 4; 2.6 converts it.
      const step = opt.state.get(v)!.step;
      if (rules.adamStepUpgradeEach) expect(step instanceof Tensor ? [step.dtype, step.item()] : step).toEqual(['float32', 4]);
      else expect(step).toBe(4);
      opt.dispose();
    });
  });

  it("loaded state is cast to each parameter's dtype, except step", () => {
    tidy(() => {
      const w = zeros([2], { dtype: 'float64' }).requiresGrad_();
      const opt = new optim.Adam([w]);
      opt.loadStateDict({
        state: new Map([[0, { step: zeros([]).add(2), exp_avg: zeros(2), exp_avg_sq: zeros(2) }]]),
        param_groups: [{ ...opt.stateDict().param_groups[0] }],
      });
      const s = opt.state.get(w)!;
      expect([(s.step as Tensor).dtype, (s.expAvg as Tensor).dtype, (s.expAvgSq as Tensor).dtype]).toEqual(['float32', 'float64', 'float64']);
      opt.dispose();
    });
  });
});

describe('torch release rules (lib/optim/releases.ts)', () => {
  it('reads the release from version strings as libtorch and pip write them', () => {
    expect(releaseOf('1.13.0a0')).toEqual([1, 13]);
    expect(releaseOf('2.6.0+debian')).toEqual([2, 6]);
    expect(releaseOf('2.13.0+cpu')).toEqual([2, 13]);
    expect(() => releaseOf('latest')).toThrow(/not a torch version/);
  });

  it('switches on what the verified releases do: 1.13 none, 2.6 all but the later LBFGS line-search bound, 2.13 all', () => {
    const on = (v: string): string[] =>
      Object.entries(optimRules(v))
        .filter(([, x]) => x)
        .map(([k]) => k);
    const all = Object.keys(optimRules('1.13.0'));
    expect(on('1.13.0a0')).toEqual([]);
    expect(on('2.6.0+debian')).toEqual(all.filter((k) => k !== 'lbfgsLineSearchWithinMaxEval'));
    expect(on('2.13.0+cpu')).toEqual(all);
  });
});

describe('optimizer behaviour', () => {
  it('zeroGrad sets gradients to null by default, or to zeros', () => {
    tidy(() => {
      const w = zeros(3).requiresGrad_();
      const opt = new optim.SGD([w], { lr: 0.1 });
      w.grad = zeros(3).add(2);
      opt.zeroGrad({ setToNone: false });
      expect(w.grad!.tolist()).toEqual([0, 0, 0]);
      opt.zeroGrad();
      expect(w.grad).toBe(null);
    });
  });

  it('skips parameters without a gradient and creates no state for them', () => {
    tidy(() => {
      const w = zeros(2).requiresGrad_();
      const v = zeros(2).requiresGrad_();
      const opt = new optim.Adam([w, v], { lr: 0.1 });
      v.grad = zeros(2).add(1);
      opt.step();
      expect(w.tolist()).toEqual([0, 0]);
      expect(opt.state.has(w)).toBe(false);
      expect([...opt.stateDict().state.keys()]).toEqual([1]);
      opt.dispose();
    });
  });

  it('state survives a tidy around the step, and dispose() frees it', () => {
    const before = memory().tensors;
    const model = new nn.Linear(4, 3);
    const opt = new optim.Adam(model.parameters(), { lr: 0.01, amsgrad: true });
    const withModel = memory().tensors;
    for (let i = 0; i < 5; i++) {
      tidy(() => {
        opt.zeroGrad();
        const loss = model(zeros(2, 4).add(1)).pow(2).sum();
        loss.backward();
        opt.step();
      });
    }
    // 2 parameters × (step, exp_avg, exp_avg_sq, max_exp_avg_sq), and the gradients.
    const state = [...opt.state.values()].flatMap((s) => Object.values(s));
    expect(state).toHaveLength(8);
    expect(state.every((t) => t instanceof Tensor && !t.isDisposed)).toBe(true);
    opt.zeroGrad();
    expect(memory().tensors).toBe(withModel + 8);
    opt.dispose();
    expect(memory().tensors).toBe(withModel);
    model.dispose();
    expect(memory().tensors).toBe(before);
  });

  it('a step leaves no temporaries behind', () => {
    tidy(() => {
      const w = zeros(5).requiresGrad_();
      const opts = { lr: 0.1 };
      for (const opt of [
        new optim.SGD([w], { ...opts, momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
        new optim.Adam([w], opts),
        new optim.AdamW([w], { ...opts, maximize: true }),
      ]) {
        w.grad = zeros(5).add(1);
        opt.step();
        const n = memory().tensors;
        opt.step();
        expect(memory().tensors).toBe(n);
        opt.dispose();
      }
    });
  });

  it('step(closure) runs the closure with gradients enabled and returns its loss', () => {
    tidy(() => {
      const w = zeros(2).requiresGrad_();
      const opt = new optim.SGD([w], { lr: 0.5 });
      const loss = noGrad(() =>
        opt.step(() => {
          opt.zeroGrad();
          const l = w.sub(1).pow(2).sum();
          l.backward();
          return l.item();
        }),
      );
      expect(loss).toBe(2);
      expect(w.tolist()).toEqual([1, 1]);
      expect(enableGrad(() => w.requiresGrad)).toBe(true);
    });
  });

  it('trains a small model: SGD with momentum lowers the loss', () => {
    tidy(() => {
      const model = new nn.Linear(3, 1);
      const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      const x = zeros(8, 3).add(0.5);
      const y = zeros(8, 1).add(2);
      const lossAt = (): number => tidy(() => model(x).sub(y).pow(2).mean().item() as number);
      const first = lossAt();
      for (let i = 0; i < 30; i++) {
        tidy(() => {
          opt.zeroGrad();
          model(x).sub(y).pow(2).mean().backward();
          opt.step();
        });
      }
      expect(lossAt()).toBeLessThan(first / 10);
      opt.dispose();
    });
  });

  it('prints like PyTorch', () => {
    tidy(() => {
      const w = zeros(2).requiresGrad_();
      const opt = new optim.SGD([{ params: [w], momentum: 0.5 }], { lr: 0.1 });
      // Python: print(torch.optim.SGD([{'params': [w], 'momentum': 0.5}], lr=0.1)); torch 2.x adds fused.
      expect(String(opt)).toBe(
        'SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n    foreach: None\n' +
          `${rules.sgdFused ? '    fused: None\n' : ''}    lr: 0.1\n` +
          '    maximize: False\n    momentum: 0.5\n    nesterov: False\n    weight_decay: 0\n)',
      );
    });
  });
});

describe('optimizer errors', () => {
  const w = zeros(2).requiresGrad_();

  it("rejects bad options with PyTorch's messages", () => {
    expect(() => new optim.SGD([w], { lr: -0.1 })).toThrow(new RangeError('Invalid learning rate: -0.1'));
    expect(() => new optim.Adam([w], { lr: -1 })).toThrow(RangeError);
    expect(() => new optim.SGD([w], { lr: Number.NaN })).toThrow(/Invalid learning rate: NaN/);
    expect(() => new optim.SGD([w], { lr: 0.1, momentum: -0.5 })).toThrow(/Invalid momentum value: -0.5/);
    expect(() => new optim.SGD([w], { lr: 0.1, weightDecay: -1 })).toThrow(/Invalid weightDecay value: -1/);
    expect(() => new optim.SGD([w], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening/);
    expect(() => new optim.SGD([w], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new optim.Adam([w], { betas: [1, 0.999] })).toThrow(new RangeError('Invalid beta parameter at index 0: 1'));
    expect(() => new optim.Adam([w], { betas: [0.9, -0.1] })).toThrow(new RangeError('Invalid beta parameter at index 1: -0.1'));
    expect(() => new optim.AdamW([w], { betas: [0.9, 1] })).toThrow(/Invalid beta parameter at index 1: 1/);
    expect(() => new optim.Adam([w], { betas: [0.9] as unknown as [number, number] })).toThrow(TypeError);
    expect(() => new optim.Adam([w], { eps: -1e-8 })).toThrow(/Invalid epsilon value/);
    expect(() => new optim.AdamW([w], { weightDecay: -0.01 })).toThrow(/Invalid weightDecay value/);
    expect(() => new optim.Adam([w], { lr: '0.1' as unknown as number })).toThrow(new TypeError("learning rate must be a number, got '0.1' (string)"));
    // Options given to a group are checked too.
    expect(() => new optim.Adam([{ params: [w], betas: [0.9, 2] }])).toThrow(/index 1: 2/);
    // SGD's lr is required in torch 1.13 and defaults to 1e-3 from 2.2.
    if (rules.sgdDefaultLr) expect(new optim.SGD([w]).paramGroups[0].lr).toBe(1e-3);
    else expect(() => new optim.SGD([w])).toThrow(/didn't specify a value of required optimization parameter lr/);
  });

  it('rejects parameters that are not leaf Tensors', () => {
    expect(() => new optim.SGD([1, 2] as unknown as Tensor[], { lr: 0.1 })).toThrow(
      new TypeError('optimizer can only optimize Tensors, but one of the params is 1'),
    );
    expect(() => new optim.SGD([w, 'x'] as unknown as Tensor[], { lr: 0.1 })).toThrow(/one of the params is 'x' \(string\)/);
    expect(() => new optim.SGD([{ params: [w, {}] }] as never, { lr: 0.1 })).toThrow(/one of the params is an object/);
    expect(() => new optim.SGD(w as never, { lr: 0.1 })).toThrow(/iterable of Tensors or parameter groups, but got Tensor/);
    expect(() => new optim.SGD(5 as never, { lr: 0.1 })).toThrow(TypeError);
    expect(() => new optim.SGD([], { lr: 0.1 })).toThrow(/optimizer got an empty parameter list/);
    tidy(() => expect(() => new optim.SGD([w.mul(2)], { lr: 0.1 })).toThrow(/can't optimize a non-leaf Tensor/));
    expect(() => new optim.SGD([{ params: [w] }, { params: [w] }], { lr: 0.1 })).toThrow(/some parameters appear in more than one parameter group/);
  });

  it('rejects a state dict that does not match the optimizer, and stays unchanged', () => {
    tidy(() => {
      const v = zeros(3).requiresGrad_();
      const one = new optim.SGD([w, v], { lr: 0.1, momentum: 0.9 });
      const two = new optim.SGD([{ params: [w] }, { params: [v] }], { lr: 0.1, momentum: 0.9 });
      expect(() => one.loadStateDict(two.stateDict())).toThrow(
        new Error('loaded state dict has a different number of parameter groups (2, the optimizer has 1)'),
      );
      const three = new optim.SGD([{ params: [w, v] }, { params: [zeros(1).requiresGrad_()] }], { lr: 0.1 });
      expect(() => two.loadStateDict(three.stateDict())).toThrow(/doesn't match the size of optimizer's group/);
      expect(() => one.loadStateDict({} as never)).toThrow(/no 'param_groups' array/);
      const bad = one.stateDict();
      bad.param_groups[0].lr = -1;
      expect(() => one.loadStateDict(bad)).toThrow(/Invalid learning rate: -1/);
      expect(one.paramGroups[0].lr).toBe(0.1);
    });
  });
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('optimizers against torch.optim (live oracle)', () => {
  it('re-runs the oracle now and matches it bit for bit', async () => {
    check(await runOracle<Fixture>('scripts/fixtures/optim.py'), true);
  });
});
