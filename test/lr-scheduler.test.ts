// LR schedulers against torch.optim.lr_scheduler: the same learning rate (and
// momentum, where OneCycleLR cycles it) as PyTorch at every step, compared
// exactly (===), from the committed fixture (scripts/fixtures/optim.py) and,
// where /usr/bin/python3 has torch, from a live run of the oracle. The committed
// fixture was written by torch 1.13: its optimizer param_groups are translated to
// the running torch's layout (optim-layout.ts); the learning rates are the same.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Tensor, zeros } from '../lib/index.js';
import * as optim from '../lib/optim/index.js';
import { rules } from '../lib/optim/releases.js';
import { resetWarnings } from '../lib/optim/warnings.js';
import { hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { FIXTURE_TORCH, groupsAsRunning } from './optim-layout.js';

type Plain = null | number | boolean | string | Plain[] | { __map__: [unknown, Plain][] } | { [k: string]: Plain };
interface SchedCase {
  name: string;
  optimizer: 'SGD' | 'Adam' | 'AdamW';
  optimizerKwargs: Record<string, Plain>;
  groupLrs: number[] | null;
  schedulers: [string, Record<string, Plain>][];
  milestones: number[] | null;
  pattern: 'after' | 'before' | 'epoch';
  steps: number;
  lrs: number[][];
  momenta: (number | null)[][];
  lastLr: number[][];
  state: Record<string, Plain>;
  paramGroups: Record<string, Plain>[];
}
interface Fixture {
  torch: string;
  schedulers: SchedCase[];
}

// PyTorch keyword → TypeScript option, where camelCase alone does not give it.
const RENAMED: Record<string, string> = { T_max: 'tMax' };
const camel = (k: string): string => RENAMED[k] ?? k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const camelKeys = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));

interface Setup {
  opt: optim.Optimizer;
  sched: optim.LRScheduler;
  params: Tensor[];
}

function build(c: SchedCase): Setup {
  const n = c.groupLrs?.length ?? 1;
  const params = Array.from({ length: n }, () => zeros(2).requiresGrad_());
  const input = c.groupLrs ? params.map((p, i) => ({ params: [p], lr: c.groupLrs![i] })) : params;
  const kw = camelKeys(c.optimizerKwargs);
  const opt =
    c.optimizer === 'SGD'
      ? new optim.SGD(input as Tensor[], kw)
      : c.optimizer === 'Adam'
        ? new optim.Adam(input as Tensor[], kw)
        : new optim.AdamW(input as Tensor[], kw);
  const made = c.schedulers.map(([type, kwargs]) => {
    const o = camelKeys(kwargs) as never;
    switch (type) {
      case 'StepLR':
        return new optim.StepLR(opt, o);
      case 'MultiStepLR':
        return new optim.MultiStepLR(opt, o);
      case 'ExponentialLR':
        return new optim.ExponentialLR(opt, o);
      case 'CosineAnnealingLR':
        return new optim.CosineAnnealingLR(opt, o);
      case 'LinearLR':
        return new optim.LinearLR(opt, o);
      case 'OneCycleLR':
        return new optim.OneCycleLR(opt, o);
      default:
        throw new Error(`no scheduler ${type}`);
    }
  });
  const sched = c.milestones ? new optim.SequentialLR(opt, { schedulers: made, milestones: c.milestones }) : made[0];
  return { opt, sched, params };
}

function epoch(s: Setup, c: SchedCase, e: number): void {
  if (c.pattern === 'before') {
    s.sched.step();
    s.opt.step();
  } else if (c.pattern === 'epoch') {
    s.opt.step();
    s.sched.step(e + 1);
  } else {
    s.opt.step();
    s.sched.step();
  }
}

const momenta = (opt: optim.Optimizer): (number | null)[] =>
  opt.paramGroups.map((g) => (Array.isArray(g.betas) ? (g.betas[0] as number) : ((g.momentum as number | undefined) ?? null)));

/** Every value that differs from PyTorch's, compared with ===. */
function compareRun(c: SchedCase, s: Setup, from: number, problems: string[]): void {
  const same = (what: string, mine: (number | null)[], want: (number | null)[]): void => {
    if (mine.length !== want.length || mine.some((v, i) => v !== want[i])) {
      problems.push(`${c.name} ${what}: [${mine}] !== PyTorch's [${want}]`);
    }
  };
  for (let e = from; e < c.steps; e++) {
    epoch(s, c, e);
    same(
      `lr after step ${e + 1}`,
      s.opt.paramGroups.map((g) => g.lr),
      c.lrs[e + 1],
    );
    same(`getLastLr after step ${e + 1}`, s.sched.getLastLr(), c.lastLr[e + 1]);
    same(`momentum after step ${e + 1}`, momenta(s.opt), c.momenta[e + 1]);
  }
}

