// fit(): the training loop of the CIFAR-10 tutorial, once, for every example
// and the CLI: per-batch steps, the `[epoch, batch] loss` lines, a progress
// bar, metrics as JSON lines, the chart file and live page, evaluation after
// every epoch, and checkpoints (every epoch and on Ctrl-C) that resume exactly.
// Under DistributedDataParallel every rank runs fit(): rank 0 alone writes
// and prints, the figures are summed over the ranks, and the ranks agree on
// when to stop, so that all of them stop after the same batch.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { autocast } from '../amp/autocastMode.js';
import { GradScaler } from '../amp/gradScaler.js';
import { DataLoader, type EpochIterator } from '../data/dataloader.js';
import { type ProcessGroup, allReduceNumbers, explainFailure } from '../distributed/distributedC10d.js';
import type { Module } from '../nn/modules/module.js';
import { CrossEntropyLoss } from '../nn/modules/loss.js';
import { DistributedDataParallel } from '../nn/parallel/distributed.js';
import type { LRScheduler } from '../optim/lrScheduler.js';
import type { Optimizer } from '../optim/optimizer.js';
import { tidy } from '../tensor/scope.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import { writeChartHtml } from './chart.js';
import { Checkpoint, gatherRankStates, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type Evaluation, evaluate, evaluationRecord, formatEvaluation } from './evaluate.js';
import { type LiveServer, startLiveServer } from './live.js';
import { type BatchRecord, type MetricsRecord, MetricsLog } from './metricsLog.js';
import { AMP_SETTINGS, type AmpSetting, type PrecisionPlan, planPrecision } from './precision.js';
import { ProgressBar } from './progress.js';

export interface FitOptions {
  /**
   * The model; a {@link DistributedDataParallel} one trains on every rank of
   * its process group (each rank calls fit() with its own loaders).
   */
  model: Module<[Tensor], Tensor>;
  /**
   * Batches of `[images, labels]`. Under DDP, with a sampler that gives each
   * rank its share (a {@link DistributedSampler}, whose `setEpoch` fit() calls
   * before every epoch).
   */
  trainLoader: DataLoader<any, [Tensor, Tensor]>;
  /**
   * Evaluated after every epoch when given. Under DDP each rank evaluates
   * every `worldSize`-th sample (or its loader's sampler's, if it has one) and
   * the figures are summed, so the report is the whole set's.
   */
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
  /**
   * Mixed precision, PyTorch's AMP recipe: the forward pass and the loss run inside
   * `autocast(<device type>, { dtype })`, `backward()` and the optimizer step outside.
   * - `'off'` (the default): fp32, as PyTorch trains unless told.
   * - `'bf16'`: bfloat16 autocast, no loss scaling (bfloat16 has float32's range).
   * - `'fp16'`: float16 autocast with a {@link GradScaler} (`scale(loss).backward()`,
   *   `step(optimizer)`, `update()`). On the CPU it needs libtorch 2.3 or later (a RangeError before).
   * - `'auto'`: on the CPU bf16 where the CPU computes bf16 natively (AVX512_BF16 or AMX,
   *   `backends.cpu.bf16Support()`), else fp32 (emulated bf16 is slower than fp32); on CUDA fp16
   *   with a GradScaler, PyTorch's CUDA recipe.
   *
   * fit() prints the precision and why, the epoch records name it, checkpoints store it (and the
   * scaler's state under `'scaler'`), and a run resumes only in the precision it was trained in.
   * Evaluation runs in fp32.
   */
  amp?: AmpSetting;
  /** Class names for the evaluation report. */
  classes?: readonly string[];
  /** A `[epoch, batch] loss` line and a metrics record every this many batches (default 30, as the tutorial). */
  logEvery?: number;
  /**
   * Where `metrics.jsonl`, `chart.html` and `checkpoint.pth` go (written as
   * training goes; under DDP by rank 0 only); null: nothing is written.
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
  /** Where progress goes (default `process.stdout`; under DDP rank 0's only); a non-TTY stream gets plain lines only. */
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
  epochLoss: 0,
  epochCorrect: 0,
  epochImages: 0,
  epochSeconds: 0,
  windowLoss: 0,
  windowCorrect: 0,
  windowImages: 0,
  windowBatches: 0,
});
/** The sums that add up over ranks (time does not). */
const WINDOW_SUMS = ['windowLoss', 'windowCorrect', 'windowImages', 'windowBatches'] as const;
const EPOCH_SUMS = ['epochLoss', 'epochCorrect', 'epochImages'] as const;

