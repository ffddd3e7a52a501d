// fit() under DistributedDataParallel, 2 ranks as child processes on 127.0.0.1 (gloo): rank 0
// alone writes and prints; a stop asked of one rank stops both after the same batch; resuming
// (rank 1 without the file: rank 0 sends it) gives the weights and figures of an uninterrupted
// run, bitwise; the evaluation split over the ranks is the whole test set's; a rank that dies
// makes the other fail within seconds; under amp 'bf16' every rank autocasts and the ranks stay in
// step. The model is a small MLP, so each run takes seconds.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distributed } from '../lib/index.js';
import { freePort } from './distributed-helpers.js';
import { type ChildResult, runNodeChild } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-ddp-fit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function result<T>(r: ChildResult): T {
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

interface Outcome {
  printed: string;
  interrupted: boolean;
  epochs: number;
  step: number;
  params: number[][];
  metrics: { kind: string; loss?: number; accuracy?: number; confusion?: number[][] }[];
  /** The final model evaluated by this process alone on the whole test set (rank 0). */
  alone?: { loss: number; counts: number[] };
}

/**
 * One rank's fit(): `stopAt` aborts after that many batches on this rank only, `resume` continues
 * from outDir/checkpoint.pth (which only rank 0's outDir holds), `die` exits the process there.
 */
const rankScript = (o: { port: number; rank: number; out: string; epochs: number; stopAt?: number; resume?: boolean; die?: number; amp?: string }): string => `
  const vt = await import(LIB);
  const { nn, optim } = vt;
  const RANK = ${o.rank};
  vt.setNumThreads(1);
  vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${o.port}', rank: RANK, worldSize: 2, timeout: 20000 });
  // The same data on both ranks; each trains on its DistributedSampler share.
  vt.manualSeed(0);
  const X = vt.randn([64, 1, 4, 4]);
  const Y = X.flatten(1).narrow(1, 0, 4).argmax(1); // learnable labels: 4 classes
  const TX = vt.randn([37, 1, 4, 4]);
  const TY = TX.flatten(1).narrow(1, 0, 4).argmax(1);
  vt.manualSeed(1 + RANK); // rank 1's own init (DDP copies rank 0's) and streams
  const net = new nn.Sequential(new nn.Flatten(), new nn.Linear(16, 32), new nn.ReLU(), new nn.Dropout(0.2), new nn.Linear(32, 4));
  const model = new nn.parallel.DistributedDataParallel(net);
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.2, momentum: 0.9 });
  const scheduler = new optim.lrScheduler.StepLR(optimizer, { stepSize: 1, gamma: 0.8 });
  const train = new vt.TensorDataset(X, Y);
  const trainLoader = new vt.DataLoader(train, { batchSize: 8, sampler: new vt.DistributedSampler(train, { seed: 3 }) });
  const testLoader = new vt.DataLoader(new vt.TensorDataset(TX, TY), { batchSize: 5 });
  let printed = '';
  const stream = new (await import('node:stream')).Writable({ write(c, e, cb) { printed += c; cb(); } });
  const abort = new AbortController();
  let batches = 0;
  const r = await vt.train.fit({
    model, optimizer, scheduler, trainLoader, testLoader, epochs: ${o.epochs}, logEvery: 2, outDir: ${JSON.stringify(o.out)},
    resume: ${o.resume ? 'true' : 'null'}, handleSignals: false, signal: abort.signal, stream, amp: ${JSON.stringify(o.amp ?? 'off')},
    onRecord: (rec) => {
      if (rec.kind !== 'batch') return;
      batches = rec.batch + 4 * (rec.epoch - 1);
      if (batches === ${o.die ?? -1}) process.exit(3);
      if (batches === ${o.stopAt ?? -1}) abort.abort();
    },
  });
  const out = {
    printed, interrupted: r.interrupted, epochs: r.epochs, step: r.step,
    params: [...net.parameters()].map((p) => Array.from(p.toTypedArray())),
    metrics: r.metrics.map(({ time, seconds, imagesPerSecond, ...m }) => m), // clocks differ
  };
  if (RANK === 0) {
    const ev = await vt.train.evaluate(net, testLoader);
    out.alone = { loss: ev.loss, counts: Array.from(ev.matrix.counts) };
  }
  console.log(JSON.stringify(out));
`;

async function runRanks(o: {
  out: [string, string];
  epochs: number;
  stopAt?: [number?, number?];
  resume?: boolean;
  die?: [number?, number?];
  amp?: string;
}): Promise<ChildResult[]> {
  const port = await freePort();
  return Promise.all(
    [0, 1].map((rank) =>
      runNodeChild(rankScript({ port, rank, out: o.out[rank], epochs: o.epochs, stopAt: o.stopAt?.[rank], resume: o.resume, die: o.die?.[rank], amp: o.amp }), {
        timeoutMs: 300_000,
      }),
    ),
  );
}

describe.skipIf(!distributed.isAvailable())('fit() under DistributedDataParallel (2 ranks, gloo)', () => {
  const whole: [string, string] = [join(dir, 'whole0'), join(dir, 'whole1')];
  let reference: Outcome[];

  it('rank 0 alone writes and prints; the split evaluation is the whole test set’s', async () => {
    reference = (await runRanks({ out: whole, epochs: 3 })).map((r) => result<Outcome>(r));
    const [r0, r1] = reference;
    expect(readdirSync(whole[0]).sort()).toEqual(['chart.html', 'checkpoint.pth', 'metrics.jsonl']);
    expect(existsSync(whole[1])).toBe(false); // not even made
    expect(r1.printed).toBe('');
    expect(r0.printed).toMatch(/^\[3, +4\] loss/m);
    // Both ranks end with the same weights and the same (summed) figures.
    expect(r1.params).toEqual(r0.params);
    expect(r1.metrics).toEqual(r0.metrics);
    const lines = readFileSync(join(whole[0], 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(r0.metrics.length); // 2 batch records, 1 eval, 1 epoch per epoch: not doubled
    expect(r0.metrics.filter((m) => m.kind === 'batch')).toHaveLength(6);
    // Each rank evaluated every other test sample: the summed report is that of one process over all 37.
    const last = r0.metrics.filter((m) => m.kind === 'eval').at(-1)!;
    expect(last.confusion!.flat()).toEqual(r0.alone!.counts);
    expect(last.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(37);
    expect(last.loss).toBeCloseTo(r0.alone!.loss, 6);
    expect(last.accuracy).toBeGreaterThan(40); // it learned something (4 classes)
  }, 400_000);

  it('a stop asked of one rank stops both after the same batch, and resuming continues bitwise', async () => {
    const parts: [string, string] = [join(dir, 'parts0'), join(dir, 'parts1')];
    // Rank 1 alone is asked to stop, after its 6th batch (mid-epoch 2).
    const stopped = (await runRanks({ out: parts, epochs: 3, stopAt: [undefined, 6] })).map((r) => result<Outcome>(r));
    for (const s of stopped) {
      expect(s.interrupted).toBe(true);
      expect(s.step).toBe(6);
    }
    expect(stopped[0].printed).toMatch(/Interrupted: stopping after this batch/);
    expect(existsSync(parts[1])).toBe(false);
    // Rank 1's outDir has no checkpoint: rank 0 reads it and sends it.
    const resumed = (await runRanks({ out: parts, epochs: 3, resume: true })).map((r) => result<Outcome>(r));
    expect(resumed[0].printed).toMatch(/Resuming from .*checkpoint\.pth: epoch 2, after batch 2, step 6/);
    for (const rank of [0, 1]) {
      expect(resumed[rank].params).toEqual(reference[rank].params);
      expect(resumed[rank].metrics).toEqual(reference[rank].metrics);
    }
  }, 600_000);

  it("amp 'bf16': every rank autocasts, the ranks end with the same weights, rank 0 names the precision", async () => {
    const runs = (await runRanks({ out: [join(dir, 'bf16-0'), join(dir, 'bf16-1')], epochs: 2, amp: 'bf16' })).map((r) => result<Outcome>(r));
    const [r0, r1] = runs;
    expect(r0.printed).toMatch(/^Mixed precision: bf16 autocast \(amp 'bf16': /);
    expect(r1.printed).toBe('');
    expect(r1.params).toEqual(r0.params);
    expect(r1.metrics).toEqual(r0.metrics);
    expect(r0.metrics.filter((m) => m.kind === 'epoch').map((m) => (m as { precision?: string }).precision)).toEqual(['bf16', 'bf16']);
    // bf16 trains other numbers than fp32 (the same seeds and data as the reference's first 2 epochs).
    expect(r0.metrics.filter((m) => m.kind === 'batch').map((m) => m.loss)).not.toEqual(
      reference[0].metrics
        .filter((m) => m.kind === 'batch')
        .slice(0, 4)
        .map((m) => m.loss),
    );
  }, 400_000);

  it('a rank that dies makes the other fail within seconds', async () => {
    const start = Date.now();
    const [r0, r1] = await runRanks({ out: [join(dir, 'dead0'), join(dir, 'dead1')], epochs: 3, die: [undefined, 2] });
    expect(r1.status).toBe(3);
    expect(r0.status).not.toBe(0);
    expect(r0.stderr).toMatch(/\(rank 1 exited with code 3\)/); // the store holds each exit code
    expect(Date.now() - start).toBeLessThan(60_000);
  }, 300_000);

  /** What fit(`options`) says on each of 2 ranks, with a DDP Linear(4, 2) `model` and an 8-sample `ds` in scope. */
  async function fitMessages(options: (rank: number) => string): Promise<string[]> {
    const port = await freePort();
    const code = (rank: number): string => `
      const vt = await import(LIB);
      vt.distributed.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: ${rank}, worldSize: 2, timeout: 20000 });
      const model = new vt.nn.parallel.DistributedDataParallel(new vt.nn.Linear(4, 2));
      const ds = new vt.TensorDataset(vt.randn([8, 4]), vt.zeros([8], { dtype: 'int64' }));
      try {
        await vt.train.fit({ model, optimizer: new vt.optim.SGD(model.parameters(), { lr: 0.1 }), ${options(rank)} });
        console.log(JSON.stringify('trained'));
      } catch (e) { console.log(JSON.stringify(e.message)); }
    `;
    const rs = await Promise.all([0, 1].map((rank) => runNodeChild(code(rank), { timeoutMs: 180_000 })));
    return rs.map((r) => result<string>(r));
  }

  it('refuses a training loader without a sampler under DDP', async () => {
    const messages = await fitMessages(() => 'trainLoader: new vt.DataLoader(ds, { batchSize: 4 }), epochs: 1');
    for (const m of messages) expect(m).toMatch(/under DistributedDataParallel each rank must train on its own share: give the training loader a sampler/);
  }, 200_000);

  it('refuses options that differ between ranks (an outDir on rank 0 only would wait forever in its checkpoint)', async () => {
    const messages = await fitMessages(
      (rank) =>
        `trainLoader: new vt.DataLoader(ds, { batchSize: 2, sampler: new vt.DistributedSampler(ds) }), epochs: ${rank + 1}, ` +
        `outDir: ${rank === 0 ? JSON.stringify(join(dir, 'only0')) : 'null'}, stream: new (await import('node:stream')).PassThrough()`,
    );
    for (const m of messages)
      expect(m).toBe('fit(): under DistributedDataParallel every rank must be given the same outDir, epochs (they differ between ranks)');
    const precision = await fitMessages(
      (rank) =>
        `trainLoader: new vt.DataLoader(ds, { batchSize: 2, sampler: new vt.DistributedSampler(ds) }), epochs: 1, amp: ${rank === 0 ? "'bf16'" : "'off'"}, ` +
        `stream: new (await import('node:stream')).PassThrough()`,
    );
    for (const m of precision) expect(m).toBe('fit(): under DistributedDataParallel every rank must be given the same amp (they differ between ranks)');
  }, 200_000);
});
