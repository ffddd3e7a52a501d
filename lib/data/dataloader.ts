// torch.utils.data.DataLoader: batches of a map-style dataset, shuffled with
// PyTorch's exact order for the same seed, loaded and augmented ahead of the
// consumer. Built-in datasets with built-in transforms take the whole-batch
// path: the main thread gathers the batch's uint8 images (one index_select),
// records the transform plan (drawing its random parameters from the global
// generator, so runs are reproducible under manualSeed), and a worker thread
// runs it while the training step runs here. Other datasets are read sample by
// sample and collated on this thread.
import { AsyncResource } from 'node:async_hooks';
import { native } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import { tidy, track } from '../tensor/scope.js';
import { Tensor, stack, wrap } from '../tensor/tensor.js';
import { checkBoolean, checkOptions, describe } from '../utils/args.js';
import { serialize, deserialize } from 'node:v8';
import { type Plan, runPlan } from '../transforms/plan.js';
import { type BatchSource, type Dataset, batchSourceOf, checkDataset } from './dataset.js';
import { Generator, randomInt64 } from '../generator.js';
import { type JobResult, discard, submit, wait, waitSync } from './pool.js';

/** What the default collate makes of a sample type: tensors stack, numbers become a tensor, arrays and objects recurse. */
export type Collated<T> = T extends Tensor
  ? Tensor
  : T extends number | boolean | bigint
    ? Tensor
    : T extends string
      ? string[]
      : T extends readonly unknown[]
        ? { -readonly [K in keyof T]: Collated<T[K]> }
        : T extends object
          ? { [K in keyof T]: Collated<T[K]> }
          : T[];

/**
 * `torch.utils.data.Sampler`: the dataset indices of one epoch, in order,
 * iterated afresh every epoch (e.g. {@link DistributedSampler}, or a plain array).
 */
export interface Sampler extends Iterable<number> {
  /** Indices per epoch (`len(sampler)`). */
  readonly length: number;
}

export interface DataLoaderOptions<T, B> {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Reshuffle at every epoch (default false). */
  shuffle?: boolean;
  /** Where each epoch's indices come from instead (mutually exclusive with `shuffle`). */
  sampler?: Sampler;
  /** Drop the last, incomplete batch (default false). */
  dropLast?: boolean;
  /** Shuffle (and draw the per-epoch base seed) from this generator instead of the global one. */
  generator?: Generator;
  /** Shorthand for `generator: new Generator().manualSeed(seed)`. */
  seed?: number | bigint;
  /** Batches prepared ahead of the one being consumed (default 2; 0: each batch when asked for). */
  prefetch?: number;
  /**
   * Worker threads for the whole-batch path (default 1; 0: everything on this
   * thread). Datasets and transforms that cannot run as plans always load here.
   */
  numWorkers?: number;
  /** Builds a batch from samples (default: {@link defaultCollate}); forces sample-by-sample loading. */
  collate?: (samples: T[]) => B;
}

/**
 * PyTorch's default_collate: tensors are stacked, numbers become an int64
 * (integers) or float64 tensor, booleans a bool tensor, strings stay a list;
 * arrays and plain objects are collated position by position / key by key.
 */
