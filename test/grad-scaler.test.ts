// amp.GradScaler: torch.amp.GradScaler as the running libtorch's release has it. From 2.3, six
// float16 training steps under autocast('cpu') with GradScaler('cpu') must give PyTorch's
// parameters, scale and growth tracker bit for bit (a skipped step with a backed-off scale and
// growth after growthInterval among them), and the state dict must cross both ways through .pth.
// Before 2.3 (libtorch 1.13) GradScaler is CUDA's only: without CUDA it must warn and be disabled
// exactly as torch.cuda.amp.GradScaler, its training step being plain SGD's.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as source from '../lib/index.js';
import { F, type Tensor, amp, autocast, cuda, load, manualSeed, nn, optim, randint, randn, save, tensor, tidy, zeros } from '../lib/index.js';
import { ampRulesNow } from '../lib/amp/releases.js';
import { resetWarnings } from '../lib/optim/warnings.js';
import { type EncodedTensor, bitwiseDiff, bytesOf, hasTorchPython, requireLiveOracle, runNodeFile, runOracle } from './helpers.js';

const sha = (t: Tensor): string => createHash('sha256').update(bytesOf(t)).digest('hex');
const live = hasTorchPython || requireLiveOracle;
const CUDA_MISSING = 'torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.';

interface Step {
  result: null;
  scale: number;
  tracker: number;
  params: string[];
}
interface OracleRun {
  torch: string;
  warnings: string[];
  enabled: boolean;
  scaledIsLoss: boolean;
  scaledShape: number[];
  loss0: EncodedTensor;
  scaled0: EncodedTensor;
  steps: Step[];
  params: EncodedTensor[];
  stateDict: Record<string, number>;
  pth: string;
}

/** scripts/fixtures/grad_scaler.py's run, step for step: seed 0 builds the MLP, then six batches. */
function train(scaler: amp.GradScaler, half: boolean) {
  manualSeed(0);
  const model = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 4));
  const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const steps: Step[] = [];
  let first: { scaledIsLoss: boolean; scaledShape: number[]; loss0: Tensor; scaled0: Tensor } | null = null;
  for (let i = 0; i < 6; i++) {
    tidy(() => {
      let x = randn(2, 8);
      const target = randint(0, 4, [2]);
      if (i === 2) x = x.mul(1e6); // inf in float16: this step is skipped
      opt.zeroGrad();
      const forward = () => F.crossEntropy(model(x) as Tensor, target);
      const loss = half ? autocast('cpu', { dtype: 'float16' }, forward) : forward();
      const scaled = scaler.scale(loss);
      if (i === 0) first = { scaledIsLoss: scaled === loss, scaledShape: scaled.shape, loss0: loss.detach().clone(), scaled0: scaled.detach().clone() };
      scaled.backward();
      if (i === 4) scaler.unscale_(opt);
      const result = scaler.step(opt);
      scaler.update();
      steps.push({
        result: (result ?? null) as null,
        scale: scaler.getScale(),
        tracker: scaler.stateDict()._growth_tracker ?? 0,
        params: [...model.parameters()].map(sha),
      });
      return first === null ? undefined : [first.loss0, first.scaled0];
    });
  }
  return { model, opt, steps, first: first! };
}

