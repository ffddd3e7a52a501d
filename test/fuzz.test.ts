// The fuzzing harness (test/fuzz) in CI: a short seeded run must find nothing,
// the inputs that once were findings must give clear Errors, and the harness
// must catch, attribute and survive every kind of failure it claims to detect.
// Long runs: npm run fuzz -- --minutes N [--seed S].
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { load, loadSafetensors } from '../lib/serialization/index.js';
import { loadSeeds, makeInput } from './fuzz/inputs.js';
import { runFuzz } from './fuzz/run.js';
import { judge } from './fuzz/worker.js';

const SEEDS = new URL('./fuzz/seeds/', import.meta.url);

describe('fuzzing load() and loadSafetensors()', () => {
  it('a seeded run of 6,000 mutated zip, legacy, tar and safetensors inputs finds nothing', async () => {
    const r = await runFuzz({ seed: 1, iterations: 6000 });
    expect(r.findings.map((f) => `${f.kind} at input ${f.index} (${f.seed}; ${f.mutations.join(', ')}): ${f.detail}`)).toEqual([]);
    expect(r.iterations).toBe(6000);
  }, 600_000);

  it('inputs that were findings now load or throw the clear Error (committed under test/fuzz/seeds)', () => {
    const regressions = readdirSync(SEEDS).filter((n) => n.startsWith('regression-'));
    expect(regressions.length).toBeGreaterThan(0);
    for (const name of regressions) {
      const bytes = readFileSync(new URL(name, SEEDS));
      const kind = name.endsWith('.safetensors') ? 'safetensors' : 'pth';
      let verdict = null;
      try {
        (kind === 'safetensors' ? loadSafetensors : load)(bytes);
      } catch (e) {
        verdict = judge(e, kind);
      }
      expect(verdict, name).toBeNull();
    }
    // The first one: a tar storage of -281474976710644 elements was a RangeError from Buffer allocation.
    expect(() => load(readFileSync(new URL('regression-tar-negative-numel.pt', SEEDS)))).toThrow(/storage '101' declares an absurd size of -\d+ elements/);
  });

  it('makes the same inputs from the same seed, and different ones from another', () => {
    const seeds = loadSeeds();
    for (const i of [0, 1, 977]) {
      expect(makeInput(seeds, 5, i).bytes.equals(makeInput(seeds, 5, i).bytes)).toBe(true);
    }
    const differ = [0, 1, 2, 3, 4, 5].filter((i) => !makeInput(seeds, 5, i).bytes.equals(makeInput(seeds, 6, i).bytes));
    expect(differ.length).toBeGreaterThan(3);
  });

  it('catches an abort, a SIGSEGV, a hang, a thrown non-Error, a leak and RSS over the limit, and goes on after each', async () => {
    const r = await runFuzz({ seed: 1, iterations: 16, hangMs: 3000, rssMb: 450, inject: '2:abort,4:segv,6:hang,8:throw,10:leak,12:rss' });
    expect(r.iterations).toBe(16);
    expect(r.findings.map((f) => [f.index, f.kind])).toEqual([
      [2, 'crash'],
      [4, 'crash'],
      [6, 'hang'],
      [8, 'non-error'],
      [10, 'leak'],
      [12, 'rss'],
    ]);
    expect(r.findings[0].detail).toMatch(/signal SIGABRT/);
    expect(r.findings[1].detail).toMatch(/signal SIGSEGV/);
    // A restart after the abort, the SIGSEGV, the hang and the RSS; the throw and the leak are survived in place.
    expect(r.restarts).toBe(4);
  }, 300_000);
});
