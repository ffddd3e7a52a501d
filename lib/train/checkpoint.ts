// Training checkpoints: everything needed to continue a run exactly, in one
// .pth file that PyTorch reads too (`ckpt = torch.load(path)`;
// `model.load_state_dict(ckpt['model'])`; `optimizer.load_state_dict(ckpt['optimizer'])`).
// Written atomically (temporary file + rename), so an interrupted write never
// leaves a truncated checkpoint behind.
import { readFileSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { type ProcessGroup, allGather, broadcast } from '../distributed/distributedC10d.js';
import type { GradScaler } from '../amp/gradScaler.js';
import type { Generator } from '../generator.js';
import type { LoaderIterState } from '../data/dataloader.js';
import type { Module } from '../nn/modules/module.js';
import type { LRScheduler } from '../optim/lrScheduler.js';
import type { Optimizer } from '../optim/optimizer.js';
import { cuda, getRngState, setRngState } from '../runtime.js';
import { load } from '../serialization/load.js';
import { save } from '../serialization/save.js';
import { fromBuffer, tensor } from '../tensor/creation.js';
import type { DType } from '../tensor/dtype.js';
import { tidy } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { describe } from '../utils/args.js';
import type { MetricsRecord } from './metricsLog.js';
import { AMP_SETTINGS, type AmpMode } from './precision.js';

/** Identifies files written by {@link saveCheckpoint}. */
export const CHECKPOINT_FORMAT = 'vgg-torch.checkpoint/1';

/** What {@link saveCheckpoint} stores. */
export interface CheckpointContents {
  model: Module<any, any>;
  optimizer?: Optimizer<any> | null;
  scheduler?: LRScheduler | null;
  /** Epochs completed. */
  epoch: number;
  /** Batches completed in epoch `epoch + 1` (0 at an epoch boundary). */
  batch?: number;
  /** Batches completed since the start of training. */
  step?: number;
  /** The metrics so far, so a resumed run continues its curves. */
  metrics?: readonly MetricsRecord[];
  /** The training loader's own generator (its state is saved). */
  loaderGenerator?: Generator | null;
  /** The evaluation loader's own generator, if it shuffles with one. */
  testLoaderGenerator?: Generator | null;
  /** Mid-epoch: where the training loader's epoch stands. */
  loaderState?: LoaderIterState | null;
  /** Plain JSON-like values, e.g. how to rebuild the model. */
  meta?: Record<string, unknown>;
  /** Running sums of the epoch in progress. */
  progress?: Record<string, number>;
  /** The run's precision, as fit() resolved its `amp` option (default `'off'`, fp32). */
  amp?: AmpMode;
  /** fp16's loss scaler; its `stateDict()` is stored under `'scaler'`, PyTorch's key. */
  scaler?: GradScaler | null;
  /**
   * Under DDP: every rank's RNG and loader states, by rank (from
   * {@link gatherRankStates}), so that each rank resumes its own streams.
   */
  ranks?: readonly RankState[] | null;
}

/** One process's RNG streams and where its loaders stand, as a checkpoint stores them. */
export interface RankState {
  rng_state: Tensor;
  cuda_rng_state: Tensor[] | null;
  loader_generator_state: Tensor | null;
  test_loader_generator_state: Tensor | null;
  loader_state: LoaderIterState | null;
}

/** This process's {@link RankState}, taken now. */
function rankState(c: Pick<CheckpointContents, 'loaderGenerator' | 'testLoaderGenerator' | 'loaderState'>): RankState {
  return {
    rng_state: getRngState(),
    // torch.cuda.get_rng_state_all(): dropout on a GPU draws from these.
    cuda_rng_state: cuda.isAvailable() ? Array.from({ length: cuda.deviceCount() }, (_, i) => cuda.getRngState(i)) : null,
    loader_generator_state: c.loaderGenerator ? c.loaderGenerator.getState() : null,
    test_loader_generator_state: c.testLoaderGenerator ? c.testLoaderGenerator.getState() : null,
    loader_state: c.loaderState ?? null,
  };
}

/**
 * Every rank's {@link RankState}, taken now, gathered from all ranks of
 * `group` (a collective: every rank calls it). The tensors are the caller's
 * (inside `tidy`, or disposed).
 */
export function gatherRankStates(group: ProcessGroup, c: Pick<CheckpointContents, 'loaderGenerator' | 'testLoaderGenerator' | 'loaderState'>): RankState[] {
  // Tensors travel as (dtype, shape, bytes) inside one v8-serialized message per rank.
  const encode = (v: unknown): unknown => {
    if (v instanceof Tensor) {
      const a = v.toTypedArray();
      return { tensor: [v.dtype, v.shape, new Uint8Array(a.buffer, a.byteOffset, a.byteLength)] };
    }
    if (Array.isArray(v)) return v.map(encode);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
    return v;
  };
  const decode = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(decode);
    if (v !== null && typeof v === 'object') {
      const t = (v as { tensor?: [DType, number[], Uint8Array] }).tensor;
      if (t) return fromBuffer(t[2].slice(), { dtype: t[0], shape: t[1] });
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decode(x)]));
    }
    return v;
  };
  const own = rankState(c);
  const bytes = serialize(encode(own));
  disposeAll([own.rng_state, own.cuda_rng_state, own.loader_generator_state, own.test_loader_generator_state]); // not loader_state: the caller's
  return tidy(() => {
    const sizes = allGather(tensor([bytes.length], { dtype: 'int64' }), { group }).map((t) => Number(t.item()));
    const padded = new Uint8Array(Math.max(...sizes));
    padded.set(bytes);
    const all = allGather(fromBuffer(padded, { dtype: 'uint8' }), { group });
    return all.map((t, r) => decode(deserialize((t.toTypedArray() as Uint8Array).subarray(0, sizes[r]))) as RankState);
  });
}

