// torch.optim.LBFGS (torch/optim/lbfgs.py, the same in PyTorch 1.13 and 2.6;
// later changes are switches in releases.ts), operation for operation.
//
// The Python code mixes Python floats with 0-dim float32 tensors (`gtd`, `ys`,
// `t` after the first iteration's `min(1., 1. / g.abs().sum()) * lr`), and which
// one a value is decides how arithmetic and comparisons round. `Num` keeps that
// distinction: a JS number is a Python float (both doubles), a Tensor a tensor,
// and the helpers below apply Python's operator rules (`1. / T` is
// `T.reciprocal() * 1.`, `f > T` compares in float32, …), so the losses are
// PyTorch's bit for bit.
import { enableGrad, noGrad } from '../autograd.js';
import { native, op } from '../native.js';
import { keep, tidy } from '../tensor/scope.js';
import { Tensor, cat, wrap } from '../tensor/tensor.js';
import { zeros } from '../tensor/creation.js';
import { describe } from '../utils/args.js';
import { Optimizer, type ParamGroup, type ParamsInput, type StateValue, checkNumber } from './optimizer.js';
import { rules } from './releases.js';

type Num = number | Tensor;

const isT = (x: Num): x is Tensor => x instanceof Tensor;
const add = (a: Num, b: Num): Num => (isT(a) ? a.add(b) : isT(b) ? b.add(a) : a + b);
const sub = (a: Num, b: Num): Num => (isT(a) ? a.sub(b) : isT(b) ? b.neg().add(a) : a - b); // a + (-b) rounds as a - b
const mul = (a: Num, b: Num): Num => (isT(a) ? a.mul(b) : isT(b) ? b.mul(a) : a * b);
const div = (a: Num, b: Num): Num => {
  if (isT(a)) return a.div(b);
  if (isT(b)) return wrap(native.call(op('aten::reciprocal'), b._h)).mul(a); // Tensor.__rtruediv__
  if (b === 0) throw new Error('ZeroDivisionError: float division by zero');
  return a / b;
};
const truth = (t: Tensor): boolean => t.item() as boolean;
const lt = (a: Num, b: Num): boolean => (isT(a) ? truth(a.lt(b)) : isT(b) ? truth(b.gt(a)) : a < b);
const le = (a: Num, b: Num): boolean => (isT(a) ? truth(a.le(b)) : isT(b) ? truth(b.ge(a)) : a <= b);
const gt = (a: Num, b: Num): boolean => lt(b, a);
const ge = (a: Num, b: Num): boolean => le(b, a);
const pyAbs = (a: Num): Num => (isT(a) ? a.abs() : Math.abs(a));
/** Python's min/max over a list: the first element, replaced by each later one that compares smaller/larger. */
const pyMin = (...xs: Num[]): Num => xs.reduce((m, x) => (lt(x, m) ? x : m));
const pyMax = (...xs: Num[]): Num => xs.reduce((m, x) => (gt(x, m) ? x : m));
const scalar = (a: Num): number => (isT(a) ? (a.item() as number) : a);
const dot = (a: Tensor, b: Tensor): Tensor => wrap(native.call(op('aten::dot'), a._h, b._h));

function cubicInterpolate(x1: Num, f1: Num, g1: Num, x2: Num, f2: Num, g2: Num, bounds?: [Num, Num]): Num {
  const [xminBound, xmaxBound] = bounds ?? (le(x1, x2) ? [x1, x2] : [x2, x1]);
  const d1 = sub(add(g1, g2), div(mul(3, sub(f1, f2)), sub(x1, x2)));
  const d2Square = sub(isT(d1) ? d1.pow(2) : d1 ** 2, mul(g1, g2));
  if (ge(d2Square, 0)) {
    if (!isT(d2Square)) throw new TypeError("'float' object has no attribute 'sqrt'"); // as Python would fail
    const d2 = d2Square.sqrt();
    const minPos = le(x1, x2)
      ? sub(x2, mul(sub(x2, x1), div(sub(add(g2, d2), d1), add(sub(g2, g1), mul(2, d2)))))
      : sub(x1, mul(sub(x1, x2), div(sub(add(g1, d2), d1), add(sub(g1, g2), mul(2, d2)))));
    return pyMin(pyMax(minPos, xminBound), xmaxBound);
  }
  return div(add(xminBound, xmaxBound), 2);
}

