// The committed fixture test/fixtures/optim.json was written by torch 1.13, so its
// optimizer state dicts have 1.13's layout. Where the running libtorch's torch.optim
// lays them out otherwise (the switches of lib/optim/releases.ts, each checked bit
// for bit against that release by the live-oracle tests), these give the layout that
// release writes for the same run, so the committed fixture still checks layouts
// everywhere. Values are not translated: they are compared within a rounding budget.
import { rules } from '../lib/optim/releases.js';

/** The torch release that wrote test/fixtures/optim.json: the layouts below translate from it. */
export const FIXTURE_TORCH = /^1\.13\./;

type Group = Record<string, unknown>;

/** A copy of `group` with `entries` inserted after key `after` (or replacing their values where present). */
function withEntries(group: Group, after: string, entries: Group): Group {
  const out: Group = {};
  for (const [k, v] of Object.entries(group)) {
    if (k in entries) continue;
    out[k] = v;
    if (k === after) Object.assign(out, entries);
  }
  return out;
}

/**
 * The `param_groups` the running torch writes where 1.13 wrote `groups`: for a
 * fresh optimizer, or (`loaded`) for one that loaded the 1.13 state dict, where
 * PyTorch's `__setstate__` fills in the missing options.
 */
export function groupsAsRunning(optimizer: string, groups: Group[], loaded = false): Group[] {
  return groups.map((g) => {
    if (optimizer === 'SGD' && rules.sgdFused) return withEntries(g, 'differentiable', { fused: loaded ? false : null });
    // A loaded 1.13 Adam group keeps its fused=False.
    if (optimizer === 'Adam' && rules.adamFusedNone && !loaded) return { ...g, fused: null };
    if (optimizer === 'AdamW' && rules.adamwDifferentiableFused) return withEntries(g, 'capturable', { differentiable: false, fused: null });
    return g;
  });
}

/**
 * The `state` entries the running torch writes where 1.13 wrote `state`: 2.x's SGD
 * stores nothing without momentum, where 1.13 stored `momentum_buffer: None`
 * (state loaded from 1.13 is kept as it is).
 */
export function stateAsRunning<S extends Record<string, unknown>>(optimizer: string, state: [number, S][], loaded = false): [number, S][] {
  if (optimizer !== 'SGD' || !rules.sgdFused || loaded) return state;
  return state.filter(([, s]) => s.momentum_buffer !== null);
}
