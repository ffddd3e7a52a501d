// torch.autocast: libtorch's Autocast dispatch keys switched on for a region. Under
// autocast('cpu', { dtype: 'bfloat16' }) the tutorial VGG, torchvision's vgg11 and an SGD step
// must give PyTorch's bits (outputs, their dtypes, gradients, the weights after the step), since
// the casting is libtorch's own; the region's enter/exit must be torch.autocast's.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import * as source from '../lib/index.js';
import {
  F,
  type Tensor,
  autocast,
  cuda,
  dispose,
  getAutocastDtype,
  isAutocastEnabled,
  manualSeed,
  nn,
  optim,
  randint,
  randn,
  tidy,
  version,
  vgg11,
  vggTutorial,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { releaseOf } from '../lib/runtime.js';
import { type EncodedTensor, bitwiseDiff, bytesOf, hasTorchPython, requireLiveOracle, runNodeFile, runOracle } from './helpers.js';

const sha = (t: Tensor): string => createHash('sha256').update(bytesOf(t)).digest('hex');
const shas = (named: Iterable<[string, Tensor]>): Record<string, string> => Object.fromEntries([...named].map(([k, t]) => [k, sha(t)]));
const release = releaseOf(version.torch);
const cpuHalfAllowed = release[0] > 2 || (release[0] === 2 && release[1] >= 1);

/** The libtorch nesting count, read without changing it. */
function nesting(): number {
  const n = native.autocastIncrementNesting() - 1;
  native.autocastDecrementNesting();
  return n;
}

/** The thread's whole autocast state, to check that a region left it as it found it. */
const state = () => ({
  cpu: isAutocastEnabled('cpu'),
  cuda: isAutocastEnabled('cuda'),
  cpuDtype: getAutocastDtype('cpu'),
  cudaDtype: getAutocastDtype('cuda'),
  cache: native.autocastIsCacheEnabled(),
  nesting: nesting(),
});
const OUTSIDE = { cpu: false, cuda: false, cpuDtype: 'bfloat16', cudaDtype: 'float16', cache: true, nesting: 0 };

interface OracleCase {
  weights: Record<string, string>;
  grads: Record<string, string>;
  inputGrad: string;
  gradDtypes: Record<string, string>;
  after?: Record<string, string>;
}
/** What the oracle adds: the tensors themselves. */
type OracleOut = OracleCase & Record<'x' | 'target' | 'output' | 'loss', EncodedTensor>;

/** scripts/fixtures/amp.py's `case`, step for step: seed 777 builds, seed 3 draws the batch. */
function runCase(build: () => nn.Module, inputShape: number[], train: boolean, sgd: boolean): { got: OracleCase; tensors: Tensor[] } {
  manualSeed(777);
  const model = build().train(train);
  try {
    const weights = tidy(() => shas(model.stateDict()));
    manualSeed(3);
    const x = randn(inputShape, { requiresGrad: true });
    const target = randint(0, 10, [inputShape[0]]);
    const opt = sgd ? new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }) : null;
    const [y, loss] = autocast('cpu', { dtype: 'bfloat16' }, () => {
      const y = model(x) as Tensor;
      return [y, F.crossEntropy(y, target)] as const;
    });
    loss.backward();
    const params = [...model.namedParameters()];
    const got: OracleCase = {
      weights,
      grads: Object.fromEntries(params.map(([k, p]) => [k, sha(p.grad!)])),
      inputGrad: sha(x.grad!),
      gradDtypes: Object.fromEntries(params.map(([k, p]) => [k, p.grad!.dtype])),
    };
    if (opt) {
      opt.step();
      got.after = tidy(() => shas(model.stateDict()));
      opt.dispose();
    }
    // The tensors themselves too, for bitwiseDiff against the oracle's.
    return { got, tensors: [x, target, y, loss] };
  } finally {
    model.dispose();
  }
}

