// Replays op cases written by scripts/fixtures/ops.py (and the scripts that use its runner):
// inputs, outputs, seeds and input gradients as raw bytes, against a TypeScript implementation
// of each case; bitwise for a live oracle run on this machine, within the cross-CPU rounding
// budget of tolerance.ts for a committed fixture.
import { expect } from 'vitest';
import { type Tensor, setNumThreads, tidy } from '../lib/index.js';
import { type EncodedTensor, bitwiseDiff, decode } from './helpers.js';
import { type Budget, absDouble, closeDiff, largestNumel } from './tolerance.js';

export interface Case {
  name: string;
  inputs: EncodedTensor[];
  requiresGrad: boolean[];
  outputs: EncodedTensor[];
  seeds: (EncodedTensor | null)[];
  grads: (EncodedTensor | null)[];
}
export interface Fixture {
  torch: string;
  threads: number;
  cases: Case[];
}

/** A case's TypeScript implementation: its inputs in, its outputs out. */
export type Impl = (...t: Tensor[]) => Tensor | Tensor[];

/** Runs a case's implementation on its inputs (with gradients where asked) and, given seeds, backpropagates Σ out·seed. */
function run(impls: Record<string, Impl>, c: Case, inputs: Tensor[], seeds: (Tensor | null)[]): { outs: Tensor[]; grads: (Tensor | null)[] } {
  const leaves = inputs.map((t, j) => (c.requiresGrad[j] ? t.clone().requiresGrad_() : t));
  const result = impls[c.name](...leaves);
  const outs = Array.isArray(result) ? result : [result];
  let total: Tensor | null = null;
  outs.forEach((o, k) => {
    const seed = seeds[k];
    if (seed && o.requiresGrad) {
      const term = o.mul(seed).sum();
      total = total === null ? term : total.add(term);
    }
  });
  if (total !== null) (total as Tensor).backward();
  return { outs, grads: leaves.map((t, j) => (c.requiresGrad[j] ? t.grad : null)) };
}

/**
 * The error budget of a case on another CPU (see tolerance.ts). n: no sum here
 * has more terms than the case's largest tensor has elements, and 8 more covers
 * the elementwise roundings around it (exp, log, a division, a scale). S: the
 * result's own size plus the absolute shadow, the case run in float64 on |inputs|
 * and |seeds| — Σ|terms| for the ops linear in each input (conv, linear, matmul,
 * sums, pooling, interpolation), and the same order of size for the others.
 */
function budgets(impls: Record<string, Impl>, c: Case, outs: Tensor[], grads: (Tensor | null)[]): { outs: Budget[]; grads: (Budget | null)[] } {
  const n = largestNumel(...c.inputs, ...c.outputs, ...c.seeds) + 8;
  const shadow = run(
    impls,
    c,
    c.inputs.map((e) => absDouble(decode(e))),
    c.seeds.map((e) => (e ? absDouble(decode(e)) : null)),
  );
  const scale = (mine: Tensor, s: Tensor | null): Tensor => (s === null ? absDouble(mine) : absDouble(mine).add(absDouble(s)));
  return {
    outs: outs.map((o, k) => ({ n, scale: scale(o, shadow.outs[k]) })),
    grads: grads.map((g, j) => (g === null ? null : { n, scale: scale(g, shadow.grads[j]) })),
  };
}

/**
 * Replays one case; returns the list of mismatches. `exact`: bitwise, for the live
 * oracle on this machine; otherwise within the cross-CPU budget, for committed fixtures.
 */
function replay(impls: Record<string, Impl>, c: Case, exact: boolean): string[] {
  return tidy(() => {
    if (!impls[c.name]) return [`no TypeScript implementation for case '${c.name}'`];
    const { outs, grads } = run(
      impls,
      c,
      c.inputs.map(decode),
      c.seeds.map((e) => (e ? decode(e) : null)),
    );
    if (outs.length !== c.outputs.length) return [`${outs.length} outputs, expected ${c.outputs.length}`];
    const budget = exact ? null : budgets(impls, c, outs, grads);
    const compare = (mine: Tensor, want: EncodedTensor, b: Budget | null | undefined): string | null =>
      b ? closeDiff(mine, want, b) : bitwiseDiff(mine, want);
    const problems: string[] = [];
    outs.forEach((o, k) => {
      const d = compare(o, c.outputs[k], budget?.outs[k]);
      if (d) problems.push(`output ${k}: ${d}`);
    });
    c.grads.forEach((g, j) => {
      if (!g) return;
      const grad = grads[j];
      if (!grad) problems.push(`input ${j}: no gradient`);
      else {
        const d = compare(grad, g, budget?.grads[j]);
        if (d) problems.push(`grad of input ${j}: ${d}`);
      }
    });
    return problems;
  });
}

/** Replays every case of `fixture` with `impls` and expects no mismatch. */
export function check(fixture: Fixture, impls: Record<string, Impl>, exact: boolean): void {
  setNumThreads(fixture.threads);
  const failures: string[] = [];
  for (const c of fixture.cases) {
    for (const p of replay(impls, c, exact)) failures.push(`${c.name}: ${p}`);
  }
  expect(failures).toEqual([]);
}
