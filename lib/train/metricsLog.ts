// Training metrics as JSON lines: one record per logged mini-batch, per epoch
// and per evaluation. The same records feed the progress output, the chart
// file, the live page and the checkpoint (so a resumed run continues its curve).
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The running loss over the last `logEvery` mini-batches (the tutorial's `[epoch, batch] loss`). */
export interface BatchRecord {
  kind: 'batch';
  /** 1-based epoch. */
  epoch: number;
  /** 1-based mini-batch within the epoch. */
  batch: number;
  /** Mini-batches since the start of training (1-based). */
  step: number;
  /** Mean loss over the mini-batches since the previous batch record of this epoch. */
  loss: number;
  /** Training accuracy (percent) over the same mini-batches. */
  accuracy: number;
  /** Learning rate of the first parameter group. */
  lr: number;
  /** Milliseconds since the epoch (Date.now()). */
  time: number;
}

/** The end of an epoch. */
export interface EpochRecord {
  kind: 'epoch';
  epoch: number;
  step: number;
  trainLoss: number;
  /** Percent. */
  trainAccuracy: number;
  testLoss?: number;
  /** Percent. */
  testAccuracy?: number;
  lr: number;
  /** Wall-clock seconds the epoch's training took. */
  seconds: number;
  imagesPerSecond: number;
  /** The training precision (fit()'s `amp`): `'fp32'`, `'bf16'` or `'fp16'` (absent in logs written before mixed precision). */
  precision?: 'fp32' | 'bf16' | 'fp16';
  /** With fp16: the GradScaler's scale at the end of the epoch. */
  lossScale?: number;
  time: number;
}

/** An evaluation: overall and per-class accuracy and the confusion matrix. */
export interface EvalRecord {
  kind: 'eval';
  /** The epoch evaluated after (0 for a standalone evaluation). */
  epoch: number;
  classes: string[];
  loss: number;
  /** Percent. */
  accuracy: number;
  /** Percent per class; NaN (written as null) where a class has no samples. */
  perClass: (number | null)[];
  /** counts[true][predicted]. */
  confusion: number[][];
  time: number;
}

export type MetricsRecord = BatchRecord | EpochRecord | EvalRecord;

/**
 * An append-only metrics log, in memory and (when given a file) as JSON lines
 * written as each record arrives, so a crash loses nothing already logged.
 */
export class MetricsLog {
  readonly records: MetricsRecord[] = [];
  readonly file: string | null;
  private readonly listeners: ((r: MetricsRecord) => void)[] = [];

  /** `file`: the JSON-lines path (created, or truncated to `initial`). */
  constructor(file: string | null = null, initial: readonly MetricsRecord[] = []) {
    this.file = file;
    this.records.push(...initial);
    if (file) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, initial.map((r) => `${JSON.stringify(r)}\n`).join(''));
    }
  }

  /** Reads a JSON-lines file written by a MetricsLog. */
  static read(file: string): MetricsRecord[] {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line, i) => {
        try {
          return JSON.parse(line) as MetricsRecord;
        } catch {
          throw new Error(`MetricsLog.read(): ${file}:${i + 1} is not JSON`);
        }
      });
  }

  append(record: MetricsRecord): void {
    this.records.push(record);
    if (this.file) appendFileSync(this.file, `${JSON.stringify(record)}\n`);
    for (const fn of this.listeners) fn(record);
  }

  /** Calls `fn` for every record appended from now on. */
  onAppend(fn: (r: MetricsRecord) => void): void {
    this.listeners.push(fn);
  }
}
