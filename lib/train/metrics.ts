// Classification metrics: top-k accuracy (as in PyTorch's ImageNet example), a
// confusion matrix and per-class accuracy (as in the CIFAR-10 tutorial). The
// counting runs as libtorch ops (topk, eq, bincount); only the K×K counts come to JS.
import { native, op, type Handle } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';

function cumsum(x: Tensor, dim: number): Tensor {
  return wrap(native.call(op('aten::cumsum'), x._h, dim) as Handle);
}

function check(output: Tensor, target: Tensor, what: string): void {
  for (const [name, t] of [
    ['output', output],
    ['target', target],
  ] as const) {
    if (!(t instanceof Tensor)) throw new TypeError(`${what}: argument '${name}' must be a Tensor, got ${describe(t)}`);
  }
  if (output.ndim !== 2) throw new RangeError(`${what}: output must be (N, classes) scores, got shape [${output.shape.join(', ')}]`);
  if (target.ndim !== 1 || target.shape[0] !== output.shape[0]) {
    throw new RangeError(`${what}: target must be (N) class indices for ${output.shape[0]} outputs, got shape [${target.shape.join(', ')}]`);
  }
}

/**
 * Top-k accuracy, in percent, of scores `output` (N, classes) against class
 * indices `target` (N): `accuracy(out, y)` → top-1; `accuracy(out, y, { topk: [1, 5] })` → `[top1, top5]`.
 */
export function accuracy(output: Tensor, target: Tensor): number;
export function accuracy(output: Tensor, target: Tensor, opts: { topk: number }): number;
export function accuracy(output: Tensor, target: Tensor, opts: { topk: number[] }): number[];
export function accuracy(output: Tensor, target: Tensor, opts: { topk?: number | number[] } = {}): number | number[] {
  checkOptions('accuracy()', opts, ['topk']);
  check(output, target, 'accuracy()');
  const ks = opts.topk === undefined ? [1] : Array.isArray(opts.topk) ? opts.topk : [opts.topk];
  const n = output.shape[0];
  const classes = output.shape[1];
  for (const k of ks)
    if (!Number.isInteger(k) || k < 1 || k > classes) throw new RangeError(`accuracy(): topk ${describe(k)} must be an integer between 1 and ${classes}`);
  if (n === 0) return Array.isArray(opts.topk) ? ks.map(() => 0) : 0;
  const maxk = Math.max(...ks);
  const temps: Tensor[] = [];
  const t = <X extends Tensor>(x: X): X => {
    temps.push(x);
    return x;
  };
  try {
    const [, pred] = output.detach().topk(maxk, 1, true, true).map(t); // (N, maxk), best first
    const hits = t(t(cumsum(t(pred.eq(t(t(target.view(-1, 1)).expandAs(pred)))), 1)).gt(0)); // a hit within the first j+1
    const perK = t(t(hits.sum(0, false, { dtype: 'int64' })).cpu()).toTypedArray() as BigInt64Array;
    const acc = ks.map((k) => (Number(perK[k - 1]) * 100) / n);
    return Array.isArray(opts.topk) ? acc : acc[0];
  } finally {
    for (const x of temps) x.dispose();
  }
}

/**
 * The `numClasses`×`numClasses` confusion matrix (int64): row = true class,
 * column = predicted class. `predicted` is (N) class indices or (N, classes) scores (argmax taken).
 */
