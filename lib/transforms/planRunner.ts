// The interpreter of transform plans (plan.ts), shared by this thread and the
// DataLoader's worker threads (data/poolWorker.ts). It imports no module with
// side effects, so a worker can load it without a second copy of the addon
// loader: each thread passes its own addon.
import type { Handle, NativeAddon, OpHandle } from '../native.js';
import type { Plan } from './plan.js';

/** The addon calls a plan needs (native.ts's addon, or a worker's own instance). */
export type PlanAddon = Pick<NativeAddon, 'fromBuffer' | 'call' | 'dispose'>;

/**
 * Runs `plan` on the tensor handle `input` with `addon`; returns the output
 * handle. Every handle it creates other than the output is disposed, also when
 * an op throws.
 */
export function runPlanWith(addon: PlanAddon, op: (name: string, overload: string) => OpHandle, input: Handle, plan: Plan): Handle {
  const vals: Handle[] = [input];
  const temps: Handle[] = [];
  let ok = false;
  try {
    for (const s of plan.steps) {
      const consts: Handle[] = [];
      const constant = (c: { c: ArrayBufferView; shape: number[]; dtype: number }): Handle => {
        const h = addon.fromBuffer(c.c.buffer, c.c.byteOffset, c.shape, c.dtype, true);
        consts.push(h);
        return h;
      };
      let out: Handle;
      try {
        const args = s.args.map((a) => {
          if (a === null || typeof a !== 'object' || Array.isArray(a)) return a;
          if ('v' in a) return vals[a.v];
          if ('vl' in a) return a.vl.map((k) => (k === null ? null : typeof k === 'number' ? vals[k] : constant(k)));
          if ('w' in a) return [a.w];
          if ('c' in a) return constant(a);
          throw new Error(`runPlan: bad argument ${JSON.stringify(a)}`);
        });
        out = addon.call(op(s.op, s.overload), ...args) as Handle;
      } finally {
        for (const h of consts) addon.dispose(h);
      }
      vals.push(out);
      temps.push(out);
    }
    ok = true;
    return vals[plan.result];
  } finally {
    const keep = ok ? vals[plan.result] : undefined;
    for (const t of temps) if (t !== keep) addon.dispose(t);
  }
}
