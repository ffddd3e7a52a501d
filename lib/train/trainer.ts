// fit(): the training loop of the CIFAR-10 tutorial, once, for every example
// and the CLI: per-batch steps, the `[epoch, batch] loss` lines, a progress
// bar, metrics as JSON lines, the chart file and live page, evaluation after
// every epoch, and checkpoints (every epoch and on Ctrl-C) that resume exactly.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DataLoader, EpochIterator } from '../data/dataloader.js';
import type { Module } from '../nn/modules/module.js';
import { CrossEntropyLoss } from '../nn/modules/loss.js';
import type { LRScheduler } from '../optim/lrScheduler.js';
import type { Optimizer } from '../optim/optimizer.js';
import { tidy } from '../tensor/scope.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import { writeChartHtml } from './chart.js';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type Evaluation, evaluate, evaluationRecord, formatEvaluation } from './evaluate.js';
import { type LiveServer, startLiveServer } from './live.js';
import { type BatchRecord, type MetricsRecord, MetricsLog } from './metricsLog.js';
import { ProgressBar } from './progress.js';

export interface FitOptions {
  model: Module<[Tensor], Tensor>;
  /** Batches of `[images, labels]`. */
  trainLoader: DataLoader<any, [Tensor, Tensor]>;
  /** Evaluated after every epoch when given. */
  testLoader?: DataLoader<any, [Tensor, Tensor]> | null;
  optimizer: Optimizer<any>;
  scheduler?: LRScheduler | null;
  /**
   * When the scheduler steps: at the end of each epoch (PyTorch's documented
   * order; the default), at the start, as the CIFAR-10 tutorial does, or after
   * every optimizer step (`'batch'`, for OneCycleLR and warm-ups).
   */
  schedulerStep?: 'epoch-end' | 'epoch-start' | 'batch';
  /** Default `CrossEntropyLoss`. */
  criterion?: Module<[Tensor, Tensor], Tensor>;
  /** Total epochs (a resumed run continues up to this number). */
  epochs: number;
  device?: Device;
  /** Class names for the evaluation report. */
  classes?: readonly string[];
  /** A `[epoch, batch] loss` line and a metrics record every this many batches (default 30, as the tutorial). */
  logEvery?: number;
  /**
   * Where `metrics.jsonl`, `chart.html` and `checkpoint.pth` go (written as
   * training goes); null: nothing is written.
   */
  outDir?: string | null;
  /** Stored in every checkpoint, e.g. how to rebuild the model. */
  meta?: Record<string, unknown>;
  /**
   * A checkpoint to continue from: its path, `true` for `outDir/checkpoint.pth`,
   * or one already read by {@link loadCheckpoint} (e.g. to check its `meta`
   * first), which fit() takes over and disposes once restored.
   */
  resume?: string | boolean | Checkpoint | null;
  /** Serve the live chart on `http://127.0.0.1:PORT` (`true` or 0: a free port). */
  live?: boolean | number;
  /** Ctrl-C saves a checkpoint after the current batch and stops (default true). */
  handleSignals?: boolean;
  /** Aborting it does what Ctrl-C does. */
  signal?: AbortSignal;
  /** Title of the chart page. */
  title?: string;
  /** Where progress goes (default `process.stdout`); a non-TTY stream gets plain lines only. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Called with every metrics record as it is logged. */
  onRecord?: (record: MetricsRecord) => void;
}

export interface FitResult {
  /** Epochs completed. */
  epochs: number;
  /** Batches completed since the start of training. */
  step: number;
  /** Stopped by Ctrl-C or the abort signal (a checkpoint was saved if `outDir` is set). */
  interrupted: boolean;
  /** Every record, those of the resumed run included. */
  metrics: MetricsRecord[];
  /** The last evaluation, if any. */
  evaluation: Evaluation | null;
  /** The last checkpoint written. */
  checkpoint: string | null;
  /** The live page's address while it runs. */
  liveUrl: string | null;
}

