// The dynamic batcher (TorchServe's batch_size / max_batch_delay, Triton's
// dynamic batching): images that arrive within maxDelayMs of the oldest waiting
// one are stacked into one batch of up to maxBatch and run through the model
// together, one batch at a time (the model already uses every intra-op thread);
// each request gets its own row of the output back.
import { stack } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ServeMetrics } from './metrics.js';

/** The queue holds `queueLimit` images already: answered 503 with Retry-After. */
export class QueueFullError extends Error {
  constructor(
    message: string,
    /** Seconds after which the queue is likely to have room again. */
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  queueLimit: number;
}

interface Waiting {
  x: Tensor;
  /** Images batch together only when their shapes and dtypes agree. */
  key: string;
  at: number;
  resolve: (row: Tensor) => void;
  reject: (e: unknown) => void;
}

export class Batcher {
  private readonly queue: Waiting[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private idle: (() => void)[] = [];
  /** Average time of a batch in ms (exponentially weighted): what Retry-After is estimated from. */
  private batchMs = 0;
  private draining = false;

  /**
   * @param run the model on a batch (N, …) giving (N, …) outputs, off the event loop
   * @param options sizes and delays
   * @param metrics where batch sizes, waits and durations are recorded
   */
  constructor(
    private readonly run: (batch: Tensor) => Promise<Tensor>,
    readonly options: BatcherOptions,
    private readonly metrics: ServeMetrics | null = null,
  ) {}

  /** Images waiting for their batch to start. */
  get depth(): number {
    return this.queue.length;
  }

  /** Batches running now (0 or 1). */
  get inFlight(): number {
    return this.running;
  }

  /** Whether the queue has room for one more image. */
  get full(): boolean {
    return this.queue.length >= this.options.queueLimit;
  }

  /** Seconds after which a full queue is likely to have room: the batches ahead of a new image, at the average batch time. */
  retryAfterS(): number {
    const batchesAhead = Math.ceil(this.queue.length / this.options.maxBatch) + this.running;
    return Math.max(1, Math.ceil((batchesAhead * this.batchMs) / 1000));
  }

  /**
   * Queues one image (C, H, W) (the batcher owns it from here and frees it) and resolves to its
   * row of the model's output; rejects with QueueFullError when the queue is full, and with the
   * model's error if its batch fails.
   */
  submit(x: Tensor): Promise<Tensor> {
    if (this.full) {
      x.dispose();
      return Promise.reject(new QueueFullError(`the queue holds ${this.queue.length} images, its limit (queueLimit); try again later`, this.retryAfterS()));
    }
    return new Promise<Tensor>((resolve, reject) => {
      this.queue.push({ x, key: `${x.dtype}[${x.shape.join(',')}]`, at: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /**
   * Stops waiting for batches to fill: from now on every image starts its batch as soon as the
   * model is free (closing the server). Resolves once the queue is empty and no batch runs.
   */
  drain(): Promise<void> {
    this.draining = true;
    this.pump();
    return this.drained();
  }

  /** Resolves once the queue is empty and no batch runs (after the images queued now are answered). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Starts a batch when the model is free and either maxBatch images of one shape wait or the oldest has waited maxDelayMs. */
  private pump(): void {
    if (this.running > 0 || this.queue.length === 0) return;
    const { maxBatch, maxDelayMs } = this.options;
    const head = this.queue[0];
    const alike = this.queue.reduce((n, w) => n + (w.key === head.key ? 1 : 0), 0);
    const waited = performance.now() - head.at;
    if (alike < maxBatch && waited < maxDelayMs && !this.draining) {
      if (!this.timer) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, maxDelayMs - waited);
      }
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch: Waiting[] = [];
    for (let i = 0; i < this.queue.length && batch.length < maxBatch; ) {
      if (this.queue[i].key === head.key) batch.push(...this.queue.splice(i, 1));
      else i++;
    }
    void this.runBatch(batch);
  }

  private async runBatch(batch: Waiting[]): Promise<void> {
    this.running++;
    const started = performance.now();
    for (const w of batch) this.metrics?.queueWait.observe((started - w.at) / 1000);
    this.metrics?.batchSize.observe(batch.length);
    let out: Tensor | null = null;
    try {
      const x = stack(batch.map((w) => w.x));
      for (const w of batch) w.x.dispose();
      try {
        out = await this.run(x);
      } finally {
        x.dispose();
      }
      if (out.dim() === 0 || out.shape[0] !== batch.length) {
        throw new Error(`the model gave an output of shape [${out.shape.join(', ')}] for a batch of ${batch.length}: expected one row per image`);
      }
      // Each request owns a view of its row; the batch's storage is freed with the last of them.
      const rows = batch.map((_, i) => (out as Tensor).select(0, i));
      batch.forEach((w, i) => w.resolve(rows[i]));
    } catch (e) {
      for (const w of batch) {
        if (!w.x.isDisposed) w.x.dispose();
        w.reject(e);
      }
    } finally {
      out?.dispose();
      const ms = performance.now() - started;
      this.batchMs = this.batchMs === 0 ? ms : 0.8 * this.batchMs + 0.2 * ms;
      this.metrics?.batchDuration.observe(ms / 1000);
      this.running--;
      this.pump();
      if (this.queue.length === 0 && this.running === 0) for (const f of this.idle.splice(0)) f();
    }
  }
}