type ObjFunc = (x: Tensor[], t: Num, d: Tensor) => [number, Tensor];

function strongWolfe(
  objFunc: ObjFunc,
  x: Tensor[],
  t: Num,
  d: Tensor,
  f: number,
  g: Tensor,
  gtd: Tensor,
  c1 = 1e-4,
  c2 = 0.9,
  toleranceChange = 1e-9,
  maxLs = 25,
): [number, Tensor, Num, number] {
  const dNorm = d.abs().max();
  g = g.clone();
  let [fNew, gNew] = objFunc(x, t, d);
  let lsFuncEvals = 1;
  let gtdNew = dot(gNew, d);
  let tPrev: Num = 0;
  let fPrev: number = f;
  let gPrev = g;
  let gtdPrev: Num = gtd;
  let done = false;
  let lsIter = 0;
  let bracket: Num[] = [];
  let bracketF: number[] = [];
  let bracketG: Tensor[] = [];
  let bracketGtd: Num[] = [];
  while (lsIter < maxLs) {
    if (gt(fNew, add(f, mul(mul(c1, t), gtd))) || (lsIter > 1 && fNew >= fPrev)) {
      bracket = [tPrev, t];
      bracketF = [fPrev, fNew];
      bracketG = [gPrev, gNew.clone()];
      bracketGtd = [gtdPrev, gtdNew];
      break;
    }
    if (le(pyAbs(gtdNew), mul(-c2, gtd))) {
      bracket = [t];
      bracketF = [fNew];
      bracketG = [gNew];
      done = true;
      break;
    }
    if (ge(gtdNew, 0)) {
      bracket = [tPrev, t];
      bracketF = [fPrev, fNew];
      bracketG = [gPrev, gNew.clone()];
      bracketGtd = [gtdPrev, gtdNew];
      break;
    }
    const minStep = add(t, mul(0.01, sub(t, tPrev)));
    const maxStep = mul(t, 10);
    const tmp = t;
    t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, [minStep, maxStep]);
    tPrev = tmp;
    fPrev = fNew;
    gPrev = gNew.clone();
    gtdPrev = gtdNew;
    [fNew, gNew] = objFunc(x, t, d);
    lsFuncEvals += 1;
    gtdNew = dot(gNew, d);
    lsIter += 1;
  }
  if (lsIter === maxLs) {
    bracket = [0, t];
    bracketF = [f, fNew];
    bracketG = [g, gNew];
  }
  let insufProgress = false;
  let [lowPos, highPos] = bracketF[0] <= bracketF[bracketF.length - 1] ? [0, 1] : [1, 0];
  while (!done && lsIter < maxLs) {
    if (lt(mul(pyAbs(sub(bracket[1], bracket[0])), dNorm), toleranceChange)) break;
    t = cubicInterpolate(bracket[0], bracketF[0], bracketGtd[0], bracket[1], bracketF[1], bracketGtd[1]);
    const eps = mul(0.1, sub(pyMax(...bracket), pyMin(...bracket)));
    if (lt(pyMin(sub(pyMax(...bracket), t), sub(t, pyMin(...bracket))), eps)) {
      if (insufProgress || ge(t, pyMax(...bracket)) || le(t, pyMin(...bracket))) {
        if (lt(pyAbs(sub(t, pyMax(...bracket))), pyAbs(sub(t, pyMin(...bracket))))) t = sub(pyMax(...bracket), eps);
        else t = add(pyMin(...bracket), eps);
        insufProgress = false;
      } else {
        insufProgress = true;
      }
    } else {
      insufProgress = false;
    }
    [fNew, gNew] = objFunc(x, t, d);
    lsFuncEvals += 1;
    gtdNew = dot(gNew, d);
    lsIter += 1;
    if (gt(fNew, add(f, mul(mul(c1, t), gtd))) || fNew >= bracketF[lowPos]) {
      bracket[highPos] = t;
      bracketF[highPos] = fNew;
      bracketG[highPos] = gNew.clone();
      bracketGtd[highPos] = gtdNew;
      [lowPos, highPos] = bracketF[0] <= bracketF[1] ? [0, 1] : [1, 0];
    } else {
      if (le(pyAbs(gtdNew), mul(-c2, gtd))) {
        done = true;
      } else if (ge(mul(gtdNew, sub(bracket[highPos], bracket[lowPos])), 0)) {
        bracket[highPos] = bracket[lowPos];
        bracketF[highPos] = bracketF[lowPos];
        bracketG[highPos] = bracketG[lowPos];
        bracketGtd[highPos] = bracketGtd[lowPos];
      }
      bracket[lowPos] = t;
      bracketF[lowPos] = fNew;
      bracketG[lowPos] = gNew.clone();
      bracketGtd[lowPos] = gtdNew;
    }
  }
  return [bracketF[lowPos], bracketG[lowPos], bracket[lowPos], lsFuncEvals];
}