export function defaultCollate<T>(samples: T[]): Collated<T> {
  if (samples.length === 0) throw new RangeError('DataLoader: cannot collate an empty batch');
  const first = samples[0] as unknown;
  if (first instanceof Tensor) return stack(samples as unknown as Tensor[]) as Collated<T>;
  if (typeof first === 'number') {
    const nums = samples as unknown as number[];
    const ints = nums.every(Number.isInteger);
    const data = ints ? BigInt64Array.from(nums, (v) => BigInt(v)) : Float64Array.from(nums);
    return wrap(native.fromBuffer(data.buffer, 0, [nums.length], dtypeCode(ints ? 'int64' : 'float64'), false)) as Collated<T>;
  }
  if (typeof first === 'bigint') {
    return wrap(native.fromBuffer(BigInt64Array.from(samples as unknown as bigint[]).buffer, 0, [samples.length], dtypeCode('int64'), false)) as Collated<T>;
  }
  if (typeof first === 'boolean') {
    return wrap(
      native.fromBuffer(Uint8Array.from(samples as unknown as boolean[], Number).buffer, 0, [samples.length], dtypeCode('bool'), false),
    ) as Collated<T>;
  }
  if (typeof first === 'string') return [...samples] as Collated<T>;
  if (Array.isArray(first)) {
    const n = first.length;
    if (!(samples as unknown as unknown[][]).every((s) => Array.isArray(s) && s.length === n)) {
      throw new RangeError('DataLoader: each element in the batch should be of equal size');
    }
    return first.map((_, i) => defaultCollate((samples as unknown as unknown[][]).map((s) => s[i]))) as Collated<T>;
  }
  if (first !== null && typeof first === 'object' && Object.getPrototypeOf(first) === Object.prototype) {
    return Object.fromEntries(Object.keys(first).map((k) => [k, defaultCollate(samples.map((s) => (s as Record<string, unknown>)[k]))])) as Collated<T>;
  }
  throw new TypeError(`DataLoader: the default collate cannot batch ${first === null ? 'null' : typeof first} samples; pass options.collate`);
}

type Pending = { kind: 'ready'; value: unknown } | { kind: 'job'; id: number; rest: Tensor[] };

/**
 * Where one epoch's iteration stands, as `.pth`-friendly values (like
 * torchdata's `StatefulDataLoader.state_dict()`): `order` (int32, the epoch's
 * sample order), `yielded` (batches handed out), `plans` (uint8: the random
 * transform parameters already drawn for batches prepared ahead, V8-serialized),
 * the batching it was taken with, and whether the sampler's last draw is made.
 * The tensors belong to the caller.
 */
export interface LoaderIterState {
  order: Tensor;
  yielded: number;
  plans: Tensor;
  /** The loader's batching, checked when the state is used. */
  batchSize: number;
  dropLast: boolean;
  /** The sampler's end-of-epoch draw is done. */
  exhausted: boolean;
}

/** One epoch of a {@link DataLoader}: iterate it once, with `for … of` or `for await`. */
export class EpochIterator<B> implements Iterable<B>, AsyncIterable<B> {
  /** @internal */
  constructor(private readonly epoch: Epoch<any, B>) {}

  /** Batches handed out so far. */
  get yielded(): number {
    return this.epoch.yieldedCount;
  }

  /**
   * The iteration state, to continue this epoch later with
   * `loader.iterate({ state })`, also in another process: the batches after
   * this point come out as they would have here, random augmentation included.
   */
  stateDict(): LoaderIterState {
    return this.epoch.stateDict();
  }

  /** Frees the batches prepared ahead (a `break` out of `for … of` does this too). */
  close(): void {
    this.epoch.close();
  }