describe.skipIf(!ampRulesNow.cpuGradScaler || !live)("GradScaler('cpu') against torch.amp.GradScaler('cpu') (2.3+, live oracle)", () => {
  let oracle: Promise<OracleRun> | null = null;
  const expected = () => (oracle ??= runOracle<OracleRun>('scripts/fixtures/grad_scaler.py'));
  mkdirSync(resolve('tmp'), { recursive: true });
  const work = mkdtempSync(join(resolve('tmp'), 'grad-scaler-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('six float16 steps (one skipped for an inf, growth every 2 clean steps, one explicit unscale_): parameters, scale and growth tracker equal PyTorch’s bit for bit', async () => {
    const want = await expected();
    const scaler = new amp.GradScaler('cpu', { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2 });
    expect(scaler.isEnabled()).toBe(true);
    const { model, opt, steps, first } = train(scaler, true);
    try {
      expect(first.scaledIsLoss).toBe(want.scaledIsLoss);
      expect(first.scaledShape).toEqual(want.scaledShape);
      expect(bitwiseDiff(first.loss0, want.loss0), 'the first loss').toBeNull();
      expect(bitwiseDiff(first.scaled0, want.scaled0), 'the first scaled loss').toBeNull();
      // The oracle's run does skip (the scale goes back) and grow: the test sees both paths.
      expect(want.steps.map((s) => s.scale)).toContain(2 ** 17);
      expect(want.steps[2].scale).toBe(2 ** 16);
      expect(want.steps[2].params).toEqual(want.steps[1].params);
      for (let i = 0; i < steps.length; i++) expect(steps[i], `step ${i}`).toEqual(want.steps[i]);
      [...model.parameters()].forEach((p, i) => expect(bitwiseDiff(p, want.params[i]), `parameter ${i}`).toBeNull());
      expect(scaler.stateDict()).toEqual(want.stateDict);
      expect(Object.keys(scaler.stateDict())).toEqual(['scale', 'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker']);
    } finally {
      model.dispose();
      opt.dispose();
      scaler.dispose();
    }
  }, 600_000);

  it('state dict round trip: PyTorch’s torch.save(scaler.state_dict()) loads into ours, ours saved loads into PyTorch’s', async () => {
    const want = await expected();
    const fromPy = load<Map<string, unknown>>(want.pth);
    const ours = new amp.GradScaler('cpu');
    ours.loadStateDict(fromPy);
    expect(ours.stateDict()).toEqual(want.stateDict);
    // After loading, the lazily made scale starts from the loaded one.
    const x = tensor(1.5);
    const y = ours.scale(x);
    expect(y.item()).toBe(1.5 * want.stateDict.scale);
    ours.dispose();
    // Ours, after a skipped step (scale 2**15, tracker 0) and a clean one (tracker 1), to PyTorch.
    const mine = new amp.GradScaler('cpu', { growthInterval: 7, growthFactor: 3, backoffFactor: 0.25, initScale: 1024 });
    const w = tensor([1.0, 2.0], { dtype: 'float32', requiresGrad: true });
    const opt = new optim.SGD([w], { lr: 0.1 });
    for (const bad of [true, false]) {
      tidy(() => mine.scale(w.mul(bad ? Number.POSITIVE_INFINITY : 1).sum()).backward());
      mine.step(opt);
      mine.update();
      opt.zeroGrad();
    }
    const sd = mine.stateDict();
    expect(sd).toEqual({ scale: 256, growth_factor: 3, backoff_factor: 0.25, growth_interval: 7, _growth_tracker: 1 });
    const file = join(work, 'scaler.pth');
    save(sd, file);
    const back = await runOracle<{ stateDict: Record<string, number>; scale: number }>('scripts/fixtures/grad_scaler.py', file);
    expect(back.stateDict).toEqual(sd);
    expect(back.scale).toBe(256);
    dispose3(mine, opt, [x, y, w]);
  }, 600_000);
});

function dispose3(scaler: amp.GradScaler, opt: optim.Optimizer, tensors: Tensor[]): void {
  scaler.dispose();
  opt.dispose();
  for (const t of tensors) t.dispose();
}

describe.skipIf(ampRulesNow.cpuGradScaler || cuda.isAvailable() || !live)(
  'before 2.3, without CUDA: disabled as torch.cuda.amp.GradScaler (live oracle)',
  () => {
    it('warns PyTorch’s warning and is disabled: scale returns its input, getScale is 1, stateDict is {}, and the training is plain SGD’s bit for bit', async () => {
      const want = await runOracle<OracleRun>('scripts/fixtures/grad_scaler.py');
      expect(want.enabled).toBe(false);
      resetWarnings();
      const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
      let scaler: amp.GradScaler;
      try {
        scaler = new amp.GradScaler('cpu', { initScale: 2 ** 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2 });
        expect(warn.mock.calls.map((c) => c[0])).toEqual(want.warnings);
        expect(want.warnings).toEqual([CUDA_MISSING]);
      } finally {
        warn.mockRestore();
      }
      expect(scaler.isEnabled()).toBe(want.enabled);
      expect(scaler.getScale()).toBe(1);
      expect(scaler.stateDict()).toEqual(want.stateDict);
      expect(want.stateDict).toEqual({});
      const { model, opt, steps, first } = train(scaler, false);
      try {
        expect(first.scaledIsLoss).toBe(true);
        expect(want.scaledIsLoss).toBe(true);
        expect(first.scaledShape).toEqual(want.scaledShape);
        for (let i = 0; i < steps.length; i++) expect(steps[i], `step ${i}`).toEqual(want.steps[i]);
        [...model.parameters()].forEach((p, i) => expect(bitwiseDiff(p, want.params[i]), `parameter ${i}`).toBeNull());
        // ... and what plain SGD gives here without any scaler.
        const plain = train(new amp.GradScaler('cpu', { enabled: false }), false);
        expect(plain.steps).toEqual(steps);
        plain.model.dispose();
        plain.opt.dispose();
        // unscale_, update and loadStateDict do nothing; a state dict is not even looked at.
        scaler.unscale_(opt);
        scaler.update();
        scaler.loadStateDict({});
        expect(scaler.stateDict()).toEqual({});
      } finally {
        model.dispose();
        opt.dispose();
      }
    }, 600_000);

    it("'cuda' without CUDA, and 'cpu' with enabled: false, are disabled too (no warning for the latter)", () => {
      resetWarnings();
      const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
      try {
        expect(new amp.GradScaler().isEnabled()).toBe(false);
        expect(new amp.GradScaler('cuda').device).toBe('cuda');
        expect(warn).toHaveBeenCalledWith(CUDA_MISSING, 'UserWarning');
        warn.mockClear();
        expect(new amp.GradScaler('cpu', { enabled: false }).isEnabled()).toBe(false);
        expect(warn).not.toHaveBeenCalled();
      } finally {
        warn.mockRestore();
      }
    });
  },
);