/** Options of {@link LBFGS}, as in `torch.optim.LBFGS` (camelCase). */
export interface LBFGSOptions {
  /** Learning rate (default 1). */
  lr?: number;
  /** Maximal number of iterations per `step()` (default 20). */
  maxIter?: number;
  /** Maximal number of function evaluations per `step()` (default `floor(maxIter * 5 / 4)`). */
  maxEval?: number | null;
  /** Termination tolerance on first-order optimality (default 1e-7). */
  toleranceGrad?: number;
  /** Termination tolerance on function value / parameter changes (default 1e-9). */
  toleranceChange?: number;
  /** Update history size (default 100). */
  historySize?: number;
  /** `'strong_wolfe'` or null (default null: a fixed step of `lr`). */
  lineSearchFn?: 'strong_wolfe' | null;
}

/** The one parameter group of {@link LBFGS}. */
export interface LBFGSParamGroup extends ParamGroup {
  maxIter: number;
  maxEval: number;
  toleranceGrad: number;
  toleranceChange: number;
  historySize: number;
  lineSearchFn: 'strong_wolfe' | null;
}

/**
 * L-BFGS (`torch.optim.LBFGS`), with PyTorch's optional strong-Wolfe line search.
 * `step(closure)` needs the closure, which clears the gradients, computes the
 * loss, calls `backward()` and returns the loss; it may run many times per step.
 *
 * ```ts
 * const opt = new optim.LBFGS([image], { lineSearchFn: 'strong_wolfe' });
 * opt.step(() => { opt.zeroGrad(); const loss = lossOf(image); loss.backward(); return loss; });
 * ```
 *
 * One parameter group only; the state (history of directions and steps) is kept
 * on the first parameter, as in PyTorch, so `stateDict()` has PyTorch's layout.
 */
export class LBFGS extends Optimizer<LBFGSParamGroup> {
  constructor(params: ParamsInput<LBFGSOptions>, opts: LBFGSOptions = {}) {
    const maxIter = opts.maxIter ?? 20;
    super(
      params,
      {
        lr: opts.lr ?? 1,
        maxIter,
        maxEval: opts.maxEval ?? Math.floor((maxIter * 5) / 4),
        toleranceGrad: opts.toleranceGrad ?? 1e-7,
        toleranceChange: opts.toleranceChange ?? 1e-9,
        historySize: opts.historySize ?? 100,
        lineSearchFn: opts.lineSearchFn ?? null,
      },
      opts,
    );
    if (this.paramGroups.length !== 1) throw new Error("LBFGS doesn't support per-parameter options (parameter groups)");
  }

