// The generated Tensor API (issue 24): the committed schemas are the running
// libtorch's, the generator reproduces the committed code, generated calls equal
// PyTorch bitwise (forward and backward), every generated method is callable with
// its schema defaults, wrong calls fail with PyTorch-like messages and fail to
// type-check, and the share of torch.Tensor's public names we have is printed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor, ops, tensor, tidy, version } from '../lib/index.js';
import { dumpRunning, generate } from '../scripts/gen-tensor-api.js';
import { CASES, implOf } from './tensor-api.cases.js';
import { hasTorchPython, python, requireLiveOracle, runNodeChild, runOracle } from './helpers.js';
import { type Fixture, type Impl, check } from './op-replay.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const release = version.torch.split('.').slice(0, 2).join('.');
const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

describe('the generator', () => {
  it("the committed schemas are the running libtorch's registry", async () => {
    const { release: r, text } = await dumpRunning();
    expect(r).toBe(release);
    const committed = readFileSync(join(ROOT, `scripts/fixtures/aten-schemas/${r}.jsonl`), 'utf8');
    expect(text === committed, `scripts/fixtures/aten-schemas/${r}.jsonl is stale: run npx tsx scripts/gen-tensor-api.ts dump`).toBe(true);
  });

  it('reproduces the committed generated files', () => {
    for (const [path, text] of Object.entries(generate())) {
      if (path === 'newest') continue;
      expect(readFileSync(path, 'utf8') === text, `${path} is stale: run npx tsx scripts/gen-tensor-api.ts`).toBe(true);
    }
  });

  it.skipIf(!hasTorchPython && !requireLiveOracle)("the committed torch names are the oracle's", async () => {
    const r = await python(['scripts/gen-torch-names.py', '--stdout']);
    expect(r.status).toBe(0);
    const live = JSON.parse(r.stdout) as { torch: string };
    // Compared as data: the committed file is formatted by Biome.
    expect(live).toEqual(JSON.parse(readFileSync(join(ROOT, `scripts/fixtures/torch-names/${live.torch}.json`), 'utf8')));
  });
});

// ---- against the live oracle -------------------------------------------------------------

const IMPLS: Record<string, Impl> = Object.fromEntries(CASES.map((c) => [c.name, implOf(c)]));

describe.skipIf(!hasTorchPython && !requireLiveOracle)('generated calls against PyTorch (live oracle)', () => {
  it(`${CASES.length} cases: forward and gradients bitwise`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(300);
    const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-api-'));
    const spec = join(dir, 'cases.json');
    writeFileSync(spec, JSON.stringify(CASES));
    check(await runOracle<Fixture>('scripts/fixtures/tensor_api.py', spec), IMPLS, true);
  }, 300_000);
});

// ---- the examples, typed ------------------------------------------------------

describe('the examples of the issue', () => {
  it('sin, maskedFill, einsum, cumsum, gather', () =>
    tidy(() => {
      const x = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      expect(x.sin().index(0, 0).item()).toBeCloseTo(Math.sin(1), 6);
      expect(x.maskedFill(x.gt(3), 0).tolist()).toEqual([
        [1, 2, 3],
        [0, 0, 0],
      ]);
      expect(torch.einsum('ij,jk->ik', x, x.t()).tolist()).toEqual([
        [14, 32],
        [32, 77],
      ]);
      expect(x.cumsum(1).tolist()).toEqual([
        [1, 3, 6],
        [4, 9, 15],
      ]);
      const idx = tensor(
        [
          [0, 0],
          [1, 0],
        ],
        { dtype: 'int64' },
      );
      expect(x.gather(1, idx).tolist()).toEqual([
        [1, 1],
        [5, 4],
      ]);
      const y = x.float();
      expect(y.sin_()).toBe(y);
    }));

  it('ops.aten reaches any registered operator, private ones included', () =>
    tidy(() => {
      const x = tensor([1, 2, 3]);
      expect(ops.aten.add.Tensor(x, x, { alpha: 2 }).tolist()).toEqual([3, 6, 9]);
      expect(ops.aten.mul(x, 2).tolist()).toEqual([2, 4, 6]);
      expect(ops.aten._softmax.default(x.float(), 0, false).sum().item()).toBeCloseTo(1, 6);
      const y = x.clone();
      expect(ops.aten.mul_.Scalar(y, 2)).toBe(y);
      expect(() => ops.aten.noSuchOp).toThrow(/ops\.aten has no operator 'noSuchOp'/);
      expect(() => ops.aten.add.Foo).toThrow(/ops\.aten\.add has no overload 'Foo'/);
      expect(() => ops.aten.add.out(x, x)).toThrow(/out= variant/);
    }));
});

describe('versions', () => {
  it('an overload newer than the running libtorch is an error naming both versions', () =>
    tidy(() => {
      const x = tensor([
        [true, false],
        [true, true],
      ]);
      // aten::all.dims (several dims at once) arrived in 2.x; all.dim (one dim) is in 1.13.
      if (release === '1.13') {
        expect(() => x.all([0, 1])).toThrow(/^all\(\): aten::all\.dims arrived in libtorch 2\.\d+; the running libtorch is 1\.13/);
      } else {
        expect(x.all([0, 1]).item()).toBe(false);
      }
      expect(x.all(1).tolist()).toEqual([false, true]);
    }));
});