/** Lets signal handlers and the live server run between batches of a synchronous loop. */
const turnEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Trains `model`, printing the tutorial's `[epoch, batch] loss: x.xxx` lines
 * (with accuracy and learning rate) and a progress bar, evaluating after each
 * epoch, and checkpointing so that `resume` continues with exactly the losses
 * an uninterrupted run would have had.
 */
const FIT_OPTIONS = [
  'model',
  'trainLoader',
  'testLoader',
  'optimizer',
  'scheduler',
  'schedulerStep',
  'criterion',
  'epochs',
  'device',
  'amp',
  'classes',
  'logEvery',
  'outDir',
  'meta',
  'resume',
  'live',
  'handleSignals',
  'signal',
  'title',
  'stream',
  'onRecord',
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

/** Where a run starts: from scratch, or from a checkpoint (possibly mid-epoch). */
interface Start {
  epoch: number;
  batch: number;
  step: number;
  sums: Sums;
  /** Mid-epoch resume: the epoch in progress, re-created from the checkpoint. */
  epochInProgress: EpochIterator<[Tensor, Tensor]> | null;
  metrics: MetricsRecord[];
  from: string | Checkpoint | null;
}

/** What the steps of one fit() share. */
interface Run {
  opts: FitOptions;
  /** Under DDP: the model's process group; null for one process. */
  group: ProcessGroup | null;
  /** This process writes and prints: rank 0, or the only process. */
  main: boolean;
  /** What checkpoints hold and evaluation runs: the model, or the module DDP wraps. */
  net: Module<[Tensor], Tensor>;
  /** The evaluation loader of this rank (its share of the test set under DDP). */
  evalLoader: DataLoader<any, [Tensor, Tensor]> | null;
  criterion: Module<[Tensor, Tensor], Tensor>;
  device: Device;
  precision: PrecisionPlan;
  /** fp16's loss scaler; null otherwise. */
  scaler: GradScaler | null;
  logEvery: number;
  say: (line: string) => void;
  stream: NodeJS.WritableStream;
  files: { metrics: string; chart: string; checkpoint: string } | null;
  log: MetricsLog;
  /** Optimizer steps so far, over all epochs. */
  step: number;
  sums: Sums;
  stop: Interruption;
  lastCheckpoint: string | null;
}

async function train(opts: FitOptions): Promise<FitResult> {
  const logEvery = opts.logEvery ?? 30;
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1) throw new RangeError(`fit(): epochs must be a positive integer, got ${describe(opts.epochs)}`);
  if (!Number.isInteger(logEvery) || logEvery < 1) throw new RangeError(`fit(): logEvery must be a positive integer, got ${describe(logEvery)}`);
  const precision = planPrecision('fit()', opts.amp ?? 'off', opts.device ?? 'cpu');
  const ddp = opts.model instanceof DistributedDataParallel ? opts.model : null;
  const group = ddp?.processGroup ?? null;
  const main = !group || group.rank() === 0;
  if (group && !opts.trainLoader.sampler) {
    throw new Error(
      'fit(): under DistributedDataParallel each rank must train on its own share: give the training loader a sampler ' +
        '(new DataLoader(dataset, { sampler: new DistributedSampler(dataset), batchSize }))',
    );
  }
  const stream = main ? (opts.stream ?? process.stdout) : new Writable({ write: (_chunk, _encoding, done) => done() });
  const say = (line: string): void => void stream.write(`${line}\n`);
  const out = opts.outDir ?? null;
  const files = out ? { metrics: join(out, 'metrics.jsonl'), chart: join(out, 'chart.html'), checkpoint: join(out, 'checkpoint.pth') } : null;
  const title = opts.title ?? 'vgg-torch training';
  if (group)
    sameOnEveryRank(group, {
      outDir: files ? 1 : 0,
      resume: opts.resume ? 1 : 0,
      testLoader: opts.testLoader ? 1 : 0,
      epochs: opts.epochs,
      logEvery,
      amp: AMP_SETTINGS.indexOf(precision.amp),
      'trainLoader.length': opts.trainLoader.length,
    });
  if (opts.trainLoader.length === 0) throw new RangeError('fit(): the training loader gives no batches (fewer samples than batchSize with dropLast?)');
  if (opts.signal?.aborted) throw new Error('fit(): the abort signal was already aborted');

  const net = ddp ? (ddp.module as Module<[Tensor], Tensor>) : opts.model;
  say(precision.line);
  const scaler = precision.scaler ? new GradScaler(precision.deviceType) : null;
  try {
    return await trainWith(opts, { group, main, stream, say, files, title, net, precision, scaler, logEvery });
  } finally {
    scaler?.dispose();
  }
}