  protected checkOptions(o: Record<string, unknown>): void {
    checkNumber(o.lr, 'learning rate', (x) => x >= 0);
    for (const k of ['maxIter', 'maxEval', 'historySize']) {
      if (o[k] !== undefined) checkNumber(o[k], k, (x) => Number.isInteger(x) && x >= 1);
    }
    checkNumber(o.toleranceGrad, 'toleranceGrad', (x) => x >= 0);
    checkNumber(o.toleranceChange, 'toleranceChange', (x) => x >= 0);
    if (o.lineSearchFn !== null && o.lineSearchFn !== undefined && o.lineSearchFn !== 'strong_wolfe') {
      throw new Error(`only 'strong_wolfe' is supported, got ${describe(o.lineSearchFn)}`);
    }
  }

  protected stateKey(name: string): string {
    return name === 'HDiag' ? 'H_diag' : super.stateKey(name);
  }

  private get params(): Tensor[] {
    return this.paramGroups[0].params;
  }

  private gatherFlatGrad(): Tensor {
    return cat(
      this.params.map((p) => {
        const g = p.grad;
        return g === null ? zeros([p.numel()], { dtype: p.dtype, device: p.device }) : g.view(-1);
      }),
      0,
    );
  }

  private addGrad(stepSize: Num, update: Tensor): void {
    let offset = 0;
    const alpha = scalar(stepSize);
    for (const p of this.params) {
      const numel = p.numel();
      p.add_(update.narrow(0, offset, numel).view(p.shape), alpha);
      offset += numel;
    }
  }

  private directionalEvaluate(closure: () => unknown, x: Tensor[], t: Num, d: Tensor): [number, Tensor] {
    this.addGrad(t, d);
    const loss = toFloat(enableGrad(closure));
    const flatGrad = this.gatherFlatGrad();
    this.params.forEach((p, i) => p.copy_(x[i]));
    return [loss, flatGrad];
  }

  /** Runs up to `maxIter` L-BFGS iterations; returns the closure's first loss (as PyTorch). */
  step<T = unknown>(closure?: () => T): T | undefined {
    if (typeof closure !== 'function') throw new TypeError(`LBFGS.step(): a closure that returns the loss is required, got ${describe(closure)}`);
    const before = stateTensors(this.state);
    let after = new Set<Tensor>();
    const result = tidy(() => {
      const r = noGrad(() => this.run(closure));
      after = stateTensors(this.state); // the state outlives the step's scope
      for (const t of after) keep(t);
      return r;
    });
    for (const t of before) if (!after.has(t) && !t.isDisposed) t.dispose();
    return result;
  }

