// Python's float `**` and math.cos, bit for bit: the optimizers' bias corrections
// and the cosine schedules depend on them (lib/optim/pymath.ts).
import { describe, expect, it } from 'vitest';
import { pyCos, pyPow } from '../lib/optim/pymath.js';
import { hasTorchPython, python, requireLiveOracle } from './helpers.js';

const SCRIPT = `
import json, math
bases = [0.9, 0.99, 0.999, 0.9999, 1.01, 1.5, 1e-8]
pows = [[b, k, b ** k] for b in bases for k in range(1, 1201)]
pows += [[0.999, k + 0.5, 0.999 ** (k + 0.5)] for k in range(200)]
coss = [[x, math.cos(x)] for x in [math.pi * t / 997 for t in range(2000)] + [k * 0.37 for k in range(-500, 500)]]
print(json.dumps({"pows": pows, "coss": coss}))
`;

describe.skipIf(!hasTorchPython && !requireLiveOracle)('pyPow and pyCos against CPython (live oracle)', () => {
  it('give CPython’s doubles exactly', async () => {
    const r = await python(['-c', SCRIPT]);
    expect(r.status, r.stderr).toBe(0);
    // JSON numbers are Python's shortest round-trip reprs: parsing gives the same doubles.
    const { pows, coss } = JSON.parse(r.stdout) as { pows: [number, number, number][]; coss: [number, number][] };
    const badPow = pows.filter(([b, e, want]) => !Object.is(pyPow(b, e), want));
    const badCos = coss.filter(([x, want]) => !Object.is(pyCos(x), want));
    expect(badPow.slice(0, 5)).toEqual([]);
    expect(badCos.slice(0, 5)).toEqual([]);
    expect(pows.length + coss.length).toBeGreaterThan(10_000);
  });

  it('refuse non-numbers with a TypeError', () => {
    expect(() => pyPow('2' as never, 2)).toThrow(TypeError);
    expect(() => pyCos(undefined as never)).toThrow(/argument 'x' must be a number/);
  });
});