describe('GradScaler: bad inputs are clear errors', () => {
  const bad = (f: () => unknown, type: ErrorConstructor, message: RegExp) => {
    expect(f).toThrow(type);
    expect(f).toThrow(message);
  };
  const quiet = <T>(f: () => T): T => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      return f();
    } finally {
      warn.mockRestore();
    }
  };

  it('constructor arguments and the arguments of every method', () => {
    bad(() => new amp.GradScaler('xpu' as 'cpu'), RangeError, /GradScaler\(\): argument 'device' must be 'cpu' or 'cuda', got 'xpu'/);
    bad(() => new amp.GradScaler(1 as unknown as 'cpu'), TypeError, /argument 'device' must be a string, got 1/);
    bad(() => new amp.GradScaler('cpu', { initScal: 2 } as never), TypeError, /initScal/);
    bad(() => new amp.GradScaler('cpu', { initScale: '2' as unknown as number }), TypeError, /option 'initScale' must be a number, got '2'/);
    bad(() => new amp.GradScaler('cpu', { enabled: 1 as unknown as boolean }), TypeError, /option 'enabled' must be a boolean, got 1/);
    bad(() => new amp.GradScaler('cpu', { growthInterval: 1.5 }), TypeError, /option 'growthInterval' must be an integer, got 1\.5/);
    bad(() => new amp.GradScaler('cpu', { growthInterval: 0 }), RangeError, /option 'growthInterval' must be a positive integer, got 0/);
    const s = quiet(() => new amp.GradScaler('cpu'));
    bad(() => s.scale(3 as unknown as Tensor), TypeError, /GradScaler\.scale\(\): argument 'outputs' must be a Tensor or an iterable of Tensors, got 3/);
    bad(() => s.scale([zeros(1), 'x'] as unknown as Tensor[]), TypeError, /argument 'outputs' must be a Tensor or an iterable of Tensors/);
    bad(() => s.unscale_({} as optim.Optimizer), TypeError, /GradScaler\.unscale_\(\): argument 'optimizer' must be an optim\.Optimizer/);
    bad(() => s.step(null as unknown as optim.Optimizer), TypeError, /GradScaler\.step\(\): argument 'optimizer' must be an optim\.Optimizer, got null/);
    bad(() => s.update('2' as unknown as number), TypeError, /GradScaler\.update\(\): argument 'newScale' must be a number or a Tensor/);
    bad(() => s.loadStateDict(null as never), TypeError, /argument 'stateDict' must be an object or a Map, got null/);
    bad(() => s.setGrowthInterval(-1), RangeError, /argument 'newInterval' must be a positive integer/);
    s.dispose();
  });

  it.skipIf(!ampRulesNow.cpuGradScaler)('the factors’ ranges, and calls out of order (PyTorch’s checks), while enabled', () => {
    bad(() => new amp.GradScaler('cpu', { growthFactor: 1 }), RangeError, /option 'growthFactor' must be > 1\.0/);
    bad(() => new amp.GradScaler('cpu', { backoffFactor: 1 }), RangeError, /option 'backoffFactor' must be < 1\.0/);
    bad(() => new amp.GradScaler('cpu', { initScale: 0 }), RangeError, /option 'initScale' must be a finite number above 0/);
    const s = new amp.GradScaler('cpu', { initScale: 4 });
    const w = tensor([1.0, 2.0], { dtype: 'float32', requiresGrad: true });
    const opt = new optim.SGD([w], { lr: 0.1 });
    bad(() => s.unscale_(opt), Error, /Attempted unscale_ but _scale is None/);
    bad(() => s.update(), Error, /Attempted update but _scale is None/);
    tidy(() => s.scale(w.sum()).backward());
    s.unscale_(opt);
    expect(Array.from(w.grad!.toTypedArray() as Float32Array)).toEqual([1, 1]);
    bad(() => s.unscale_(opt), Error, /unscale_\(\) has already been called on this optimizer since the last update\(\)/);
    bad(() => s.step(opt, () => 1), TypeError, /Closure use is not currently supported if GradScaler is enabled/);
    expect(s.step(opt)).toBeUndefined();
    bad(() => s.step(opt), Error, /step\(\) has already been called since the last update\(\)/);
    bad(() => s.unscale_(opt), Error, /unscale_\(\) is being called after step\(\)/);
    s.update(8);
    expect(s.getScale()).toBe(8);
    bad(() => s.update(tensor([2, 3], { dtype: 'float32' })), TypeError, /argument 'newScale': new_scale should be a float or a 1-element/);
    s.update(tensor([16], { dtype: 'float32' }));
    expect(s.getScale()).toBe(16);
    bad(() => s.update(), Error, /No inf checks were recorded prior to update/);
    bad(() => s.loadStateDict({}), Error, /The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler/);
    bad(() => s.loadStateDict({ scale: 2 }), TypeError, /must hold a number at 'growth_factor', got undefined/);
    // float16 gradients (a float16 parameter) are PyTorch's ValueError.
    const h = tensor([1.0], { dtype: 'float16', requiresGrad: true });
    const hopt = new optim.SGD([h], { lr: 0.1 });
    tidy(() => s.scale(h.float().sum()).backward());
    bad(() => s.step(hopt), TypeError, /Attempting to unscale FP16 gradients/);
    expect(s.getGrowthFactor()).toBe(2);
    s.dispose();
    w.dispose();
    h.dispose();
    opt.dispose();
    hopt.dispose();
  });
});