/** fit() once its options are checked and its precision chosen. */
async function trainWith(
  opts: FitOptions,
  r: Pick<Run, 'group' | 'main' | 'stream' | 'say' | 'files' | 'net' | 'precision' | 'scaler' | 'logEvery'> & { title: string },
): Promise<FitResult> {
  const { group, main, stream, say, files, title, net, precision, scaler, logEvery } = r;
  const start = resume(opts, files, say, net, group, precision, scaler);
  // A fresh run starts its outDir over: an older checkpoint must not be resumed into this run's metrics.
  if (main && files && !start.from) rmSync(files.checkpoint, { force: true });
  const log = new MetricsLog(main ? (files?.metrics ?? null) : null, start.metrics);
  if (opts.onRecord) log.onAppend(opts.onRecord);
  const chart = chartWriter(main ? files : null, log, title);
  const run: Run = {
    opts,
    group,
    main,
    net,
    evalLoader: opts.testLoader ? (group ? shardOf(opts.testLoader, group) : opts.testLoader) : null,
    criterion: opts.criterion ?? new CrossEntropyLoss(),
    device: opts.device ?? 'cpu',
    precision,
    scaler,
    logEvery,
    say,
    stream,
    files,
    log,
    step: start.step,
    sums: start.sums,
    stop: new Interruption(say, opts),
    lastCheckpoint: null,
  };

  let evaluation: Evaluation | null = null;
  let epochsDone = start.epoch;
  let interrupted = false;
  let live: LiveServer | null = null;
  try {
    if (main && (opts.live === true || typeof opts.live === 'number')) {
      live = await startLiveServer({ port: opts.live === true ? 0 : opts.live, title, log });
      say(`Live chart: ${live.url}`);
    }
    run.stop.listen();
    for (let epoch = start.epoch + 1; epoch <= opts.epochs && !interrupted; epoch++) {
      const midEpoch = epoch === start.epoch + 1 && start.batch > 0;
      if (!midEpoch) {
        run.sums = zeroSums();
        if (opts.scheduler && opts.schedulerStep === 'epoch-start') opts.scheduler.step();
        // DistributedSampler.set_epoch: this epoch's shuffle (PyTorch's epochs count from 0).
        (opts.trainLoader.sampler as { setEpoch?: (epoch: number) => void } | null)?.setEpoch?.(epoch - 1);
      }
      const it = midEpoch ? start.epochInProgress! : opts.trainLoader.iterate();
      if (!(await trainEpoch(run, epoch, it, midEpoch ? start.batch : 0, chart))) {
        interrupted = true;
        break;
      }
      evaluation = await endEpoch(run, epoch, evaluation);
      epochsDone = epoch;
      checkpoint(run, epoch, 0);
      chart(true);
      if (epoch < opts.epochs && stopNow(run)) interrupted = true;
    }
  } finally {
    start.epochInProgress?.close();
    run.stop.unlisten();
    chart(true);
    await live?.close();
  }
  if (interrupted && run.lastCheckpoint) say(`Checkpoint saved to ${run.lastCheckpoint}; continue with resume (--resume).`);
  return {
    epochs: epochsDone,
    step: run.step,
    interrupted,
    metrics: log.records,
    evaluation,
    checkpoint: run.lastCheckpoint,
    liveUrl: live?.url ?? null,
  };
}

