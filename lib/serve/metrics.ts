// The server's metrics in Prometheus's text exposition format (version 0.0.4):
// counters, histograms with cumulative buckets, and gauges read when scraped.

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Record<string, string>): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
const num = (x: number): string => (x === Number.POSITIVE_INFINITY ? '+Inf' : String(x));

/** A counter by label values (`requests_total{route, status}`). */
export class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Record<string, string>, by = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Record<string, string>): number {
    return this.values.get(labelText(labels)) ?? 0;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, v] of this.values) lines.push(`${this.name}${key} ${v}`);
    return lines.join('\n');
  }
}

/** A histogram with fixed upper bounds (`le`), cumulative as Prometheus reads them. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Array(bounds.length).fill(0);
  }

  observe(x: number): void {
    const i = this.bounds.findIndex((b) => x <= b);
    if (i >= 0) this.counts[i]++;
    this.sum += x;
    this.count++;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += this.counts[i];
      lines.push(`${this.name}_bucket{le="${num(b)}"} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

/** A gauge read when scraped (the queue's depth now). */
export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number,
  ) {}

  text(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.read()}`].join('\n');
  }
}

/** The server's metrics; `text()` is the body of `GET /metrics`. */
export class ServeMetrics {
  readonly requests = new Counter('vggtorch_requests_total', 'HTTP requests answered, by route and status code.');
  readonly latency = new Histogram(
    'vggtorch_request_duration_seconds',
    'Time from a prediction request received to its answer sent, in seconds.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly queueWait = new Histogram(
    'vggtorch_queue_wait_seconds',
    'Time an image waited in the batch queue before its batch started, in seconds.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly batchDuration = new Histogram(
    'vggtorch_batch_duration_seconds',
    'Time the model took for one batch (off the event loop), in seconds.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly batchSize: Histogram;
  private readonly gauges: Gauge[];

  constructor(maxBatch: number, queueDepth: () => number, inFlight: () => number) {
    const bounds: number[] = [];
    for (let b = 1; b < maxBatch; b *= 2) bounds.push(b);
    bounds.push(maxBatch);
    this.batchSize = new Histogram('vggtorch_batch_size', 'Images per batch run through the model.', bounds);
    this.gauges = [
      new Gauge('vggtorch_queue_depth', 'Images waiting in the batch queue.', queueDepth),
      new Gauge('vggtorch_batches_in_flight', 'Batches running in the model now.', inFlight),
    ];
  }

  text(): string {
    return `${[this.requests, this.latency, this.queueWait, this.batchDuration, this.batchSize, ...this.gauges].map((m) => m.text()).join('\n')}\n`;
  }
}