/**
 * Saves a checkpoint: `{format, meta, model, optimizer, scheduler, epoch,
 * batch, step, rng_state, cuda_rng_state, loader_generator_state,
 * test_loader_generator_state, loader_state, rank_states,
 * progress, metrics, amp, scaler}`: `amp` is `'bf16'`, `'fp16'` or `'off'`; `scaler` the
 * GradScaler's state dict (PyTorch's recipe: `scaler.load_state_dict(ckpt['scaler'])`) or null.
 * The RNG states (CPU, and each CUDA device's) are taken now.
 */
export function saveCheckpoint(path: string, c: CheckpointContents): void {
  if (typeof path !== 'string') throw new TypeError(`saveCheckpoint(): argument 'path' must be a path, got ${describe(path)}`);
  if (c === null || typeof c !== 'object' || typeof (c.model as { stateDict?: unknown } | null)?.stateDict !== 'function') {
    throw new TypeError(
      `saveCheckpoint(): argument 'contents' must be an object with a 'model' Module, got ${describe(c === null || typeof c !== 'object' ? c : c.model)}`,
    );
  }
  // tidy frees the handles the state dicts and the RNG state are read into.
  tidy(() => {
    save(
      {
        format: CHECKPOINT_FORMAT,
        meta: plainJson(c.meta ?? {}),
        model: c.model.stateDict(),
        optimizer: c.optimizer ? c.optimizer.stateDict() : null,
        scheduler: c.scheduler ? c.scheduler.stateDict() : null,
        epoch: c.epoch,
        batch: c.batch ?? 0,
        step: c.step ?? 0,
        ...rankState(c),
        rank_states: c.ranks ?? null,
        progress: c.progress ?? {},
        metrics: plainJson(c.metrics ?? []),
        amp: c.amp ?? 'off',
        scaler: c.scaler?.isEnabled() ? c.scaler.stateDict() : null,
      },
      path,
    );
  });
}

/** A checkpoint read back by {@link loadCheckpoint}. Call `dispose()` when done. */
export class Checkpoint {
  readonly path: string;
  readonly epoch: number;
  readonly batch: number;
  readonly step: number;
  readonly meta: Record<string, any>;
  readonly metrics: MetricsRecord[];
  readonly progress: Record<string, number>;
  /** The precision the run trained in (`'off'`: fp32, also for checkpoints written before mixed precision). */
  readonly amp: AmpMode;
  /** The model's state dict. */
  readonly model: Map<string, Tensor>;
  private readonly raw: Map<string, unknown>;

