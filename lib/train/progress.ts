// A per-epoch progress bar: batches, loss, accuracy, images/s and ETA, redrawn
// in place on a terminal. When the stream is not a TTY (CI, a file, a pipe) it
// prints plain log lines only, so logs stay readable.
import { checkOptions } from '../utils/args.js';

/** What a progress line shows after a batch. */
export interface ProgressStats {
  /** Mean training loss so far this epoch. */
  loss: number;
  /** Training accuracy so far this epoch (percent). */
  accuracy: number;
  /** Images seen so far this epoch. */
  images: number;
}

export interface ProgressBarOptions {
  /** Batches in the epoch. */
  total: number;
  /** Shown before the bar, e.g. `epoch 3/50`. */
  label: string;
  /** Default `process.stdout`. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Batches already done (a resumed epoch). */
  start?: number;
  /** Images already seen this epoch (a resumed epoch). */
  startImages?: number;
  /** Redraws per second at most (default 10). */
  fps?: number;
}

const formatDuration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
};

/**
 * One epoch's progress. `update()` after every batch; `log()` for a line that
 * must stay (printed above the bar); `finish()` at the end of the epoch.
 */
export class ProgressBar {
  readonly total: number;
  readonly label: string;
  readonly tty: boolean;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  private readonly started = performance.now();
  private readonly startBatch: number;
  private readonly minInterval: number;
  private done: number;
  private stats: ProgressStats = { loss: NaN, accuracy: NaN, images: 0 };
  private readonly imagesAtStart: number;
  private lastDraw = -Infinity;
  private drawn = false;

  constructor(opts: ProgressBarOptions) {
    checkOptions('ProgressBar', opts, ['total', 'label', 'stream', 'start', 'startImages', 'fps'], { required: ['total'] });
    this.total = opts.total;
    this.label = opts.label;
    this.stream = opts.stream ?? process.stdout;
    this.tty = Boolean(this.stream.isTTY);
    this.startBatch = this.done = opts.start ?? 0;
    this.imagesAtStart = opts.startImages ?? 0;
    this.minInterval = 1000 / (opts.fps ?? 10);
  }

  /** Images per second since this bar started. */
  get imagesPerSecond(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? Math.max(0, this.stats.images - this.imagesAtStart) / seconds : 0;
  }

  /** Seconds to the end of the epoch at the current pace. */
  get eta(): number {
    const batches = this.done - this.startBatch;
    if (batches <= 0) return NaN;
    return (((performance.now() - this.started) / 1000) * (this.total - this.done)) / batches;
  }

  /** Records that `batchesDone` batches of the epoch are finished. */
  update(batchesDone: number, stats: ProgressStats): void {
    this.done = batchesDone;
    this.stats = stats;
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.lastDraw < this.minInterval && batchesDone < this.total) return;
    this.lastDraw = now;
    this.draw();
  }

  /** Prints a line that stays, above the bar on a terminal. */
  log(line: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.stream.write(`${line}\n`);
    if (this.tty && this.drawn) this.draw();
  }

  /** Ends the epoch's bar; `summary` (if any) replaces it. */
  finish(summary?: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
    if (summary) this.stream.write(`${summary}\n`);
  }

  /** The current line, e.g. `epoch 1/2 [=====>    ] 12/24 loss 0.812 acc 71.3% 950 img/s ETA 00:13`. */
  line(width = this.stream.columns ?? 100): string {
    const { loss, accuracy } = this.stats;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const stats =
      ` ${String(this.done).padStart(String(this.total).length)}/${this.total}` +
      ` loss ${Number.isFinite(loss) ? loss.toFixed(3) : '-'} acc ${Number.isFinite(accuracy) ? accuracy.toFixed(1) : '-'}%` +
      ` ${Math.round(this.imagesPerSecond)} img/s ETA ${formatDuration(this.eta)}`;
    const room = width - 1 - this.label.length - stats.length - 3; // a line as wide as the terminal would wrap and break \r
    if (room < 10) return `${this.label}${stats}`.slice(0, Math.max(1, width - 1));
    const barWidth = Math.min(30, room);
    const filled = Math.min(barWidth, Math.floor(frac * barWidth));
    const bar = '='.repeat(filled) + (filled < barWidth ? '>' : '') + ' '.repeat(Math.max(0, barWidth - filled - 1));
    return `${this.label} [${bar}]${stats}`;
  }

  private draw(): void {
    this.stream.write(`\r\x1b[2K${this.line()}`);
    this.drawn = true;
  }
}