describe.skipIf(!hasTorchPython && !requireLiveOracle)('autocast against torch.autocast (live oracle)', () => {
  let oracle: Promise<Record<'tutorial' | 'vgg11' | 'sgdStep', OracleOut>> | null = null;
  const expected = () => (oracle ??= runOracle('scripts/fixtures/amp.py'));

  function check(name: 'tutorial' | 'vgg11' | 'sgdStep', { got, tensors }: { got: OracleCase; tensors: Tensor[] }, want: OracleOut): void {
    const [x, target, y, loss] = tensors;
    try {
      expect(got.weights, `${name}: the seeded weights`).toEqual(want.weights);
      expect(bitwiseDiff(x, want.x), `${name}: input`).toBeNull();
      expect(bitwiseDiff(target, want.target), `${name}: target`).toBeNull();
      expect(y.dtype, `${name}: logits dtype`).toBe('bfloat16');
      expect(bitwiseDiff(y, want.output), `${name}: logits`).toBeNull();
      expect(bitwiseDiff(loss, want.loss), `${name}: loss`).toBeNull();
      expect(got.gradDtypes, `${name}: gradient dtypes`).toEqual(want.gradDtypes);
      expect(got.grads, `${name}: gradients`).toEqual(want.grads);
      expect(got.inputGrad, `${name}: input gradient`).toBe(want.inputGrad);
      expect(got.after, `${name}: weights after the step`).toEqual(want.after);
    } finally {
      dispose([x, target, y, loss]);
    }
  }

  it('the tutorial VGG (2×3×32×32, eval): logits (bfloat16), loss and every gradient equal PyTorch bit for bit', async () => {
    const want = (await expected()).tutorial;
    check(
      'tutorial',
      runCase(() => vggTutorial(), [2, 3, 32, 32], false, false),
      want,
    );
    expect(state()).toEqual(OUTSIDE);
  }, 600_000);

  it("torchvision's vgg11 (2×3×32×32, 10 classes, eval): logits, loss and every gradient equal PyTorch bit for bit", async () => {
    const want = (await expected()).vgg11;
    check(
      'vgg11',
      runCase(() => vgg11({ numClasses: 10 }), [2, 3, 32, 32], false, false),
      want,
    );
  }, 600_000);

  it('one SGD step of the tutorial VGG in training mode (dropout under autocast) gives PyTorch’s weights bit for bit', async () => {
    const want = (await expected()).sgdStep;
    expect(want.after).toBeDefined();
    check(
      'sgdStep',
      runCase(() => vggTutorial(), [2, 3, 32, 32], true, true),
      want,
    );
  }, 600_000);
});