/** Running sums; saved in mid-epoch checkpoints so the epoch's figures come out the same after resuming. */
interface Sums {
  epochLoss: number;
  epochCorrect: number;
  epochImages: number;
  epochSeconds: number;
  windowLoss: number;
  windowCorrect: number;
  windowImages: number;
  windowBatches: number;
}
const zeroSums = (): Sums => ({
  epochLoss: 0, epochCorrect: 0, epochImages: 0, epochSeconds: 0, windowLoss: 0, windowCorrect: 0, windowImages: 0, windowBatches: 0,
});

/** Lets signal handlers and the live server run between batches of a synchronous loop. */
const turnEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Trains `model`, printing the tutorial's `[epoch, batch] loss: x.xxx` lines
 * (with accuracy and learning rate) and a progress bar, evaluating after each
 * epoch, and checkpointing so that `resume` continues with exactly the losses
 * an uninterrupted run would have had.
 */
const FIT_OPTIONS = [
  'model', 'trainLoader', 'testLoader', 'optimizer', 'scheduler', 'schedulerStep', 'criterion', 'epochs', 'device', 'classes',
  'logEvery', 'outDir', 'meta', 'resume', 'live', 'handleSignals', 'signal', 'title', 'stream', 'onRecord',
];

export async function fit(opts: FitOptions): Promise<FitResult> {
  try {
    checkOptions('fit()', opts, FIT_OPTIONS, { required: ['model', 'trainLoader', 'optimizer', 'epochs'] });
    if (typeof opts.model?.forward !== 'function') throw new TypeError(`fit(): model must be a Module, got ${describe(opts.model)}`);
    return await train(opts);
  } finally {
    // A Checkpoint handed in is fit()'s to free, on errors too (a no-op once restored).
    if (opts?.resume instanceof Checkpoint) opts.resume.dispose();
  }
}