  [Symbol.iterator](): Iterator<B> & Iterable<B> {
    const epoch = this.epoch;
    return {
      next: (): IteratorResult<B> => epoch.nextSync(),
      return: (): IteratorResult<B> => {
        epoch.close();
        return { done: true, value: undefined };
      },
      [Symbol.iterator]() {
        return this;
      },
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<B> & AsyncIterable<B> {
    const epoch = this.epoch;
    return {
      next: (): Promise<IteratorResult<B>> => epoch.next(),
      return: async (): Promise<IteratorResult<B>> => {
        epoch.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

/**
 * `torch.utils.data.DataLoader`: iterate with `for (const [x, y] of loader)` or
 * `for await (…)`. Every batch belongs to the caller: dispose it (or iterate
 * inside `tidy`).
 *
 * With `shuffle`, the order is PyTorch's for the same seed: each epoch draws a
 * base seed and a sampler seed from the global generator (or from `generator`)
 * exactly as PyTorch's DataLoader and RandomSampler do, and permutes with
 * libtorch's randperm, so `manualSeed(s)` gives the batches
 * `torch.manual_seed(s)` gives in Python, and leaves the global generator where
 * Python's would be.
 */
export class DataLoader<T = unknown, B = Collated<T>> implements Iterable<B>, AsyncIterable<B> {
  readonly dataset: Dataset<T>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly numWorkers: number;
  readonly generator: Generator | null;
  readonly collate: ((samples: T[]) => B) | null;
  readonly sampler: Sampler | null;

  constructor(dataset: Dataset<T>, opts: DataLoaderOptions<T, B> = {}) {
    checkDataset('DataLoader', dataset);
    checkOptions('DataLoader', opts, ['batchSize', 'shuffle', 'sampler', 'dropLast', 'generator', 'seed', 'prefetch', 'numWorkers', 'collate']);
    checkBoolean('DataLoader', 'shuffle', opts.shuffle);
    checkBoolean('DataLoader', 'dropLast', opts.dropLast);
    if (opts.collate != null && typeof opts.collate !== 'function')
      throw new TypeError(`DataLoader: collate must be a function, got ${describe(opts.collate)}`);
    if (opts.generator != null && !(opts.generator instanceof Generator))
      throw new TypeError(`DataLoader: generator must be a Generator, got ${describe(opts.generator)}`);
    const int = (v: number | undefined, dflt: number, min: number, what: string): number => {
      const x = v ?? dflt;
      if (!Number.isInteger(x) || x < min) throw new RangeError(`DataLoader: ${what} should be an integer >= ${min}, but got ${what}=${describe(v)}`);
      return x;
    };
    this.dataset = dataset;
    this.batchSize = int(opts.batchSize, 1, 1, 'batchSize');
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.prefetch = int(opts.prefetch, 2, 0, 'prefetch');
    this.numWorkers = int(opts.numWorkers, 1, 0, 'numWorkers');
    if (opts.generator && opts.seed !== undefined) throw new TypeError('DataLoader: pass generator or seed, not both');
    this.generator = opts.generator ?? (opts.seed !== undefined ? new Generator().manualSeed(opts.seed) : null);
    this.collate = opts.collate ?? null;
    const sampler = opts.sampler ?? null;
    if (sampler !== null) {
      if (typeof (sampler as Partial<Sampler>)[Symbol.iterator] !== 'function' || !Number.isInteger(sampler.length) || sampler.length < 0) {
        throw new TypeError(`DataLoader: sampler must be an iterable of indices with a length, got ${describe(sampler)}`);
      }
      if (this.shuffle) throw new TypeError('DataLoader: sampler option is mutually exclusive with shuffle');
    }
    this.sampler = sampler;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler ? this.sampler.length : this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The sample order of a new epoch, drawing from the generators as PyTorch does. */
  private epochOrder(): Int32Array {
    const n = this.dataset.length;
    const g = this.generator;
    // _BaseDataLoaderIter draws a base seed (for worker seeding) every epoch.
    randomInt64(g ?? undefined);
    if (this.sampler) return this.samplerOrder();
    if (!this.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    // RandomSampler: a fresh generator seeded from the global one, or the loader's generator itself.
    const perm = g ? g.randperm(n) : new Generator().manualSeed(randomInt64()).randperm(n);
    const halves = new Int32Array(native.toArrayBuffer(perm._h));
    perm.dispose();
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = halves[2 * i];
    return order;
  }

  /** The sampler's indices for this epoch, checked against the dataset. */
  private samplerOrder(): Int32Array {
    const n = this.dataset.length;
    const order = Int32Array.from(this.sampler!, (i) => {
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`DataLoader: the sampler gave index ${describe(i)}, outside the dataset's [0, ${n})`);
      return i;
    });
    if (order.length !== this.sampler!.length)
      throw new RangeError(`DataLoader: the sampler gave ${order.length} indices but its length is ${this.sampler!.length}`);
    return order;
  }

  /**
   * Starts an epoch (drawing its order as `for … of loader` does), or, given
   * `state` from {@link EpochIterator.stateDict}, continues a saved one without
   * drawing anything new. For exact continuation also restore the global RNG
   * state and this loader's generator state saved at the same point.
   */
  iterate(opts: { state?: LoaderIterState | Map<string, unknown> } = {}): EpochIterator<B> {
    checkOptions('DataLoader.iterate()', opts, ['state']);
    if (!opts.state) return new EpochIterator(new Epoch<T, B>(this, this.epochOrder()));
    return new EpochIterator(new Epoch<T, B>(this, ...parseIterState(opts.state, this)));
  }

  [Symbol.iterator](): Iterator<B> & Iterable<B> {
    return this.iterate()[Symbol.iterator]();
  }

  [Symbol.asyncIterator](): AsyncIterator<B> & AsyncIterable<B> {
    return this.iterate()[Symbol.asyncIterator]();
  }

  /** @internal */
  _source(): BatchSource | null {
    return this.collate ? null : batchSourceOf(this.dataset);
  }
}

/** Runs a function in the context this module was loaded in: outside every tidy scope. */
const outsideScopes: <R>(fn: () => R) => R = AsyncResource.bind(<R>(fn: () => R): R => fn());

/** Reads a saved {@link LoaderIterState} (as written, or as a .pth file gives it back: a Map). */
function parseIterState(
  state: LoaderIterState | Map<string, unknown>,
  loader: DataLoader<any, any>,
): [Int32Array, { yielded: number; plans: Map<number, Plan | null>; exhausted: boolean }] {
  const get = (k: string): unknown => (state instanceof Map ? state.get(k) : (state as unknown as Record<string, unknown>)[k]);
  const order = get('order');
  const yielded = get('yielded');
  const plans = get('plans');
  const n = loader.dataset.length;
  const size = loader.sampler ? loader.sampler.length : n;
  if (get('batchSize') !== loader.batchSize || get('dropLast') !== loader.dropLast) {
    throw new TypeError(
      `DataLoader.iterate(): the saved state was taken with batchSize ${String(get('batchSize'))}, dropLast ${String(get('dropLast'))}; ` +
        `this loader has batchSize ${loader.batchSize}, dropLast ${loader.dropLast}`,
    );
  }
  if (!(order instanceof Tensor) || order.dtype !== 'int32' || order.numel() !== size) {
    throw new TypeError(`DataLoader.iterate(): the saved state's order must be an int32 tensor of ${size} indices (one per sample of an epoch)`);
  }
  if (typeof yielded !== 'number' || !Number.isInteger(yielded) || yielded < 0 || yielded > loader.length) {
    throw new TypeError(`DataLoader.iterate(): the saved state's yielded must be an integer in [0, ${loader.length}], got ${String(yielded)}`);
  }
  if (!(plans instanceof Tensor) || plans.dtype !== 'uint8') throw new TypeError('DataLoader.iterate(): the saved state has no uint8 plans tensor');
  const ord = new Int32Array(order.toTypedArray() as Int32Array);
  for (const i of ord) if (i < 0 || i >= n) throw new RangeError(`DataLoader.iterate(): the saved order holds index ${i}, outside [0, ${n})`);
  let entries: [number, Plan | null][];
  try {
    entries = deserialize(plans.toTypedArray() as Uint8Array) as [number, Plan | null][];
  } catch {
    throw new TypeError('DataLoader.iterate(): the saved plans are corrupt');
  }
  return [ord, { yielded, plans: new Map(entries), exhausted: get('exhausted') === true }];
}

/** One pass over the data. */
class Epoch<T, B> {
  private readonly pending = new Map<number, Pending>();
  private scheduled = 0;
  private yielded = 0;
  private closed = false;
  private exhausted = false;
  private readonly count: number;
  private readonly source: BatchSource | null;

  /** Plans drawn for batches scheduled but not yet handed out, by batch index (for stateDict()). */
  private readonly plans = new Map<number, Plan | null>();
  /** Plans restored from a saved state, used instead of drawing new ones. */
  private readonly savedPlans: Map<number, Plan | null>;

  constructor(
    private readonly loader: DataLoader<T, B>,
    private readonly order: Int32Array,
    resume: { yielded: number; plans: Map<number, Plan | null>; exhausted: boolean } | null = null,
  ) {
    this.count = loader.length;
    this.source = loader._source();
    this.yielded = this.scheduled = resume?.yielded ?? 0;
    this.exhausted = resume?.exhausted ?? false;
    this.savedPlans = resume?.plans ?? new Map();
    try {
      this.fill(this.yielded);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private indices(k: number): Int32Array {
    const bs = this.loader.batchSize;
    return this.order.subarray(k * bs, Math.min((k + 1) * bs, this.order.length));
  }

  /** Schedules batch `k` (about to be consumed) and `prefetch` more after it (whole-batch path only). */
  private fill(k: number): void {
    if (!this.source) return;
    const limit = Math.min(this.count, k + 1 + this.loader.prefetch);
    while (this.scheduled < limit) this.schedule(this.scheduled++);
  }

  /**
   * Prepares batch k. That may happen inside the consumer's tidy scope for an
   * earlier batch, which must not free it: it is made outside every scope, and
   * joins the scope that is current when it is handed out (see adopt()).
   */
  private schedule(k: number): void {
    outsideScopes(() => this.prepare(k));
  }

  private prepare(k: number): Tensor[] {
    const src = this.source!;
    const cols = src._fetchBatch(this.indices(k));
    const tf = src._batchTransform();
    if (!tf) {
      this.plans.set(k, null);
      this.pending.set(k, { kind: 'ready', value: cols });
      return cols;
    }
    let plan: Plan;
    try {
      const saved = this.savedPlans.get(k);
      this.savedPlans.delete(k);
      plan = saved ?? tf._planFor(cols[0].shape, cols[0].dtype).plan; // draws the random parameters now, in order
    } catch (e) {
      for (const c of cols) c.dispose();
      throw e;
    }
    this.plans.set(k, plan);
    if (plan.result === 0) {
      this.pending.set(k, { kind: 'ready', value: cols });
      return cols;
    }
    if (this.loader.numWorkers === 0) {
      try {
        const out = wrap(runPlan(cols[0]._h, plan));
        cols[0].dispose();
        cols[0] = out;
      } catch (e) {
        for (const c of cols) c.dispose();
        throw e;
      }
      this.pending.set(k, { kind: 'ready', value: cols });
      return cols;
    }
    const [shape, dtype] = native.meta(cols[0]._h);
    const buffer = native.toArrayBuffer(cols[0]._h);
    cols[0].dispose();
    const id = submit(k % this.loader.numWorkers, { inputs: [{ buffer, shape, dtype }], plans: [plan], stack: false });
    this.pending.set(k, { kind: 'job', id, rest: cols.slice(1) });
    return cols.slice(1);
  }

  /** Hands a prepared batch to the consumer: its tensors join the tidy scope current now, if any. */
  private adopt(value: B): B {
    for (const t of value as unknown as Tensor[]) track(t);
    return value;
  }

  private finishJob(p: { id: number; rest: Tensor[] }, r: JobResult): B {
    if (r.error !== undefined) {
      for (const t of p.rest) t.dispose();
      throw new Error(`DataLoader: the loader worker failed: ${r.error}`);
    }
    for (const t of p.rest) track(t);
    return [wrap(native.fromBuffer(r.buffer, 0, r.shape, r.dtype, false)), ...p.rest] as B;
  }

  /** The next batch, for `for … of`. */
  nextSync(): IteratorResult<B> {
    if (this.closed || this.yielded >= this.count) return this.end();
    const k = this.yielded++;
    let p: Pending | undefined;
    try {
      let value: B;
      if (!this.source) value = this.collateItems(k);
      else {
        p = this.takePending(k);
        value = p.kind === 'ready' ? this.adopt(p.value as B) : this.finishJob(p, waitSync(p.id));
      }
      this.lastBatchDrawn(k);
      return { done: false, value };
    } catch (e) {
      this.fail(p);
      throw e;
    }
  }

  /** The next batch, for `for await … of`: waiting for the worker does not block the event loop. */
  async next(): Promise<IteratorResult<B>> {
    if (this.closed || this.yielded >= this.count) return this.end();
    const k = this.yielded++;
    let p: Pending | undefined;
    try {
      let value: B;
      if (!this.source) value = this.collateItems(k);
      else {
        p = this.takePending(k);
        value = p.kind === 'ready' ? this.adopt(p.value as B) : this.finishJob(p, await wait(p.id));
      }
      this.lastBatchDrawn(k);
      return { done: false, value };
    } catch (e) {
      this.fail(p);
      throw e;
    }
  }

  /** Batch `k` of the whole-batch path, scheduling it (and those after it) if needed. */
  private takePending(k: number): Pending {
    this.fill(k);
    const p = this.pending.get(k)!;
    this.pending.delete(k);
    this.plans.delete(k);
    return p;
  }

  get yieldedCount(): number {
    return this.yielded;
  }

  stateDict(): LoaderIterState {
    const plans = serialize([...this.plans.entries()]);
    return {
      order: wrap(native.fromBuffer(this.order.slice().buffer, 0, [this.order.length], dtypeCode('int32'), false)),
      yielded: this.yielded,
      plans: wrap(native.fromBuffer(plans.buffer, plans.byteOffset, [plans.byteLength], dtypeCode('uint8'), true)),
      batchSize: this.loader.batchSize,
      dropLast: this.loader.dropLast,
      exhausted: this.exhausted,
    };
  }

  /** After an error: a loop whose next() throws never calls return(), so clean up here. */
  private fail(p: Pending | undefined): void {
    if (p?.kind === 'job') for (const t of p.rest) if (!t.isDisposed) t.dispose();
    this.close();
  }

  /**
   * PyTorch's RandomSampler calls randperm once more when its iterator runs out
   * (the `[:num_samples % n]` tail). With the loader's own generator that draw
   * moves the generator, so make it when PyTorch does: as the last, partial batch
   * is taken, or else when the end of the epoch is asked for.
   */
  private lastBatchDrawn(k: number): void {
    const { dropLast, batchSize } = this.loader;
    if (k === this.count - 1 && !dropLast && this.order.length % batchSize !== 0) this.samplerExhausted();
  }
  private samplerExhausted(): void {
    if (this.exhausted) return;
    this.exhausted = true;
    const g = this.loader.generator;
    if (g && this.loader.shuffle) g.randperm(this.order.length).dispose();
  }

  private collateItems(k: number): B {
    const ds = this.loader.dataset;
    const collate = this.loader.collate ?? (defaultCollate as unknown as (s: T[]) => B);
    // tidy frees what get() and collate create, except the batch itself.
    return tidy(() => collate(Array.from(this.indices(k), (i) => ds.get(i))));
  }

  private end(): IteratorResult<B> {
    if (!this.closed && this.yielded >= this.count) this.samplerExhausted();
    this.close();
    return { done: true, value: undefined };
  }

  /** Frees what was prepared ahead and drops unfinished jobs. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      if (p.kind === 'ready') {
        for (const t of p.value as Tensor[]) t.dispose();
      } else {
        discard(p.id);
        for (const t of p.rest) t.dispose();
      }
    }
    this.pending.clear();
  }
}