/** The JSON form the oracle writes: Maps as entry lists, tensors never appear here. */
function plain(v: unknown): unknown {
  if (v instanceof Map) return { __map__: [...v].map(([k, x]) => [k, plain(x)]) };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Plain objects as Maps, recursively: Python dicts as a .pth reader returns them. */
function asPth(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(asPth);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, asPth(x)]));
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return new Map(Object.entries(v).map(([k, x]) => [k, asPth(x)]));
  }
  return v;
}

/** `committed`: the fixture is the committed one (torch 1.13's layouts), not the running torch's live oracle. */
function check(fixture: Fixture, committed: boolean): void {
  const problems: string[] = [];
  for (const c of fixture.schedulers) {
    const s = build(c);
    const same = (what: string, mine: (number | null)[], want: (number | null)[]): void => {
      if (mine.length !== want.length || mine.some((v, i) => v !== want[i])) problems.push(`${c.name} ${what}: [${mine}] !== [${want}]`);
    };
    same(
      'lr after construction',
      s.opt.paramGroups.map((g) => g.lr),
      c.lrs[0],
    );
    same('getLastLr after construction', s.sched.getLastLr(), c.lastLr[0]);
    same('momentum after construction', momenta(s.opt), c.momenta[0]);
    compareRun(c, s, 0, problems);
    // The scheduler's and the optimizer's state dicts, key for key and in PyTorch's order.
    const state = JSON.stringify(plain(s.sched.stateDict()));
    if (state !== JSON.stringify(c.state)) problems.push(`${c.name} scheduler state ${state} !== ${JSON.stringify(c.state)}`);
    const groups = JSON.stringify(s.opt.stateDict().param_groups);
    const want = JSON.stringify(committed ? groupsAsRunning(c.optimizer, c.paramGroups) : c.paramGroups);
    if (groups !== want) problems.push(`${c.name} param_groups ${groups} !== ${want}`);
    s.opt.dispose();
    for (const p of s.params) p.dispose();
  }
  expect(problems.slice(0, 20)).toEqual([]);
}