async function train(opts: FitOptions): Promise<FitResult> {
  const { model, trainLoader, optimizer } = opts;
  const scheduler = opts.scheduler ?? null;
  const criterion = opts.criterion ?? new CrossEntropyLoss();
  const device = opts.device ?? 'cpu';
  const logEvery = opts.logEvery ?? 30;
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1) throw new RangeError(`fit(): epochs must be a positive integer, got ${describe(opts.epochs)}`);
  if (!Number.isInteger(logEvery) || logEvery < 1) throw new RangeError(`fit(): logEvery must be a positive integer, got ${describe(logEvery)}`);
  const stream = opts.stream ?? process.stdout;
  const say = (line: string): void => void stream.write(`${line}\n`);
  const out = opts.outDir ?? null;
  const files = out
    ? { metrics: join(out, 'metrics.jsonl'), chart: join(out, 'chart.html'), checkpoint: join(out, 'checkpoint.pth') }
    : null;
  const title = opts.title ?? 'vgg-torch training';

  if (trainLoader.length === 0) throw new RangeError('fit(): the training loader gives no batches (fewer samples than batchSize with dropLast?)');
  if (opts.signal?.aborted) throw new Error('fit(): the abort signal was already aborted');

  // ---- resume ----
  let startEpoch = 0;
  let startBatch = 0;
  let step = 0;
  let sums = zeroSums();
  /** Mid-epoch resume: the epoch in progress, re-created from the checkpoint. */
  let resumedEpoch: EpochIterator<[Tensor, Tensor]> | null = null;
  let initial: MetricsRecord[] = [];
  const resumeFrom = opts.resume === true ? files?.checkpoint : opts.resume || null;
  if (opts.resume === true && !resumeFrom) throw new Error('fit(): resume: true needs outDir (the checkpoint is outDir/checkpoint.pth)');
  if (resumeFrom) {
    if (typeof resumeFrom === 'string' && !existsSync(resumeFrom)) throw new Error(`fit(): no checkpoint to resume from at ${resumeFrom}`);
    const ck = typeof resumeFrom === 'string' ? loadCheckpoint(resumeFrom) : resumeFrom;
    const resumePath = ck.path;
    try {
      if (ck.epoch >= opts.epochs) {
        throw new RangeError(`fit(): ${resumePath} has already trained ${ck.epoch} epochs; ask for more than ${ck.epoch} to continue`);
      }
      const loaderState = ck.batch > 0 ? ck.loaderState : null;
      if (ck.batch > 0 && !loaderState) throw new Error(`fit(): ${resumePath} stops mid-epoch but holds no loader state`);
      ck.restore({ model, optimizer, scheduler, loaderGenerator: trainLoader.generator, testLoaderGenerator: opts.testLoader?.generator });
      // Right after the RNG states are restored: re-creating the epoch may draw (augmentation for batches ahead).
      if (loaderState) resumedEpoch = trainLoader.iterate({ state: loaderState });
      startEpoch = ck.epoch;
      startBatch = ck.batch;
      step = ck.step;
      sums = { ...zeroSums(), ...ck.progress };
      initial = ck.metrics;
    } finally {
      ck.dispose(); // a second copy of the weights must not live through the run
    }
    say(`Resuming from ${resumePath}: epoch ${startEpoch + (startBatch > 0 ? 1 : 0)}${startBatch > 0 ? `, after batch ${startBatch}` : ' done'}, step ${step}`);
  }

  // A fresh run starts its outDir over: an older checkpoint must not be resumed into this run's metrics.
  if (files && !resumeFrom) rmSync(files.checkpoint, { force: true });
  const log = new MetricsLog(files?.metrics ?? null, initial);
  if (opts.onRecord) log.onAppend(opts.onRecord);
  let chartWritten = 0;
  const writeChart = (force: boolean): void => {
    if (!files || (!force && Date.now() - chartWritten < 2000)) return;
    writeChartHtml(files.chart, log.records, { title });
    chartWritten = Date.now();
  };

  // ---- interruption -------------------------------------------------------
  let stopRequested = false;
  const requestStop = (): void => {
    if (stopRequested) return;
    stopRequested = true;
    say('\nInterrupted: stopping after this batch and saving a checkpoint (Ctrl-C again quits at once).');
  };
  // SIGTERM too: `docker stop`, `timeout` and schedulers send it before they kill.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested) process.exit(signal === 'SIGTERM' ? 143 : 130);
    requestStop();
  };
  const handleSignals = opts.handleSignals ?? true;

  let lastCheckpoint: string | null = null;
  /** Saves the state after `epoch` whole epochs and `batch` batches of the next (taken from `it`). */
  const checkpoint = (epoch: number, batch: number, it?: EpochIterator<unknown>): void => {
    if (!files) return;
    const loaderIter = it ? it.stateDict() : null;
    try {
      saveCheckpoint(files.checkpoint, {
        model, optimizer, scheduler, epoch, batch, step,
        metrics: log.records,
        loaderGenerator: trainLoader.generator,
        testLoaderGenerator: opts.testLoader?.generator,
        loaderState: loaderIter,
        meta: opts.meta,
        progress: batch > 0 ? { ...sums } : {},
      });
    } finally {
      if (loaderIter) {
        loaderIter.order.dispose();
        loaderIter.plans.dispose();
      }
    }
    lastCheckpoint = files.checkpoint;
  };

  let evaluation: Evaluation | null = null;
  let epochsDone = startEpoch;
  let interrupted = false;
  const lr = (): number => optimizer.paramGroups[0].lr as number;
  let live: LiveServer | null = null;
  let bar: ProgressBar | null = null;
  try {
    if (opts.live === true || typeof opts.live === 'number') {
      live = await startLiveServer({ port: opts.live === true ? 0 : opts.live, title, log });
      say(`Live chart: ${live.url}`);
    }
    if (handleSignals) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    opts.signal?.addEventListener('abort', requestStop, { once: true });
    for (let epoch = startEpoch + 1; epoch <= opts.epochs && !interrupted; epoch++) {
      const midEpoch = epoch === startEpoch + 1 && startBatch > 0;
      if (!midEpoch) {
        sums = zeroSums();
        if (scheduler && opts.schedulerStep === 'epoch-start') scheduler.step();
      }
      model.train();
      const it = midEpoch ? resumedEpoch! : trainLoader.iterate();
      const total = trainLoader.length;
      let batch = midEpoch ? startBatch : 0;
      bar = new ProgressBar({ total, label: `epoch ${epoch}/${opts.epochs}`, stream, start: batch, startImages: sums.epochImages });
      let t0 = performance.now();
      for await (const [images, labels] of it) {
        let loss: number, correct: number, n: number;
        try {
          [loss, correct, n] = tidy(() => {
            const x = images.to(device);
            const y = labels.to(device);
            optimizer.zeroGrad();
            const output = model.forward(x);
            const l = criterion.forward(output, y);
            l.backward();
            optimizer.step();
            if (scheduler && opts.schedulerStep === 'batch') scheduler.step();
            return [l.item() as number, output.argmax(1).eq(y).sum().item() as number, y.shape[0]];
          });
        } finally {
          images.dispose();
          labels.dispose();
        }
        batch++;
        step++;
        sums.epochLoss += loss * n;
        sums.epochCorrect += correct;
        sums.epochImages += n;
        sums.windowLoss += loss;
        sums.windowCorrect += correct;
        sums.windowImages += n;
        sums.windowBatches++;
        if (batch % logEvery === 0) {
          const record: BatchRecord = {
            kind: 'batch', epoch, batch, step,
            loss: sums.windowLoss / sums.windowBatches,
            accuracy: (100 * sums.windowCorrect) / sums.windowImages,
            lr: lr(),
            time: Date.now(),
          };
          bar.log(`[${epoch}, ${String(batch).padStart(5)}] loss: ${record.loss.toFixed(3)}  acc: ${record.accuracy.toFixed(1)} %  lr: ${record.lr.toPrecision(4)}`);
          log.append(record);
          sums.windowLoss = sums.windowCorrect = sums.windowImages = sums.windowBatches = 0;
          writeChart(false);
        }
        bar.update(batch, { loss: sums.epochLoss / sums.epochImages, accuracy: (100 * sums.epochCorrect) / sums.epochImages, images: sums.epochImages });
        await turnEventLoop();
        if (stopRequested && batch < total) {
          sums.epochSeconds += (performance.now() - t0) / 1000;
          t0 = performance.now();
          bar.finish();
          checkpoint(epoch - 1, batch, it);
          it.close();
          interrupted = true;
          break;
        }
      }
      if (interrupted) break;
      sums.epochSeconds += (performance.now() - t0) / 1000;
      const trainLoss = sums.epochLoss / sums.epochImages;
      const trainAccuracy = (100 * sums.epochCorrect) / sums.epochImages;
      const imagesPerSecond = sums.epochImages / sums.epochSeconds;
      bar.finish(
        `epoch ${epoch}/${opts.epochs}: train loss ${trainLoss.toFixed(4)}, accuracy ${trainAccuracy.toFixed(1)} %, ` +
          `${Math.round(imagesPerSecond)} img/s, ${sums.epochSeconds.toFixed(1)} s`,
      );
      const epochLr = lr();
      if (scheduler && (opts.schedulerStep ?? 'epoch-end') === 'epoch-end') scheduler.step();
      if (opts.testLoader) {
        evaluation = await evaluate(model, opts.testLoader, { criterion, classes: opts.classes, device });
        say(formatEvaluation(evaluation));
        log.append(evaluationRecord(evaluation, epoch));
      }
      log.append({
        kind: 'epoch', epoch, step, trainLoss, trainAccuracy,
        ...(evaluation && opts.testLoader ? { testLoss: evaluation.loss, testAccuracy: evaluation.accuracy } : {}),
        lr: epochLr,
        seconds: sums.epochSeconds,
        imagesPerSecond,
        time: Date.now(),
      });
      epochsDone = epoch;
      checkpoint(epoch, 0);
      writeChart(true);
      if (stopRequested && epoch < opts.epochs) interrupted = true;
    }
  } finally {
    bar?.finish(); // an error's message must not land on the bar's line
    resumedEpoch?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    opts.signal?.removeEventListener('abort', requestStop);
    writeChart(true);
    await live?.close();
  }
  if (interrupted && lastCheckpoint) say(`Checkpoint saved to ${lastCheckpoint}; continue with resume (--resume).`);
  return { epochs: epochsDone, step, interrupted, metrics: log.records, evaluation, checkpoint: lastCheckpoint, liveUrl: live?.url ?? null };
}