describe('the built package (dist/)', () => {
  const work = resolve('tmp', 'grad-scaler-test'); // inside the package, so that it imports itself by name
  mkdirSync(work, { recursive: true });
  const dir = mkdtempSync(join(work, 'run-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Run on the sources here and on dist/ in a child (sent as text: it uses nothing but `vt`). */
  function probe(vt: typeof source): Record<string, unknown> {
    const origWarn = process.emitWarning;
    const warnings: string[] = [];
    process.emitWarning = ((m: string) => warnings.push(String(m))) as typeof process.emitWarning;
    let scaler: InstanceType<typeof vt.amp.GradScaler>;
    try {
      scaler = new vt.amp.GradScaler('cpu', { growthInterval: 1 });
    } finally {
      process.emitWarning = origWarn;
    }
    vt.manualSeed(0);
    const lin = new vt.nn.Linear(4, 2);
    const opt = new vt.optim.SGD(lin.parameters(), { lr: 0.1 });
    const scales: number[] = [];
    for (let i = 0; i < 3; i++) {
      vt.tidy(() => {
        const x = vt.randn(3, 4);
        opt.zeroGrad();
        const loss = vt.autocast('cpu', { dtype: 'bfloat16' }, () =>
          lin(i === 1 ? x.mul(Number.POSITIVE_INFINITY) : x)
            .float()
            .pow(2)
            .mean(),
        );
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
        scales.push(scaler.getScale());
      });
    }
    const out = {
      warnings: warnings.length,
      enabled: scaler.isEnabled(),
      scales,
      stateDict: scaler.stateDict(),
      bits: [...lin.parameters()].map((p) => Array.from(p.toTypedArray() as Float32Array, String)), // String: NaN survives JSON
    };
    scaler.dispose();
    opt.dispose();
    lin.dispose();
    return { ...out, leaked: vt.memory().tensors };
  }

  const expected = quietProbe(() => probe(source));

  it('the sources: enabled on CPU from PyTorch 2.3, disabled with one warning before', () => {
    expect(expected).toMatchObject(
      ampRulesNow.cpuGradScaler
        ? { enabled: true, warnings: 0, scales: [2 ** 17, 2 ** 16, 2 ** 17] }
        : { enabled: false, warnings: 1, scales: [1, 1, 1], stateDict: {} },
    );
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format.toUpperCase()}: GradScaler from dist/ gives the sources' results`, async () => {
      const file = join(dir, format === 'esm' ? 'probe.mjs' : 'probe.cjs');
      const head = format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n";
      writeFileSync(file, `${head}const probe = ${probe.toString()};\nprocess.stdout.write(JSON.stringify(probe(vt)));\n`);
      const r = await runNodeFile(file, dir);
      if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
      expect(JSON.parse(r.stdout)).toEqual({ ...expected, leaked: 0 });
    }, 120_000);
  }
});

/** The probe here, with the warning state of a fresh process (the child's). */
function quietProbe<T>(f: () => T): T {
  resetWarnings();
  return f();
}