  /** @internal */
  constructor(path: string, raw: Map<string, unknown>) {
    this.path = path;
    this.raw = raw;
    const int = (key: string): number => {
      const v = raw.get(key);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`loadCheckpoint(): ${path}: '${key}' should be a non-negative integer`);
      return v;
    };
    this.epoch = int('epoch');
    this.batch = int('batch');
    this.step = int('step');
    const model = raw.get('model');
    if (!(model instanceof Map)) throw new Error(`loadCheckpoint(): ${path} has no 'model' state dict`);
    this.model = model as Map<string, Tensor>;
    this.meta = toPlain(raw.get('meta') ?? new Map()) as Record<string, any>;
    this.metrics = toPlain(raw.get('metrics') ?? []) as MetricsRecord[];
    this.progress = toPlain(raw.get('progress') ?? new Map()) as Record<string, number>;
    const amp = raw.get('amp') ?? 'off';
    if (typeof amp !== 'string' || amp === 'auto' || !(AMP_SETTINGS as readonly string[]).includes(amp)) {
      throw new Error(`loadCheckpoint(): ${path}: 'amp' should be 'bf16', 'fp16' or 'off', got ${describe(amp)}`);
    }
    this.amp = amp as AmpMode;
  }

  /** Ranks whose states were saved (a run under DDP saves every rank's; otherwise 1). */
  get worldSize(): number {
    const ranks = this.raw.get('rank_states');
    return Array.isArray(ranks) ? ranks.length : 1;
  }

  /**
   * The RNG and loader states saved for `rank` of `worldSize`: its own under
   * DDP. A checkpoint from the end of an epoch resumes with any number of
   * ranks (ranks it has no states for start from rank 0's); one from the middle
   * of an epoch only with as many as saved it, whose shares of the epoch it holds.
   */
  private stateOf(rank: number, worldSize: number): Map<string, unknown> {
    if (this.batch > 0 && worldSize !== this.worldSize) {
      throw new Error(
        `loadCheckpoint(): ${this.path} was saved in the middle of an epoch by ${this.worldSize} process${this.worldSize > 1 ? 'es' : ''}; ` +
          `resume it with ${this.worldSize} (this run has ${worldSize})`,
      );
    }
    const ranks = this.raw.get('rank_states');
    if (Array.isArray(ranks) && rank < ranks.length) {
      const own = ranks[rank];
      if (!(own instanceof Map)) throw new Error(`loadCheckpoint(): ${this.path}: rank_states[${rank}] is not a dict`);
      return own;
    }
    return this.raw;
  }

  /** Mid-epoch: the training loader's saved epoch (of `rank`), for `loader.iterate({ state })`. */
  loaderState(rank = 0, worldSize = 1): Map<string, unknown> | null {
    const s = this.stateOf(rank, worldSize).get('loader_state');
    return s instanceof Map ? s : null;
  }

  /**
   * Loads the saved state into the model, optimizer, scheduler, loss scaler and loaders'
   * generators given, and sets the global RNG states (CPU, and CUDA where
   * saved and available) to the saved ones.
   */
  restore(
    into: {
      model?: Module<any, any>;
      optimizer?: Optimizer<any> | null;
      scheduler?: LRScheduler | null;
      loaderGenerator?: Generator | null;
      testLoaderGenerator?: Generator | null;
      scaler?: GradScaler | null;
    },
    opts: { rank?: number; worldSize?: number } = {},
  ): void {
    const own = this.stateOf(opts.rank ?? 0, opts.worldSize ?? 1);
    const what = (key: string, from = this.raw): unknown => {
      const v = from.get(key);
      if (v === undefined || v === null) throw new Error(`loadCheckpoint(): ${this.path} has no '${key}' to restore`);
      return v;
    };
    into.model?.loadStateDict(this.model);
    if (into.optimizer) into.optimizer.loadStateDict(what('optimizer') as Map<string, unknown>);
    if (into.scheduler) into.scheduler.loadStateDict(what('scheduler') as Map<string, unknown>);
    if (into.scaler?.isEnabled()) into.scaler.loadStateDict(what('scaler') as Map<string, unknown>);
    if (into.loaderGenerator) into.loaderGenerator.setState(what('loader_generator_state', own) as Tensor);
    if (into.testLoaderGenerator) into.testLoaderGenerator.setState(what('test_loader_generator_state', own) as Tensor);
    const rng = what('rng_state', own);
    if (!(rng instanceof Tensor)) throw new Error(`loadCheckpoint(): ${this.path}: 'rng_state' is not a tensor`);
    setRngState(rng);
    const cudaStates = own.get('cuda_rng_state');
    if (Array.isArray(cudaStates) && cuda.isAvailable()) {
      cudaStates.slice(0, cuda.deviceCount()).forEach((state, i) => cuda.setRngState(state as Tensor, i));
    }
  }

  /** Frees every tensor the checkpoint holds. */
  dispose(): void {
    disposeAll(this.raw);
  }
}