describe('autocast regions', () => {
  it('outside any region autocast is off, with libtorch’s default dtypes', () => {
    expect(state()).toEqual(OUTSIDE);
  });

  it('casts a linear layer to bfloat16 inside and not outside; loss functions stay float32', () => {
    manualSeed(0);
    const lin = new nn.Linear(8, 4);
    const x = randn(2, 8);
    const target = randint(0, 4, [2]);
    tidy(() => {
      const [y, loss] = autocast('cpu', () => {
        const y = lin(x);
        return [y, F.crossEntropy(y, target)];
      });
      expect(y.dtype).toBe('bfloat16');
      expect(loss.dtype).toBe('float32');
      expect(lin(x).dtype).toBe('float32');
    });
    dispose([x, target]);
    lin.dispose();
  });

  it('nests: an inner { enabled: false } turns it off, and the outer state comes back after it', () => {
    manualSeed(0);
    const lin = new nn.Linear(8, 4);
    const x = randn(2, 8);
    const seen = tidy(() =>
      autocast('cpu', { dtype: 'bfloat16' }, () => {
        const outer = [isAutocastEnabled('cpu'), lin(x).dtype, nesting()];
        const inner = autocast('cpu', { enabled: false }, () => [isAutocastEnabled('cpu'), lin(x).dtype, nesting(), getAutocastDtype('cpu')]);
        const after = [isAutocastEnabled('cpu'), lin(x).dtype, nesting()];
        return { outer, inner, after };
      }),
    );
    expect(seen).toEqual({
      outer: [true, 'bfloat16', 1],
      inner: [false, 'float32', 2, 'bfloat16'],
      after: [true, 'bfloat16', 1],
    });
    expect(state()).toEqual(OUTSIDE);
    x.dispose();
    lin.dispose();
  });

  it('cacheEnabled is set for the region and restored; a region without dtype takes the enclosing one', () => {
    const seen = autocast('cpu', { cacheEnabled: false }, () => [
      native.autocastIsCacheEnabled(),
      autocast('cpu', () => native.autocastIsCacheEnabled()), // the default is the current setting
    ]);
    expect(seen).toEqual([false, false]);
    // CUDA's dtype is set even where CUDA is missing and autocast stays off (PyTorch does the same).
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const dtypes = autocast('cuda', { dtype: 'float32' }, () => [
        getAutocastDtype('cuda'),
        autocast('cuda', () => getAutocastDtype('cuda')),
        isAutocastEnabled('cuda'),
      ]);
      expect(dtypes).toEqual(['float32', 'float32', cuda.isAvailable()]);
      if (!cuda.isAvailable()) expect(warn).toHaveBeenCalledWith("User provided device_type of 'cuda', but CUDA is not available. Disabling", 'UserWarning');
    } finally {
      warn.mockRestore();
    }
    expect(state()).toEqual(OUTSIDE);
  });

  it('restores the previous state and the nesting count when fn throws, and rethrows the same error', () => {
    const boom = new Error('boom');
    expect(() =>
      autocast('cpu', () =>
        autocast('cpu', { enabled: false }, () => {
          throw boom;
        }),
      ),
    ).toThrow(boom);
    expect(state()).toEqual(OUTSIDE);
    const inner = autocast('cpu', () => {
      try {
        autocast('cpu', { enabled: false }, () => {
          throw boom;
        });
      } catch {}
      return [isAutocastEnabled('cpu'), nesting()];
    });
    expect(inner).toEqual([true, 1]);
  });

  it('an async fn keeps autocast on until its promise settles, then restores it (also on rejection)', async () => {
    manualSeed(0);
    const lin = new nn.Linear(8, 4);
    const x = randn(2, 8);
    const pending = autocast('cpu', async () => {
      await new Promise((r) => setTimeout(r, 5));
      return tidy(() => [isAutocastEnabled('cpu'), lin(x).dtype]);
    });
    // Until it settles the region is open on this thread: other work runs under it too.
    expect(isAutocastEnabled('cpu')).toBe(true);
    expect(await pending).toEqual([true, 'bfloat16']);
    expect(state()).toEqual(OUTSIDE);
    await expect(
      autocast('cpu', async () => {
        await Promise.resolve();
        throw new Error('async boom');
      }),
    ).rejects.toThrow('async boom');
    expect(state()).toEqual(OUTSIDE);
    x.dispose();
    lin.dispose();
  });

  it('bad arguments are TypeErrors or RangeErrors naming the argument, and change nothing', () => {
    const fn = () => 1;
    const bad = (f: () => unknown, type: ErrorConstructor, message: RegExp) => {
      expect(f).toThrow(type);
      expect(f).toThrow(message);
    };
    bad(() => autocast('xpu' as 'cpu', fn), RangeError, /autocast\(\): argument 'deviceType' must be 'cpu' or 'cuda'.*'xpu' \(string\)/);
    bad(() => autocast(1 as unknown as 'cpu', fn), TypeError, /argument 'deviceType' must be a string, got 1/);
    bad(() => autocast('cpu', { dtype: 'bf16' as 'bfloat16' }, fn), TypeError, /option 'dtype' must be a dtype name.*'bf16'/);
    bad(() => autocast('cpu', { dtype: 'int64' }, fn), RangeError, /option 'dtype' must be a floating dtype.*'int64'/);
    bad(() => autocast('cpu', { enabled: 'yes' as unknown as boolean }, fn), TypeError, /option 'enabled' must be a boolean, got 'yes'/);
    bad(() => autocast('cpu', { cacheEnabled: 0 as unknown as boolean }, fn), TypeError, /option 'cacheEnabled' must be a boolean, got 0/);
    bad(() => autocast('cpu', { dtyp: 'bfloat16' } as never, fn), TypeError, /dtyp/);
    bad(() => autocast('cpu', {}, 5 as never), TypeError, /autocast\(\): argument 'fn' must be a function, got 5/);
    bad(() => isAutocastEnabled('gpu' as 'cpu'), RangeError, /isAutocastEnabled\(\): argument 'deviceType'/);
    bad(() => getAutocastDtype(null as unknown as 'cpu'), TypeError, /getAutocastDtype\(\): argument 'deviceType' must be a string, got null/);
    // The addon checks too, for callers that reach it directly.
    bad(() => native.autocastSetDtype('cpu', 4), RangeError, /floating dtype/);
    bad(() => native.autocastIsEnabled('mps' as 'cpu'), RangeError, /'cpu' or 'cuda'/);
    expect(state()).toEqual(OUTSIDE);
  });

  it('CPU float16 and float32 follow the running libtorch: a RangeError before 2.1, PyTorch’s warning and autocast off from 2.1', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      if (!cpuHalfAllowed) {
        expect(() => autocast('cpu', { dtype: 'float16' }, () => 1)).toThrow(/option 'dtype' must be 'bfloat16' for 'cpu' autocast in libtorch 1\./);
        expect(() => autocast('cpu', { dtype: 'float32' }, () => 1)).toThrow(RangeError);
      } else {
        expect(autocast('cpu', { dtype: 'float16' }, () => [isAutocastEnabled('cpu'), getAutocastDtype('cpu')])).toEqual([true, 'float16']);
        expect(autocast('cpu', { dtype: 'float32' }, () => [isAutocastEnabled('cpu'), getAutocastDtype('cpu')])).toEqual([false, 'float32']);
        expect(warn).toHaveBeenCalledWith(
          expect.stringContaining('In CPU autocast, but the target dtype is not supported. Disabling autocast.'),
          'UserWarning',
        );
      }
    } finally {
      warn.mockRestore();
    }
    expect(state()).toEqual(OUTSIDE);
  });
});