const fixture = readFixture<Fixture>('optim.json');
const ORDER = /Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`/;
const DEPRECATED = /The epoch parameter in `scheduler.step\(\)` was not necessary/;

describe('LR schedulers against torch.optim.lr_scheduler (committed fixture)', () => {
  beforeEach(() => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('covers every scheduler, the tutorial order and SequentialLR', () => {
    const types = new Set(fixture.schedulers.flatMap((c) => c.schedulers.map(([t]) => t)));
    expect([...types].sort()).toEqual(['CosineAnnealingLR', 'ExponentialLR', 'LinearLR', 'MultiStepLR', 'OneCycleLR', 'StepLR']);
    expect(fixture.schedulers.filter((c) => c.milestones).length).toBeGreaterThan(0);
    expect(fixture.schedulers.filter((c) => c.pattern === 'before').map((c) => c.steps)).toEqual([50]);
  });

  it("gives PyTorch's learning rates exactly at every step, and PyTorch's state dicts", () => {
    expect(fixture.torch).toMatch(FIXTURE_TORCH);
    check(fixture, true);
  });

  it('stateDict → new optimizer and scheduler → loadStateDict continues the same schedule', () => {
    const problems: string[] = [];
    for (const c of fixture.schedulers)
      for (const viaPth of [false, true]) {
        const a = build(c);
        const half = Math.floor(c.steps / 2);
        for (let e = 0; e < half; e++) epoch(a, c, e);
        const b = build(c);
        // viaPth: as the .pth reader returns a saved state dict, with every dict a Map.
        const form = (v: unknown): never => (viaPth ? asPth(v) : v) as never;
        b.opt.loadStateDict(form(a.opt.stateDict()));
        b.sched.loadStateDict(form(a.sched.stateDict()));
        compareRun(c, b, half, problems);
        for (const s of [a, b]) {
          s.opt.dispose();
          for (const p of s.params) p.dispose();
        }
      }
    expect(problems.slice(0, 20)).toEqual([]);
  });
});

describe('scheduler warnings', () => {
  let warnings: string[];
  beforeEach(() => {
    resetWarnings();
    warnings = [];
    vi.spyOn(process, 'emitWarning').mockImplementation((w: string | Error) => {
      warnings.push(String(w));
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const sgd = (): optim.SGD => new optim.SGD([zeros(2).requiresGrad_()], { lr: 0.001, momentum: 0.9 });

  it("warns once about the call order when scheduler.step() comes first (the CIFAR tutorial's loop)", () => {
    const opt = sgd();
    const sched = new optim.StepLR(opt, { stepSize: 5, gamma: 0.9 });
    for (let e = 0; e < 50; e++) {
      sched.step();
      opt.step();
    }
    expect(warnings.filter((w) => ORDER.test(w))).toHaveLength(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toBe(
      'Detected call of `lr_scheduler.step()` before `optimizer.step()`. In PyTorch 1.1.0 and later, you should call them ' +
        'in the opposite order: `optimizer.step()` before `lr_scheduler.step()`.  Failure to do this will result in PyTorch ' +
        'skipping the first value of the learning rate schedule. See more details at ' +
        'https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate',
    );
    expect(vi.mocked(process.emitWarning).mock.calls[0][1]).toBe('UserWarning');
    // Once per process, as Python's default warning filter does.
    const opt2 = sgd();
    const sched2 = new optim.ExponentialLR(opt2, { gamma: 0.5 });
    sched2.step();
    expect(warnings).toHaveLength(1);
  });

  it('does not warn when optimizer.step() comes first', () => {
    const opt = sgd();
    const sched = new optim.StepLR(opt, { stepSize: 5, gamma: 0.9 });
    for (let e = 0; e < 10; e++) {
      opt.step();
      sched.step();
    }
    expect(warnings).toEqual([]);
  });

  it("SequentialLR prints PyTorch 1.13's epoch-deprecation warning once, at its first milestone", () => {
    const opt = sgd();
    const warm = new optim.LinearLR(opt, { startFactor: 0.1, totalIters: 3 });
    const cos = new optim.CosineAnnealingLR(opt, { tMax: 10 });
    const seq = new optim.SequentialLR(opt, { schedulers: [warm, cos], milestones: [3] });
    for (let e = 0; e < 2; e++) {
      opt.step();
      seq.step();
    }
    expect(warnings).toEqual([]);
    for (let e = 0; e < 8; e++) {
      opt.step();
      seq.step();
    }
    expect(warnings.filter((w) => DEPRECATED.test(w))).toHaveLength(1);
    expect(warnings).toHaveLength(1);
  });

  it('warns when getLr() is called outside step()', () => {
    const sched = new optim.StepLR(sgd(), { stepSize: 5 });
    sched.getLr();
    expect(warnings).toEqual(['To get the last learning rate computed by the scheduler, please use `get_last_lr()`.']);
  });

  it('verbose prints each change as PyTorch 1.13 does; from torch 2.2 it is deprecated and prints nothing', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const opt = new optim.SGD([zeros(1).requiresGrad_()], { lr: 0.1 });
    const sched = new optim.StepLR(opt, { stepSize: 1, gamma: 0.5, verbose: true });
    opt.step();
    sched.step();
    sched.step(7);
    if (rules.schedulerVerboseDeprecated) {
      expect(log).not.toHaveBeenCalled();
      expect(warnings[0]).toBe('The verbose parameter is deprecated. Please use get_last_lr() to access the learning rate.');
    } else {
      expect(log.mock.calls.map((c) => c[0])).toEqual([
        'Adjusting learning rate of group 0 to 1.0000e-01.',
        'Adjusting learning rate of group 0 to 5.0000e-02.',
        'Epoch 00007: adjusting learning rate of group 0 to 7.8125e-04.',
      ]);
    }
  });

  it("the order warning: torch 1.13 counts optimizer steps from the last scheduler's creation, torch 2.x asks whether it ever stepped", () => {
    // As /usr/bin/python3 (1.13) and Debian 13's python3 (2.6) print for the same calls.
    const opt = sgd();
    new optim.StepLR(opt, { stepSize: 5 });
    opt.step();
    const second = new optim.ExponentialLR(opt, { gamma: 0.9 });
    second.step();
    expect(warnings.filter((w) => ORDER.test(w))).toHaveLength(rules.schedulerOptCalled ? 0 : 1);
  });
});

describe('nested SequentialLR', () => {
  beforeEach(() => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("undoes the initial steps as the running torch does (1.13: the nested SequentialLR's own; 2.x: its schedulers')", () => {
    const opt = new optim.SGD([zeros(2).requiresGrad_()], { lr: 0.1 });
    const inner = new optim.SequentialLR(opt, {
      schedulers: [new optim.LinearLR(opt, { startFactor: 0.5, totalIters: 3 }), new optim.ExponentialLR(opt, { gamma: 0.9 })],
      milestones: [2],
    });
    const outer = new optim.SequentialLR(opt, { schedulers: [inner, new optim.StepLR(opt, { stepSize: 2, gamma: 0.5 })], milestones: [5] });
    const lrs: number[] = [];
    for (let i = 0; i < 10; i++) {
      opt.step();
      outer.step();
      lrs.push(opt.paramGroups[0].lr);
    }
    // The same calls in Python, printed by /usr/bin/python3 (torch 1.13) and Debian 13's python3 (torch 2.6).
    const head = rules.sequentialRecursiveUndo
      ? [0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002]
      : [0.16666666666666666, 0.1, 0.09000000000000001, 0.08100000000000002];
    expect(lrs).toEqual([...head, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    opt.dispose();
  });
});

describe('scheduler errors', () => {
  beforeEach(() => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const sgd = (): optim.SGD => new optim.SGD([zeros(2).requiresGrad_()], { lr: 0.1, momentum: 0.9 });

  it('rejects bad arguments with clear errors', () => {
    expect(() => new optim.StepLR({} as never, { stepSize: 3 })).toThrow(new TypeError("StepLR: argument 'optimizer' must be an Optimizer, got an object"));
    expect(() => new optim.StepLR(sgd(), { stepSize: 0 })).toThrow(/stepSize must be a positive integer, got 0/);
    expect(() => new optim.ExponentialLR(sgd(), {} as never)).toThrow(/gamma must be a number/);
    expect(() => new optim.CosineAnnealingLR(sgd(), { tMax: 0 })).toThrow(/tMax must be positive/);
    expect(() => new optim.LinearLR(sgd(), { startFactor: 1.5 })).toThrow(/Starting multiplicative factor/);
    expect(() => new optim.LinearLR(sgd(), { endFactor: -1 })).toThrow(/Ending multiplicative factor/);
    expect(() => new optim.MultiStepLR(sgd(), { milestones: [1.5] })).toThrow(RangeError);
    expect(() => new optim.OneCycleLR(sgd(), { maxLr: 0.1 })).toThrow(/You must define either totalSteps OR \(epochs AND stepsPerEpoch\)/);
    expect(() => new optim.OneCycleLR(sgd(), { maxLr: 0.1, totalSteps: -5 })).toThrow(/Expected positive integer totalSteps, but got -5/);
    expect(() => new optim.OneCycleLR(sgd(), { maxLr: [0.1, 0.2], totalSteps: 5 })).toThrow(/expected 1 values for maxLr, got 2/);
    expect(() => new optim.OneCycleLR(sgd(), { maxLr: 0.1, totalSteps: 5, pctStart: 2 })).toThrow(/pctStart/);
    expect(() => new optim.OneCycleLR(sgd(), { maxLr: 0.1, totalSteps: 5, annealStrategy: 'tan' as never })).toThrow(/annealStrategy/);
    expect(() => new optim.StepLR(sgd(), { stepSize: 3, lastEpoch: 4 })).toThrow(
      /param 'initial_lr' is not specified in param_groups\[0\] when resuming an optimizer/,
    );
  });

  it('OneCycleLR refuses to step past totalSteps', () => {
    const opt = sgd();
    const sched = new optim.OneCycleLR(opt, { maxLr: 0.1, totalSteps: 3 });
    for (let i = 0; i < 3; i++) sched.step();
    // The construction's step and three more: torch 1.13 says 5 (one too many), later releases 4.
    const n = rules.oneCycleStepCount ? 4 : 5;
    expect(() => sched.step()).toThrow(new RangeError(`Tried to step ${n} times. The specified number of total steps is 3`));
  });

  it('SequentialLR checks its schedulers and milestones', () => {
    const opt = sgd();
    const other = sgd();
    const a = new optim.LinearLR(opt);
    const b = new optim.ExponentialLR(opt, { gamma: 0.9 });
    expect(() => new optim.SequentialLR(opt, { schedulers: [a, b], milestones: [] })).toThrow(
      /expects number of schedulers provided to be one more than the number of milestone points/,
    );
    expect(() => new optim.SequentialLR(other, { schedulers: [a, b], milestones: [3] })).toThrow(/belong to the same optimizer/);
    expect(() => new optim.SequentialLR(opt, { schedulers: [], milestones: [] })).toThrow(TypeError);
  });
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('LR schedulers against torch.optim.lr_scheduler (live oracle)', () => {
  it('re-runs the oracle now and matches it exactly', async () => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      check(await runOracle<Fixture>('scripts/fixtures/optim.py'), false);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