describe('wrong calls', () => {
  it('name the op and the argument, as PyTorch does', () =>
    tidy(() => {
      const x = tensor([1, 2, 3]);
      const bad = x as unknown as Record<string, (...a: unknown[]) => unknown>;
      expect(() => bad.gather('a', x)).toThrow(/^gather\(\): argument 'dim' \(position 1\) must be int, not string$/);
      expect(() => bad.cumsum(1.5)).toThrow(/^cumsum\(\): argument 'dim' \(position 1\) must be int, not float$/);
      expect(() => bad.cumsum()).toThrow(/^cumsum\(\): missing required argument 'dim'$/);
      expect(() => bad.cumsum(0, { dtype: 'nope' })).toThrow(/^cumsum\(\): argument 'dtype' must be DType or null, not string$/);
      expect(() => bad.cumsum(0, { foo: 1 })).toThrow(/^cumsum\(\): got an unexpected keyword argument 'foo'$/);
      expect(() => bad.maskedFill(1, 'z')).toThrow(
        /^maskedFill\(\) received an invalid combination of arguments - got \(int, string\), but expected one of:\n \* \(Tensor mask, Tensor value\)\n \* \(Tensor mask, number value\)$/,
      );
      expect(() => bad.gather(0, x, 1)).toThrow(/^gather\(\): takes at most 2 positional arguments$/);
      // libtorch's own checks still speak for the values.
      expect(() => x.gather(5, x)).toThrow(/Dimension out of range|dim/i);
    }));

  it('a wrong call fails to type-check (tsc on test/fixtures/tensor-api-types.ts)', () => {
    // The fixture holds good calls and @ts-expect-error wrong ones: a wrong call that type-checks is an unused directive.
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const args = [
      tsc,
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module',
      'NodeNext',
      '--moduleResolution',
      'NodeNext',
      '--target',
      'ES2022',
      '--types',
      'node',
    ];
    execFileSync(process.execPath, [...args, 'test/fixtures/tensor-api-types.ts'], { cwd: ROOT, encoding: 'utf8' });
    // And the file without its directives has errors: the directives are needed.
    const stripped = join(ROOT, 'test/fixtures/tensor-api-types.stripped.ts');
    writeFileSync(stripped, readFileSync(join(ROOT, 'test/fixtures/tensor-api-types.ts'), 'utf8').replaceAll('// @ts-expect-error', '//'));
    let failed = '';
    try {
      execFileSync(process.execPath, [...args, stripped], { cwd: ROOT, encoding: 'utf8' });
    } catch (e) {
      failed = String((e as { stdout?: string }).stdout);
    } finally {
      rmSync(stripped);
    }
    expect(failed.match(/error TS/g)?.length ?? 0).toBe(
      readFileSync(join(ROOT, 'test/fixtures/tensor-api-types.ts'), 'utf8').split('// @ts-expect-error').length - 1,
    );
  }, 120_000);
});

// ---- every generated method with its schema defaults ------------------------------------

describe('every generated method', () => {
  it('is callable with only its required arguments (the binding accepts; libtorch runs or refuses the values)', async () => {
    // In a child process: an op libtorch aborts on must not take the test runner with it.
    const r = await runNodeChild("await import('./test/tensor-api-defaults.child.ts');", { timeoutMs: 280_000 });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { methods: number; calls: number; ran: number; rejected: string[] };
    console.log(`defaults: ${out.methods} generated methods, ${out.calls} overloads called, ${out.ran} ran, the rest refused by libtorch's own value checks`);
    expect(out.methods).toBeGreaterThan(300);
    expect(out.rejected).toEqual([]);
    expect(out.ran).toBeGreaterThan(out.calls * 0.7);
  }, 300_000);
});

// ---- coverage ----------------------------------------------------------------------------

describe('coverage of torch.Tensor', () => {
  it("prints the share of torch.Tensor's public names that Tensor has", () => {
    const names = JSON.parse(readFileSync(join(ROOT, `scripts/fixtures/torch-names/${release}.json`), 'utf8')) as { tensor: string[] };
    const have = (n: string) => {
      const js = camel(n.replace(/_$/, '')) + (n.endsWith('_') ? '_' : '');
      return js in Tensor.prototype || n in Tensor.prototype;
    };
    const missing = names.tensor.filter((n) => !have(n));
    const share = (names.tensor.length - missing.length) / names.tensor.length;
    console.log(
      `coverage: Tensor has ${names.tensor.length - missing.length} of torch.Tensor's ${names.tensor.length} public names (${(share * 100).toFixed(1)} %, torch ${release}); missing: ${missing.join(' ')}`,
    );
    expect(share).toBeGreaterThanOrEqual(0.9);
  });
});