describe('the built package (dist/)', () => {
  const work = resolve('tmp', 'amp-test'); // inside the package, so that it imports itself by name
  mkdirSync(work, { recursive: true });
  const dir = mkdtempSync(join(work, 'run-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Run on the sources here and on dist/ in a child (sent as text: it uses nothing but `vt`). */
  function probe(vt: typeof source): Record<string, unknown> {
    vt.manualSeed(0);
    const model = vt.vggTutorial().eval();
    const x = vt.randn(1, 3, 32, 32);
    const out = vt.tidy(() => {
      const y = vt.autocast('cpu', { dtype: 'bfloat16' }, () => model(x));
      const z = vt.autocast('cpu', () => vt.autocast('cpu', { enabled: false }, () => model(x)));
      return {
        dtype: y.dtype,
        bits: Array.from(y.toTypedArray() as Float32Array),
        inner: z.dtype,
        after: vt.isAutocastEnabled('cpu'),
        dtypeAfter: vt.getAutocastDtype('cpu'),
      };
    });
    x.dispose();
    model.dispose();
    return { ...out, leaked: vt.memory().tensors };
  }

  const expected = probe(source);

  it('the sources: bfloat16 logits inside, float32 in an inner disabled region, off afterwards', () => {
    expect(expected).toMatchObject({ dtype: 'bfloat16', inner: 'float32', after: false, dtypeAfter: 'bfloat16' });
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format.toUpperCase()}: autocast from dist/ gives the sources' bits`, async () => {
      const file = join(dir, format === 'esm' ? 'probe.mjs' : 'probe.cjs');
      const head = format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n";
      writeFileSync(file, `${head}const probe = ${probe.toString()};\nprocess.stdout.write(JSON.stringify(probe(vt)));\n`);
      const r = await runNodeFile(file, dir);
      if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
      expect(JSON.parse(r.stdout)).toEqual({ ...expected, leaked: 0 });
    }, 120_000);
  }
});