/** Restores model, optimizer, scheduler, RNGs and the loader from `opts.resume`, if any; where to start. */
function resume(
  opts: FitOptions,
  files: Run['files'],
  say: (line: string) => void,
  net: Module<[Tensor], Tensor>,
  group: ProcessGroup | null,
  precision: PrecisionPlan,
  scaler: GradScaler | null,
): Start {
  const start: Start = { epoch: 0, batch: 0, step: 0, sums: zeroSums(), epochInProgress: null, metrics: [], from: null };
  const from = opts.resume === true ? files?.checkpoint : opts.resume || null;
  if (opts.resume === true && !from) throw new Error('fit(): resume: true needs outDir (the checkpoint is outDir/checkpoint.pth)');
  if (!from) return start;
  // Under DDP rank 0 reads the file and sends it to the others (a collective: no rank may leave early).
  if (typeof from === 'string' && !group && !existsSync(from)) throw new Error(`fit(): no checkpoint to resume from at ${from}`);
  const ck = typeof from === 'string' ? loadCheckpoint(from, { processGroup: group }) : from;
  const rank = group?.rank() ?? 0;
  const worldSize = group?.size() ?? 1;
  const resumePath = ck.path;
  try {
    if (ck.epoch >= opts.epochs) {
      throw new RangeError(`fit(): ${resumePath} has already trained ${ck.epoch} epochs; ask for more than ${ck.epoch} to continue`);
    }
    if (ck.amp !== precision.amp) {
      // Another precision gives other losses from here on: not the run the checkpoint continues.
      const asked = precision.asked === precision.amp ? `amp '${precision.amp}'` : `amp '${precision.asked}' (${precision.amp} here)`;
      throw new Error(`fit(): ${resumePath} was trained with amp '${ck.amp}'; resume it with amp '${ck.amp}', not ${asked}`);
    }
    const loaderState = ck.batch > 0 ? ck.loaderState(rank, worldSize) : null;
    if (ck.batch > 0 && !loaderState) throw new Error(`fit(): ${resumePath} stops mid-epoch but holds no loader state`);
    ck.restore(
      {
        model: net,
        optimizer: opts.optimizer,
        scheduler: opts.scheduler ?? null,
        loaderGenerator: opts.trainLoader.generator,
        testLoaderGenerator: opts.testLoader?.generator,
        scaler,
      },
      { rank, worldSize },
    );
    // Right after the RNG states are restored: re-creating the epoch may draw (augmentation for batches ahead).
    if (loaderState) start.epochInProgress = opts.trainLoader.iterate({ state: loaderState });
    // The saved sums are all ranks' (see checkpoint()): rank 0 carries them on.
    const sums = rank === 0 ? { ...zeroSums(), ...ck.progress } : zeroSums();
    Object.assign(start, { epoch: ck.epoch, batch: ck.batch, step: ck.step, sums, metrics: ck.metrics, from });
  } finally {
    ck.dispose(); // a second copy of the weights must not live through the run
  }
  say(
    `Resuming from ${resumePath}: epoch ${start.epoch + (start.batch > 0 ? 1 : 0)}${start.batch > 0 ? `, after batch ${start.batch}` : ' done'}, step ${start.step}`,
  );
  return start;
}

/** Ctrl-C, SIGTERM or the abort signal: stop after the current batch with a checkpoint; a second signal quits at once. */
class Interruption {
  requested = false;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.requested) process.exit(signal === 'SIGTERM' ? 143 : 130);
    this.request();
  };
  readonly request = (): void => {
    if (this.requested) return;
    this.requested = true;
    this.say('\nInterrupted: stopping after this batch and saving a checkpoint (Ctrl-C again quits at once).');
  };

  constructor(
    private readonly say: (line: string) => void,
    private readonly opts: Pick<FitOptions, 'handleSignals' | 'signal'>,
  ) {}

  listen(): void {
    // SIGTERM too: `docker stop`, `timeout` and schedulers send it before they kill.
    if (this.opts.handleSignals ?? true) {
      process.on('SIGINT', this.onSignal);
      process.on('SIGTERM', this.onSignal);
    }
    this.opts.signal?.addEventListener('abort', this.request, { once: true });
  }

  unlisten(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.opts.signal?.removeEventListener('abort', this.request);
  }
}

/** Rewrites chart.html from the log: forced, or at most every 2 s. */
function chartWriter(files: Run['files'], log: MetricsLog, title: string): (force: boolean) => void {
  let written = 0;
  return (force) => {
    if (!files || (!force && Date.now() - written < 2000)) return;
    writeChartHtml(files.chart, log.records, { title });
    written = Date.now();
  };
}

/**
 * Saves the state after `epoch` whole epochs and `batch` batches of the next
 * (taken from `it`). Under DDP every rank takes part: rank 0 writes the file,
 * with every rank's RNG and loader states and the sums of all ranks.
 */
function checkpoint(run: Run, epoch: number, batch: number, it?: EpochIterator<unknown>): void {
  const { opts, files } = run;
  if (!files) return;
  const loaderIter = it ? it.stateDict() : null;
  const loaders = { loaderGenerator: opts.trainLoader.generator, testLoaderGenerator: opts.testLoader?.generator, loaderState: loaderIter };
  try {
    tidy(() => {
      if (run.group && batch > 0) sumOverRanks(run, [...EPOCH_SUMS, ...WINDOW_SUMS]);
      const ranks = run.group ? gatherRankStates(run.group, loaders) : null;
      if (!run.main) return;
      saveCheckpoint(files.checkpoint, {
        model: run.net,
        optimizer: opts.optimizer,
        scheduler: opts.scheduler ?? null,
        epoch,
        batch,
        step: run.step,
        metrics: run.log.records,
        ...loaders,
        meta: opts.meta,
        progress: batch > 0 ? { ...run.sums } : {},
        ranks,
        amp: run.precision.amp,
        scaler: run.scaler,
      });
    });
  } finally {
    if (loaderIter) {
      loaderIter.order.dispose();
      loaderIter.plans.dispose();
    }
  }
  run.lastCheckpoint = files.checkpoint;
}

