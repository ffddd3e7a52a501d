// The committed fixtures hold on other CPUs. libtorch picks its kernels by CPU
// (ATen's vector width, oneDNN's ISA, OpenBLAS's core type); each can be forced
// down to what an older x86-64 CPU has, so this machine replays the fixtures as
// such a CPU would. Bitwise comparison fails there (the reason for the budgets in
// tolerance.ts); the budgets must hold.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { manualSeed, randn, tensor, tidy } from '../lib/index.js';
import { encode } from './helpers.js';
import { closeDiff, gamma, gammaProbabilistic } from './tolerance.js';

/** The fixture-replaying tests: every describe or it named "committed fixture". */
const FIXTURE_TESTS = [
  'test/ops.test.ts',
  'test/vgg.test.ts',
  'test/random.test.ts',
  'test/optim.test.ts',
  'test/lr-scheduler.test.ts',
  'test/transforms.test.ts',
  'test/data-loader.test.ts',
];

/** Kernel choices of other x86-64 CPUs, forced through libtorch's, oneDNN's and OpenBLAS's own switches. */
const CPUS: Record<string, Record<string, string>> = {
  'AVX2 (Haswell, Zen)': { ATEN_CPU_CAPABILITY: 'avx2', ONEDNN_MAX_CPU_ISA: 'AVX2', OPENBLAS_CORETYPE: 'Haswell' },
  'SSE4.1 only (pre-AVX2)': { ATEN_CPU_CAPABILITY: 'default', ONEDNN_MAX_CPU_ISA: 'SSE41', OPENBLAS_CORETYPE: 'Nehalem' },
};

function vitest(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...FIXTURE_TESTS, '-t', 'committed fixture'], {
      env: { ...process.env, ...env, VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined, NODE_OPTIONS: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('committed fixtures on the kernels of other CPUs', () => {
  for (const [cpu, env] of Object.entries(CPUS)) {
    it(`replay within their budgets on ${cpu}`, async () => {
      const { code, output } = await vitest(env);
      const summary = /Tests\s+(.*)/.exec(output)?.[1] ?? '';
      expect({ code, summary }, output.slice(-4000)).toMatchObject({ code: 0, summary: expect.stringMatching(/\d+ passed/) });
      expect(summary).not.toMatch(/failed/);
    }, 600_000);
  }
});

describe('error budgets', () => {
  it('γ(n) and γ̃(n) are the textbook bounds', () => {
    expect(gamma(1)).toBeCloseTo(2 ** -24 / (1 - 2 ** -24), 30);
    expect(gamma(1000, 'float64')).toBeCloseTo((1000 * 2 ** -53) / (1 - 1000 * 2 ** -53), 30);
    expect(() => gamma(2 ** 25)).toThrow(/bound nothing/);
    // λ√n·u to first order, with λ = 10.
    expect(gammaProbabilistic(10_000) / (10 * 100 * 2 ** -24)).toBeCloseTo(1, 4);
  });

  it('pass within the bound and fail just beyond it; integers and NaNs are compared exactly', () => {
    tidy(() => {
      manualSeed(0);
      const x = randn(100);
      const budget = { n: 10, scale: x.abs() };
      const bound = x.abs().mul(2 * gamma(10));
      expect(closeDiff(x.add(bound.mul(0.9)), encode(x), budget)).toBeNull();
      expect(closeDiff(x.add(bound.mul(1.1)), encode(x), budget)).toMatch(/beyond the cross-CPU bound/);
      expect(closeDiff(x.mul(1 + 1e-4), encode(x), budget)).toMatch(/beyond/);
      expect(closeDiff(x, encode(x.reshape(10, 10)), budget)).toMatch(/shape/);
      const ints = tensor([1, 2, 3], { dtype: 'int64' });
      expect(closeDiff(ints, encode(ints), { n: 1, scale: 0 })).toBeNull();
      expect(closeDiff(tensor([1, 2, 4], { dtype: 'int64' }), encode(ints), { n: 1, scale: 0 })).toMatch(/beyond/);
      // A uint8 rounded from a float computation may move by one step where the float bound is below one.
      const bytes = tensor([10, 200], { dtype: 'uint8' });
      expect(closeDiff(tensor([11, 200], { dtype: 'uint8' }), encode(bytes), { n: 4, scale: 255 })).toBeNull();
      expect(closeDiff(tensor([12, 200], { dtype: 'uint8' }), encode(bytes), { n: 4, scale: 255 })).toMatch(/beyond/);
      const nan = tensor([Number.NaN, 1]);
      expect(closeDiff(nan, encode(nan), { n: 1, scale: 1 })).toBeNull();
      expect(closeDiff(tensor([0.5, 1]), encode(nan), { n: 1, scale: 1 })).toMatch(/beyond/);
      expect(closeDiff(x, encode(x.add(1e-3)), { bound: 1e-3 * 0.99 })).toMatch(/beyond/);
    });
  });
});