export function confusionMatrix(predicted: Tensor, target: Tensor, numClasses: number): Tensor {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`confusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
  const temps: Tensor[] = [];
  const t = (x: Tensor): Tensor => {
    temps.push(x);
    return x;
  };
  try {
    let pred = predicted;
    if (pred.ndim === 2) {
      check(pred, target, 'confusionMatrix');
      pred = t(pred.argmax(1));
    }
    if (pred.ndim !== 1 || target.ndim !== 1 || pred.shape[0] !== target.shape[0]) {
      throw new RangeError(`confusionMatrix: predicted (${pred.shape.join(', ')}) and target (${target.shape.join(', ')}) must be N class indices each`);
    }
    const p = t(t(pred.long()).cpu());
    const y = t(t(target.long()).cpu());
    for (const [name, v] of [
      ['target', y],
      ['predicted', p],
    ] as const) {
      if (v.numel() && (Number(t(v.min()).item()) < 0 || Number(t(v.max()).item()) >= numClasses)) {
        throw new RangeError(`confusionMatrix: ${name} class indices must be in [0, ${numClasses})`);
      }
    }
    const flat = t(t(y.mul(numClasses)).add(p));
    const counts = t(wrap(native.call(op('aten::bincount'), flat._h, null, numClasses * numClasses) as Handle));
    return counts.view(numClasses, numClasses);
  } finally {
    for (const x of temps) x.dispose();
  }
}

/** Accuracy of each class in percent (the diagonal over row sums; NaN for a class never seen) from a confusion matrix. */
export function perClassAccuracy(matrix: Tensor | ConfusionMatrix): number[] {
  const m = matrix instanceof ConfusionMatrix ? matrix.counts : matrixCounts(matrix);
  const k = Math.round(Math.sqrt(m.length));
  return Array.from({ length: k }, (_, i) => {
    let row = 0;
    for (let j = 0; j < k; j++) row += m[i * k + j];
    return row === 0 ? NaN : (m[i * k + i] * 100) / row;
  });
}

function matrixCounts(m: Tensor): Float64Array {
  if (m.ndim !== 2 || m.shape[0] !== m.shape[1])
    throw new RangeError(`perClassAccuracy: expected a square confusion matrix, got shape [${m.shape.join(', ')}]`);
  return Float64Array.from(m.toTypedArray() as ArrayLike<number | bigint>, Number);
}

/**
 * A running confusion matrix over an evaluation: `update(output, target)` per
 * batch, then `accuracy()`, `perClassAccuracy()`, or `toString()` for the
 * tutorial's "Accuracy for class: plane is 65.1 %" lines. Counts live in JS, so
 * nothing needs disposing.
 */
export class ConfusionMatrix {
  readonly numClasses: number;
  readonly classes: readonly string[] | null;
  /** Row-major counts: [true class * K + predicted class]. */
  readonly counts: Float64Array;

  constructor(classes: number | readonly string[]) {
    if (
      !((Number.isInteger(classes) && (classes as number) > 0) || (Array.isArray(classes) && classes.length > 0 && classes.every((c) => typeof c === 'string')))
    ) {
      throw new TypeError(`ConfusionMatrix: classes must be a positive integer or an array of names, got ${describe(classes)}`);
    }
    this.classes = typeof classes === 'number' ? null : [...classes];
    this.numClasses = typeof classes === 'number' ? classes : classes.length;
    this.counts = new Float64Array(this.numClasses * this.numClasses);
  }
  /** Adds a batch: `output` (N, classes) scores or (N) predictions, `target` (N). */
  update(output: Tensor, target: Tensor): this {
    const m = confusionMatrix(output, target, this.numClasses);
    const c = m.toTypedArray() as BigInt64Array;
    m.dispose();
    for (let i = 0; i < c.length; i++) this.counts[i] += Number(c[i]);
    return this;
  }
  reset(): void {
    this.counts.fill(0);
  }
  get total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }
  /** Overall accuracy in percent. */
  accuracy(): number {
    const k = this.numClasses;
    let hit = 0;
    for (let i = 0; i < k; i++) hit += this.counts[i * k + i];
    return this.total === 0 ? NaN : (hit * 100) / this.total;
  }
  perClassAccuracy(): number[] {
    return perClassAccuracy(this);
  }
  /** The counts as an int64 tensor (owned by the caller). */
  toTensor(): Tensor {
    const data = BigInt64Array.from(this.counts, (v) => BigInt(v));
    return wrap(native.fromBuffer(data.buffer, 0, [this.numClasses, this.numClasses], dtypeCode('int64'), false));
  }
  toString(): string {
    return this.perClassAccuracy()
      .map((a, i) => `Accuracy for class: ${(this.classes?.[i] ?? String(i)).padEnd(5)} is ${Number.isNaN(a) ? 'n/a' : a.toFixed(1)} %`)
      .join('\n');
  }
}