const lr = (opts: FitOptions): number => opts.optimizer.paramGroups[0].lr as number;

/** Under DDP: replaces each of `keys` in this rank's sums by the sum over all ranks. */
function sumOverRanks(run: Run, keys: readonly (keyof Sums)[]): void {
  if (!run.group) return;
  const { sums, group } = run;
  const all = allReduceNumbers(
    keys.map((k) => sums[k]),
    { op: 'sum', group },
  );
  keys.forEach((k, i) => {
    sums[k] = all[i];
  });
}

/**
 * Under DDP the ranks run the same collectives only if these agree (a rank with
 * more batches, or the only one checkpointing, would wait for the others until
 * the timeout): every rank checks, and every rank throws the same error.
 */
function sameOnEveryRank(group: ProcessGroup, values: Record<string, number>): void {
  const lo = allReduceNumbers(Object.values(values), { op: 'min', group });
  const hi = allReduceNumbers(Object.values(values), { op: 'max', group });
  const differ = Object.keys(values).filter((_, i) => lo[i] !== hi[i]);
  if (differ.length) {
    throw new Error(`fit(): under DistributedDataParallel every rank must be given the same ${differ.join(', ')} (they differ between ranks)`);
  }
}

/**
 * Whether to stop after this batch. Under DDP the ranks must stop after the
 * same one (a rank that went on would wait for the others' gradients), so they
 * agree: a stop asked of any rank stops all.
 */
function stopNow(run: Run): boolean {
  if (!run.group) return run.stop.requested;
  const any = allReduceNumbers([run.stop.requested ? 1 : 0], { op: 'max', group: run.group })[0] > 0;
  if (any) run.stop.request();
  return any;
}

/** Under DDP: this rank's share of the test set, every `worldSize`-th sample (no padding, so the sums are the set's). */
function shardOf(loader: DataLoader<any, [Tensor, Tensor]>, group: ProcessGroup): DataLoader<any, [Tensor, Tensor]> {
  if (loader.sampler) return loader;
  const [rank, size] = [group.rank(), group.size()];
  const sampler = Array.from({ length: Math.max(0, Math.ceil((loader.dataset.length - rank) / size)) }, (_, i) => rank + i * size);
  return new DataLoader(loader.dataset, {
    batchSize: loader.batchSize,
    dropLast: loader.dropLast,
    prefetch: loader.prefetch,
    numWorkers: loader.numWorkers,
    sampler,
    ...(loader.generator ? { generator: loader.generator } : {}),
    ...(loader.collate ? { collate: loader.collate } : {}),
  });
}

/**
 * The batches of one epoch from `batch` on: steps, `[epoch, batch] loss` lines,
 * the bar. False when interrupted (after checkpointing mid-epoch).
 */
