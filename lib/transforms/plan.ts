// Transform plans: a transform does not run libtorch ops directly; it records
// them (operator name, overload, arguments) into a Plan, drawing any random
// parameters from the global generator while it records. A Plan is plain,
// structured-cloneable data, so the same plan runs here (Transform.forward) or
// in a DataLoader worker thread, which has its own addon instance and cannot
// share tensors or JS objects with this thread. The worker then needs no copy of
// the transforms' code: only the small interpreter of planRunner.ts.
import { type Handle, native, op } from '../native.js';
import { runPlanWith } from './planRunner.js';
import { type DType, dtypeCode } from '../tensor/dtype.js';

/** A constant tensor, copied in when the step runs. */
export interface ConstArg {
  c: ArrayBufferView;
  dtype: number;
  shape: number[];
}

/** An argument of a recorded call, as plain data. */
export type PlanArg =
  | { v: number } // a tensor value: 0 is the input, k the result of step k-1
  | { vl: (number | null | ConstArg)[] } // a list of tensor values or constants (null: an absent optional tensor)
  | { w: number | boolean } // a wrapped number, as PyTorch's binding passes a Python scalar for a Tensor argument
  | ConstArg
  | number
  | boolean
  | string
  | null
  | undefined
  | number[];

export interface PlanStep {
  op: string;
  overload: string;
  args: PlanArg[];
}

/** A recorded transform application: run it with {@link runPlan}. */
export interface Plan {
  steps: PlanStep[];
  /** Which value is the output (0: the input itself, unchanged). */
  result: number;
}

/** Runs `plan` on the tensor handle `input` in this thread; returns the output handle. */
export function runPlan(input: Handle, plan: Plan): Handle {
  return runPlanWith(native, op, input, plan);
}

/** A value while a plan is being recorded: its id, shape and dtype (known statically). */
export class Val {
  constructor(
    readonly id: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}
  get ndim(): number {
    return this.shape.length;
  }
}

/** A constant tensor argument. */
export function constant(data: Float32Array | Float64Array | BigInt64Array | Uint8Array | Int32Array, shape: number[], dtype: DType): ConstArg {
  return { c: data, dtype: dtypeCode(dtype), shape };
}

type BuilderArg = Val | (Val | null)[] | PlanArg;

/** Records the steps of a plan; each method mirrors one libtorch operator and tracks the shape. */
export class PlanBuilder {
  readonly steps: PlanStep[] = [];
  readonly input: Val;

  constructor(shape: readonly number[], dtype: DType) {
    this.input = new Val(0, [...shape], dtype);
  }

  /** Records `op(args)`, whose result has `shape` and `dtype`. */
  call(name: string, overload: string, args: BuilderArg[], shape: readonly number[], dtype: DType): Val {
    const conv = (a: BuilderArg): PlanArg => {
      if (a instanceof Val) return { v: a.id };
      if (Array.isArray(a) && a.some((e) => e instanceof Val)) return { vl: (a as (Val | null)[]).map((e) => (e === null ? null : e.id)) };
      return a as PlanArg;
    };
    this.steps.push({ op: name, overload, args: args.map(conv) });
    return new Val(this.steps.length, [...shape], dtype);
  }

  /** The finished plan with `out` as its result. */
  finish(out: Val): Plan {
    return { steps: this.steps, result: out.id };
  }

  // ---- helpers for the operators transforms use ---------------------------------

  to(x: Val, dtype: DType): Val {
    if (x.dtype === dtype) return x;
    return this.call('aten::to', 'dtype', [x, dtypeCode(dtype)], x.shape, dtype);
  }
  unsqueeze(x: Val, dim: number): Val {
    const d = dim < 0 ? dim + x.ndim + 1 : dim;
    const shape = [...x.shape];
    shape.splice(d, 0, 1);
    return this.call('aten::unsqueeze', '', [x, dim], shape, x.dtype);
  }
  squeeze(x: Val, dim: number): Val {
    const d = dim < 0 ? dim + x.ndim : dim;
    if (x.shape[d] !== 1) return x;
    const shape = [...x.shape];
    shape.splice(d, 1);
    return this.call('aten::squeeze', 'dim', [x, dim], shape, x.dtype);
  }
  permute(x: Val, dims: number[]): Val {
    return this.call(
      'aten::permute',
      '',
      [x, dims],
      dims.map((d) => x.shape[d]),
      x.dtype,
    );
  }
  contiguous(x: Val): Val {
    return this.call('aten::contiguous', '', [x], x.shape, x.dtype);
  }
  expand(x: Val, shape: number[]): Val {
    return this.call('aten::expand', '', [x, shape], shape, x.dtype);
  }
  /** `x[..., start:end]` along `dim` (a view). */
  slice(x: Val, dim: number, start: number, end: number): Val {
    const shape = [...x.shape];
    shape[dim] = Math.max(0, Math.min(end, x.shape[dim]) - Math.max(start, 0));
    return this.call('aten::slice', 'Tensor', [x, dim, start, end, 1], shape, x.dtype);
  }
  select(x: Val, dim: number, index: number): Val {
    const shape = [...x.shape];
    shape.splice(dim, 1);
    return this.call('aten::select', 'int', [x, dim, index], shape, x.dtype);
  }
  /** Elementwise with a Python-style scalar (a wrapped number, so dtypes promote as in PyTorch). */
  scalarOp(name: 'aten::add' | 'aten::sub' | 'aten::mul' | 'aten::div', x: Val, s: number, dtype: DType): Val {
    return this.call(name, 'Tensor', [x, { w: s }], x.shape, dtype);
  }
  /** Elementwise with another value (shapes broadcast). */
  binary(name: 'aten::add' | 'aten::sub' | 'aten::mul' | 'aten::div', x: Val, y: Val | PlanArg, shape: readonly number[], dtype: DType): Val {
    return this.call(name, 'Tensor', [x, y], shape, dtype);
  }
  round(x: Val): Val {
    return this.call('aten::round', '', [x], x.shape, x.dtype);
  }
  clamp(x: Val, min: number, max: number): Val {
    return this.call('aten::clamp', '', [x, min, max], x.shape, x.dtype);
  }
  flip(x: Val, dims: number[]): Val {
    return this.call('aten::flip', '', [x, dims], x.shape, x.dtype);
  }
  /** `constant_pad_nd`: `pad` = (left, right, top, bottom); negative values crop. */
  constantPad(x: Val, pad: [number, number, number, number], value: number): Val {
    const shape = [...x.shape];
    shape[3] += pad[0] + pad[1];
    shape[2] += pad[2] + pad[3];
    return this.call('aten::constant_pad_nd', '', [x, pad, value], shape, x.dtype);
  }
  /** Advanced indexing `x[i0, i1, …]` with broadcastable index tensors (null: a full slice). */
  index(x: Val, indices: (Val | ConstArg | null)[], shape: number[]): Val {
    const list = indices.map((a) => (a === null ? null : a instanceof Val ? a.id : a));
    return this.call('aten::index', 'Tensor', [x, { vl: list }], shape, x.dtype);
  }
  gather(x: Val, dim: number, index: Val): Val {
    return this.call('aten::gather', '', [x, dim, index, false], index.shape, x.dtype);
  }
}

/** The (N, C, H, W) shape and dtype a transform sees, for error messages. */
export function describeShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