  private run<T>(closure: () => T): T {
    const group = this.paramGroups[0];
    const { lr, maxIter, maxEval, toleranceGrad, toleranceChange, lineSearchFn, historySize } = group;
    const state = this.stateOf(this.params[0]) as Record<string, any>;
    state.funcEvals ??= 0;
    state.nIter ??= 0;
    const origLoss = enableGrad(closure);
    let loss = toFloat(origLoss);
    let currentEvals = 1;
    state.funcEvals += 1;
    let flatGrad = this.gatherFlatGrad();
    let optCond = truth(flatGrad.abs().max().le(toleranceGrad));
    if (optCond) return origLoss;

    let d = state.d as Tensor | undefined;
    let t = state.t as Num | undefined;
    let oldDirs = state.oldDirs as Tensor[] | undefined;
    let oldStps = state.oldStps as Tensor[] | undefined;
    let ro = state.ro as Tensor[] | undefined;
    let hDiag = state.HDiag as Num | undefined;
    let prevFlatGrad = state.prevFlatGrad as Tensor | undefined | null;
    let prevLoss = state.prevLoss as number | undefined;
    let nIter = 0;
    while (nIter < maxIter) {
      nIter += 1;
      state.nIter += 1;
      if (state.nIter === 1) {
        d = flatGrad.neg();
        oldDirs = [];
        oldStps = [];
        ro = [];
        hDiag = 1;
      } else {
        const y = flatGrad.sub(prevFlatGrad!);
        const s = d!.mul(t!);
        const ys = dot(y, s);
        if (gt(ys, 1e-10)) {
          if (oldDirs!.length === historySize) {
            oldDirs!.shift();
            oldStps!.shift();
            ro!.shift();
          }
          oldDirs!.push(y);
          oldStps!.push(s);
          ro!.push(div(1, ys) as Tensor);
          hDiag = div(ys, dot(y, y));
        }
        const numOld = oldDirs!.length;
        state.al ??= new Array(historySize).fill(null);
        const al = state.al as (Tensor | null)[];
        const q = flatGrad.neg();
        for (let i = numOld - 1; i >= 0; i--) {
          al[i] = dot(oldStps![i], q).mul(ro![i]);
          q.add_(oldDirs![i], scalar(al[i]!.neg()));
        }
        const r = q.mul(hDiag!);
        d = r;
        for (let i = 0; i < numOld; i++) {
          const beI = dot(oldDirs![i], r).mul(ro![i]);
          r.add_(oldStps![i], scalar(al[i]!.sub(beI)));
        }
      }
      if (prevFlatGrad === undefined || prevFlatGrad === null) prevFlatGrad = flatGrad.clone();
      else prevFlatGrad.copy_(flatGrad);
      prevLoss = loss;

      if (state.nIter === 1) t = mul(pyMin(1, div(1, flatGrad.abs().sum())), lr);
      else t = lr;
      const gtd = dot(flatGrad, d!);
      if (gt(gtd, -toleranceChange)) break;

      let lsFuncEvals = 0;
      if (lineSearchFn !== null) {
        const xInit = this.params.map((p) => p.clone());
        const objFunc: ObjFunc = (x, tt, dd) => this.directionalEvaluate(closure, x, tt, dd);
        // Later releases bound the line search by the evaluations left (releases.ts).
        const maxLs = rules.lbfgsLineSearchWithinMaxEval ? maxEval - currentEvals : undefined;
        [loss, flatGrad, t, lsFuncEvals] = strongWolfe(objFunc, xInit, t, d!, loss, flatGrad, gtd, undefined, undefined, undefined, maxLs);
        this.addGrad(t, d!);
        optCond = truth(flatGrad.abs().max().le(toleranceGrad));
      } else {
        this.addGrad(t, d!);
        if (nIter !== maxIter) {
          loss = toFloat(enableGrad(closure));
          flatGrad = this.gatherFlatGrad();
          optCond = truth(flatGrad.abs().max().le(toleranceGrad));
          lsFuncEvals = 1;
        }
      }
      currentEvals += lsFuncEvals;
      state.funcEvals += lsFuncEvals;

      if (nIter === maxIter) break;
      if (currentEvals >= maxEval) break;
      if (optCond) break;
      if (truth(d!.mul(t).abs().max().le(toleranceChange))) break;
      if (Math.abs(loss - prevLoss) < toleranceChange) break;
    }
    Object.assign(state, { d, t, oldDirs, oldStps, ro, HDiag: hDiag, prevFlatGrad, prevLoss });
    return origLoss;
  }
}

// Python's float(loss) of the closure's result.
function toFloat(v: unknown): number {
  if (v instanceof Tensor) return v.item() as number;
  if (typeof v === 'number') return v;
  throw new TypeError(`LBFGS: the closure must return the loss (a Tensor or a number), got ${describe(v)}`);
}

function stateTensors(state: Map<Tensor, Record<string, StateValue>>): Set<Tensor> {
  const out = new Set<Tensor>();
  const visit = (v: unknown): void => {
    if (v instanceof Tensor) out.add(v);
    else if (Array.isArray(v)) v.forEach(visit);
  };
  for (const s of state.values()) Object.values(s).forEach(visit);
  return out;
}