async function trainEpoch(run: Run, epoch: number, it: EpochIterator<[Tensor, Tensor]>, batch: number, chart: (force: boolean) => void): Promise<boolean> {
  const { opts, sums } = run;
  const { model, optimizer, scheduler } = opts;
  model.train();
  const total = opts.trainLoader.length;
  const bar = new ProgressBar({ total, label: `epoch ${epoch}/${opts.epochs}`, stream: run.stream, start: batch, startImages: sums.epochImages });
  try {
    let t0 = performance.now();
    for await (const [images, labels] of it) {
      let loss: number, correct: number, n: number;
      try {
        [loss, correct, n] = tidy(() => {
          const x = images.to(run.device);
          const y = labels.to(run.device);
          optimizer.zeroGrad();
          const [output, l] = forward(run, x, y);
          if (run.scaler) {
            run.scaler.scale(l).backward();
            run.scaler.step(optimizer);
            run.scaler.update();
          } else {
            l.backward();
            optimizer.step();
          }
          if (scheduler && opts.schedulerStep === 'batch') scheduler.step();
          return [l.item() as number, output.argmax(1).eq(y).sum().item() as number, y.shape[0]];
        });
      } catch (e) {
        throw run.group ? explainFailure(e) : e; // which rank went away, if one did
      } finally {
        images.dispose();
        labels.dispose();
      }
      batch++;
      run.step++;
      sums.epochLoss += loss * n;
      sums.epochCorrect += correct;
      sums.epochImages += n;
      sums.windowLoss += loss;
      sums.windowCorrect += correct;
      sums.windowImages += n;
      sums.windowBatches++;
      if (batch % run.logEvery === 0) {
        sumOverRanks(run, WINDOW_SUMS);
        const record: BatchRecord = {
          kind: 'batch',
          epoch,
          batch,
          step: run.step,
          loss: sums.windowLoss / sums.windowBatches,
          accuracy: (100 * sums.windowCorrect) / sums.windowImages,
          lr: lr(opts),
          time: Date.now(),
        };
        bar.log(
          `[${epoch}, ${String(batch).padStart(5)}] loss: ${record.loss.toFixed(3)}  acc: ${record.accuracy.toFixed(1)} %  lr: ${record.lr.toPrecision(4)}`,
        );
        run.log.append(record);
        sums.windowLoss = sums.windowCorrect = sums.windowImages = sums.windowBatches = 0;
        chart(false);
      }
      bar.update(batch, { loss: sums.epochLoss / sums.epochImages, accuracy: (100 * sums.epochCorrect) / sums.epochImages, images: sums.epochImages });
      await turnEventLoop();
      if (batch < total && stopNow(run)) {
        sums.epochSeconds += (performance.now() - t0) / 1000;
        t0 = performance.now();
        bar.finish();
        checkpoint(run, epoch - 1, batch, it);
        it.close();
        return false;
      }
    }
    sums.epochSeconds += (performance.now() - t0) / 1000;
    sumOverRanks(run, EPOCH_SUMS);
    bar.finish(
      `epoch ${epoch}/${opts.epochs}: train loss ${(sums.epochLoss / sums.epochImages).toFixed(4)}, ` +
        `accuracy ${((100 * sums.epochCorrect) / sums.epochImages).toFixed(1)} %, ` +
        `${Math.round(sums.epochImages / sums.epochSeconds)} img/s, ${sums.epochSeconds.toFixed(1)} s`,
    );
    return true;
  } finally {
    bar.finish(); // an error's message must not land on the bar's line
  }
}

/** The model's output and the loss: under autocast with mixed precision (backward() goes outside, as PyTorch's recipe). */
function forward(run: Run, x: Tensor, y: Tensor): [Tensor, Tensor] {
  const pass = (): [Tensor, Tensor] => {
    const output = run.opts.model(x);
    return [output, run.criterion(output, y)];
  };
  const { deviceType, dtype } = run.precision;
  return dtype === null ? pass() : autocast(deviceType, { dtype }, pass);
}

/** After an epoch's batches: the scheduler step, evaluation, and the epoch's record. */
async function endEpoch(run: Run, epoch: number, previous: Evaluation | null): Promise<Evaluation | null> {
  const { opts, sums } = run;
  const epochLr = lr(opts);
  if (opts.scheduler && (opts.schedulerStep ?? 'epoch-end') === 'epoch-end') opts.scheduler.step();
  let evaluation = previous;
  if (run.evalLoader) {
    // The unwrapped module, with rank 0's BatchNorm statistics: those the checkpoint holds.
    if (opts.model instanceof DistributedDataParallel) opts.model._syncBuffers();
    evaluation = await evaluate(run.net, run.evalLoader, {
      criterion: run.criterion,
      classes: opts.classes,
      device: run.device,
      processGroup: run.group,
    });
    run.say(formatEvaluation(evaluation));
    run.log.append(evaluationRecord(evaluation, epoch));
  }
  run.log.append({
    kind: 'epoch',
    epoch,
    step: run.step,
    trainLoss: sums.epochLoss / sums.epochImages,
    trainAccuracy: (100 * sums.epochCorrect) / sums.epochImages,
    ...(evaluation && run.evalLoader ? { testLoss: evaluation.loss, testAccuracy: evaluation.accuracy } : {}),
    lr: epochLr,
    seconds: sums.epochSeconds,
    imagesPerSecond: sums.epochImages / sums.epochSeconds,
    precision: run.precision.amp === 'off' ? 'fp32' : run.precision.amp,
    ...(run.scaler ? { lossScale: run.scaler.getScale() } : {}),
    time: Date.now(),
  });
  return evaluation;
}