/**
 * Reads a checkpoint written by {@link saveCheckpoint} (tensors on the CPU).
 * With `processGroup` (a collective: every rank calls it), only rank 0 reads
 * the file and sends its bytes to the others, so it need exist only on rank
 * 0's machine.
 */
export function loadCheckpoint(path: string, opts: { processGroup?: ProcessGroup | null } = {}): Checkpoint {
  const raw = load(opts.processGroup ? readOnRankZero(path, opts.processGroup) : path);
  const bad = (why: string): Error => new Error(`loadCheckpoint(): ${path} is not a vgg-torch checkpoint (${why})`);
  if (!(raw instanceof Map)) {
    disposeAll(raw);
    throw bad('expected a dict at the top level');
  }
  if (raw.get('format') !== CHECKPOINT_FORMAT) {
    disposeAll(raw);
    throw bad(`format is ${JSON.stringify(raw.get('format') ?? null)}, expected ${JSON.stringify(CHECKPOINT_FORMAT)}`);
  }
  try {
    return new Checkpoint(path, raw);
  } catch (e) {
    disposeAll(raw);
    throw e;
  }
}

/** The bytes of the file at `path` on rank 0 of `group`, on every rank. */
function readOnRankZero(path: string, group: ProcessGroup): Buffer {
  let bytes: Buffer | null = null;
  let failure: unknown = null;
  if (group.rank() === 0) {
    try {
      bytes = readFileSync(path);
    } catch (e) {
      failure = e;
    }
  }
  // The size first (-1: rank 0 could not read it), so that no rank waits for bytes that never come.
  const size = tidy(() => {
    const t = tensor([bytes ? bytes.length : -1], { dtype: 'int64' });
    broadcast(t, { src: 0, group });
    return Number(t.item());
  });
  if (failure) throw failure;
  if (size < 0) throw new Error(`loadCheckpoint(): rank 0 could not read ${path}`);
  return tidy(() => {
    const t = bytes ? fromBuffer(bytes, { dtype: 'uint8' }) : tensor(new Uint8Array(size));
    broadcast(t, { src: 0, group });
    const data = t.toTypedArray();
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  });
}

/** Frees every tensor in a value read from a .pth file (Maps and arrays are walked). */
export function disposeAll(v: unknown): void {
  if (v instanceof Tensor) {
    if (!v.isDisposed) v.dispose();
  } else if (v instanceof Map) for (const x of v.values()) disposeAll(x);
  else if (Array.isArray(v)) for (const x of v) disposeAll(x);
}

/** JSON-like data with `undefined` dropped and non-finite numbers as null, as a JSON round trip gives. */
function plainJson<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Python dicts (Maps) back to plain objects, recursively. */
function toPlain(v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), toPlain(x)]));
  if (Array.isArray(v)) return v.map(toPlain);
  return v;
}
