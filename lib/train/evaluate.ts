// Evaluation of a classifier over a loader: loss, overall and per-class
// accuracy and the confusion matrix, printed the way the CIFAR-10 tutorial
// prints them and recorded for the chart page.
import { noGrad } from '../autograd.js';
import type { DataLoader } from '../data/dataloader.js';
import { ConfusionMatrix } from './metrics.js';
import { type ProcessGroup, allReduceNumbers } from '../distributed/distributedC10d.js';
import type { Module } from '../nn/modules/module.js';
import { CrossEntropyLoss } from '../nn/modules/loss.js';
import { tidy } from '../tensor/scope.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import type { EvalRecord } from './metricsLog.js';

/** The result of {@link evaluate}. */
export interface Evaluation {
  /** Mean loss per sample. */
  loss: number;
  /** Percent. */
  accuracy: number;
  /** Percent per class (NaN where the class has no samples). */
  perClass: number[];
  matrix: ConfusionMatrix;
  classes: string[];
  /** Samples evaluated. */
  total: number;
}

export interface EvaluateOptions {
  /** Default `CrossEntropyLoss` (mean reduction; weighted by batch size here). */
  criterion?: Module<[Tensor, Tensor], Tensor>;
  /** Class names (default `'0'`, `'1'`, …, as many as the model's outputs). */
  classes?: readonly string[];
  device?: Device;
  /**
   * Each rank of this group evaluates its own share of the data (its loader's
   * samples); the losses, counts and confusion matrices are summed over the
   * group, so every rank gets the figures of the whole set.
   */
  processGroup?: ProcessGroup | null;
}

/**
 * Runs `model` in eval mode without gradients over `loader` (batches of
 * `[images, labels]`), and puts the model back in the mode it was in.
 */
export async function evaluate(model: Module<[Tensor], Tensor>, loader: DataLoader<any, [Tensor, Tensor]>, opts: EvaluateOptions = {}): Promise<Evaluation> {
  if (typeof (model as { forward?: unknown } | null)?.forward !== 'function')
    throw new TypeError(`evaluate(): argument 'model' must be a Module, got ${describe(model)}`);
  checkOptions('evaluate()', opts, ['criterion', 'classes', 'device', 'processGroup']);
  const criterion = opts.criterion ?? new CrossEntropyLoss();
  const device = opts.device ?? 'cpu';
  const wasTraining = model.training;
  model.eval();
  let matrix: ConfusionMatrix | null = opts.classes ? new ConfusionMatrix(opts.classes) : null;
  let lossSum = 0;
  let total = 0;
  try {
    for await (const [images, labels] of loader) {
      try {
        tidy(() =>
          noGrad(() => {
            const target = labels.to(device);
            const output = model(images.to(device));
            matrix ??= new ConfusionMatrix(Array.from({ length: output.shape[1] }, (_, i) => String(i)));
            if (output.shape[1] !== matrix.numClasses) {
              throw new RangeError(`evaluate(): the model has ${output.shape[1]} outputs but there are ${matrix.numClasses} classes`);
            }
            const n = target.shape[0];
            lossSum += (criterion(output, target).item() as number) * n;
            total += n;
            matrix.update(output, target);
          }),
        );
      } finally {
        images.dispose();
        labels.dispose();
      }
    }
  } finally {
    model.train(wasTraining);
  }
  if (opts.processGroup) [matrix, lossSum, total] = sumOverGroup(opts.processGroup, matrix, lossSum, total);
  if (!matrix || total === 0) throw new RangeError('evaluate(): the loader gave no samples');
  return {
    loss: lossSum / total,
    accuracy: matrix.accuracy(),
    perClass: matrix.perClassAccuracy(),
    matrix,
    classes: [...(matrix.classes ?? [])],
    total,
  };
}

/** The totals of every rank (a rank without samples may not know the number of classes yet). */
function sumOverGroup(group: ProcessGroup, matrix: ConfusionMatrix | null, lossSum: number, total: number): [ConfusionMatrix | null, number, number] {
  const [numClasses] = allReduceNumbers([matrix?.numClasses ?? 0], { op: 'max', group });
  if (numClasses === 0) return [matrix, lossSum, total];
  if (matrix && matrix.numClasses !== numClasses)
    throw new RangeError(`evaluate(): this rank's model has ${matrix.numClasses} outputs, another's ${numClasses}`);
  const m = matrix ?? new ConfusionMatrix(numClasses);
  const all = allReduceNumbers([lossSum, total, ...m.counts], { op: 'sum', group });
  m.counts.set(all.slice(2));
  return [m, all[0], all[1]];
}

/**
 * The report as text: the tutorial's accuracy lines, one line per class, and
 * the confusion matrix (rows: true class, columns: predicted).
 */
export function formatEvaluation(ev: Evaluation): string {
  const lines = [`Accuracy of the network on the ${ev.total} test images: ${ev.accuracy.toFixed(1)} %  (loss ${ev.loss.toFixed(4)})`];
  lines.push(ev.matrix.toString());
  const k = ev.classes.length;
  const counts = ev.matrix.counts;
  const width = Math.max(5, ...ev.classes.map((c) => c.length), ...Array.from(counts, (v) => String(v).length)) + 1;
  const head = Math.max(...ev.classes.map((c) => c.length), 'true \\ predicted'.length);
  lines.push('Confusion matrix (rows: true class, columns: predicted):');
  lines.push('true \\ predicted'.padEnd(head) + ev.classes.map((c) => c.padStart(width)).join(''));
  for (let i = 0; i < k; i++) {
    let row = ev.classes[i].padEnd(head);
    for (let j = 0; j < k; j++) row += String(counts[i * k + j]).padStart(width);
    lines.push(row);
  }
  return lines.join('\n');
}

/** The evaluation as a metrics record (for the JSON-lines log and the chart page). */
export function evaluationRecord(ev: Evaluation, epoch: number): EvalRecord {
  const k = ev.classes.length;
  return {
    kind: 'eval',
    epoch,
    classes: [...ev.classes],
    loss: ev.loss,
    accuracy: ev.accuracy,
    perClass: ev.perClass.map((v) => (Number.isNaN(v) ? null : v)),
    confusion: Array.from({ length: k }, (_, i) => Array.from(ev.matrix.counts.subarray(i * k, (i + 1) * k))),
    time: Date.now(),
  };
}
