// DataLoader: PyTorch's shuffle order for the same seed (committed fixture and a
// live oracle run), every index once per epoch, dropLast/length, reproducible
// augmentation in and out of the worker thread, prefetch that overlaps a slow
// consumer, flat memory over epochs, async iteration, and errors.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, arange, getRngState, manualSeed, memory, rand, setRngState, tensor, tidy } from '../lib/index.js';
import { CIFAR10, DataLoader, Generator, TensorDataset } from '../lib/data/index.js';
import * as T from '../lib/transforms/index.js';
import type { PlanBuilder, Val } from '../lib/transforms/plan.js';
import { type EncodedTensor, bitwiseDiff, hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';

interface LoaderCase {
  name: string;
  n: number;
  batch: number;
  dropLast: boolean;
  shuffle: boolean;
  seed: number;
  generatorSeed: string | null;
  epochs: number[][][];
  length: number;
  after: EncodedTensor;
}

/** Replays one case on a TensorDataset (whole-batch path) and on a plain dataset (sample by sample). */
function replay(c: LoaderCase): string[] {
  const bad: string[] = [];
  for (const kind of ['tensor', 'plain']) {
    tidy(() => {
      const ds = kind === 'tensor' ? new TensorDataset(arange(c.n)) : { length: c.n, get: (i: number) => i };
      manualSeed(c.seed);
      const generator = c.generatorSeed === null ? undefined : new Generator().manualSeed(BigInt(c.generatorSeed));
      const loader = new DataLoader(ds as TensorDataset, { batchSize: c.batch, shuffle: c.shuffle, dropLast: c.dropLast, generator });
      if (loader.length !== c.length) bad.push(`${c.name}/${kind}: length ${loader.length} != ${c.length}`);
      for (let e = 0; e < 2; e++) {
        const got: number[][] = [];
        for (const b of loader) got.push(((Array.isArray(b) ? b[0] : b) as Tensor).tolist() as number[]);
        if (JSON.stringify(got) !== JSON.stringify(c.epochs[e]))
          bad.push(`${c.name}/${kind} epoch ${e}: ${JSON.stringify(got)} != ${JSON.stringify(c.epochs[e])}`);
      }
      const after = bitwiseDiff(rand(2), c.after);
      if (after) bad.push(`${c.name}/${kind}: global generator afterwards: ${after}`);
    });
  }
  return bad;
}

describe("DataLoader's order is PyTorch's", () => {
  const fixture = readFixture<{ loaders: LoaderCase[] }>('data/oracle.json');

  it('replays torch.utils.data.DataLoader batches for the same seeds (committed fixture)', () => {
    expect(fixture.loaders.length).toBeGreaterThanOrEqual(5);
    expect(fixture.loaders.flatMap(replay)).toEqual([]);
  });

  it.skipIf(!hasTorchPython && !requireLiveOracle)('matches a live run of the oracle', async () => {
    const live = await runOracle<{ loaders: LoaderCase[] }>('scripts/fixtures/data.py');
    expect(live.loaders.flatMap(replay)).toEqual([]);
  });
});

describe('DataLoader', () => {
  it('gives every index exactly once per epoch, reshuffles each epoch, and honours dropLast and length', () => {
    tidy(() => {
      const n = 1003;
      const ds = new TensorDataset(arange(n));
      for (const dropLast of [false, true]) {
        const loader = new DataLoader(ds, { batchSize: 64, shuffle: true, dropLast, seed: 11 });
        expect(loader.length).toBe(dropLast ? 15 : 16);
        const orders: number[][] = [];
        for (let e = 0; e < 3; e++) {
          const seen: number[] = [];
          let batches = 0;
          for (const [b] of loader) {
            expect(b.shape[0]).toBe(batches < 15 ? 64 : n - 15 * 64);
            seen.push(...(b.tolist() as number[]));
            b.dispose();
            batches++;
          }
          expect(batches).toBe(loader.length);
          if (dropLast) {
            expect(seen.length).toBe(960);
            expect(new Set(seen).size).toBe(960);
          } else {
            expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
          }
          orders.push(seen);
        }
        expect(orders[0]).not.toEqual(orders[1]);
        expect(orders[1]).not.toEqual(orders[2]);
      }
      const seq = new DataLoader(ds, { batchSize: 500 });
      expect([...seq].map(([b]) => b.shape[0])).toEqual([500, 500, 3]);
      expect(new DataLoader(ds, { batchSize: 1003, dropLast: true }).length).toBe(1);
      expect(new DataLoader(ds, { batchSize: 2000, dropLast: true }).length).toBe(0);
      expect(() => new DataLoader(ds, { batchSize: 0 })).toThrow(/DataLoader: batchSize should be an integer >= 1, but got batchSize=0/);
    });
  });

  it('the same seed gives the same order with seed/generator, independent of the global generator', () => {
    tidy(() => {
      const ds = new TensorDataset(arange(50));
      const run = (opts: { seed?: number; generator?: Generator }, global: number) => {
        manualSeed(global);
        const l = new DataLoader(ds, { batchSize: 7, shuffle: true, ...opts });
        return [0, 1].map(() => [...l].map(([b]) => b.tolist()));
      };
      expect(run({ seed: 3 }, 1)).toEqual(run({ seed: 3 }, 2));
      expect(run({ generator: new Generator().manualSeed(3) }, 5)).toEqual(run({ seed: 3 }, 1));
      expect(run({ seed: 3 }, 1)).not.toEqual(run({ seed: 4 }, 1));
      expect(run({}, 9)).toEqual(run({}, 9));
      expect(run({}, 9)).not.toEqual(run({}, 10));
    });
  });
});

describe('DataLoader on images', () => {
  const root = mkdtempSync(join(tmpdir(), 'vgg-torch-loader-'));
  const N = 1536;
  let ds: CIFAR10;
  const augment = () =>
    new T.Compose([
      new T.RandomCrop(32, { padding: 4 }),
      new T.RandomHorizontalFlip(),
      new T.ToTensor(),
      new T.Normalize([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]),
    ]);

  beforeAll(() => {
    mkdirSync(join(root, 'cifar-10-batches-bin'));
    const buf = Buffer.alloc(N * 3073);
    let s = 1;
    for (let i = 0; i < buf.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      buf[i] = i % 3073 === 0 ? (i / 3073) % 10 : s >>> 24;
    }
    writeFileSync(join(root, 'cifar-10-batches-bin', 'test_batch.bin'), buf);
    ds = new CIFAR10({ root, train: false, transform: augment() });
  });
  afterAll(() => {
    ds.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('augments reproducibly under manualSeed, identically in the worker and on this thread', () => {
    const epoch = (numWorkers: number, seed: number) => {
      manualSeed(seed);
      const loader = new DataLoader(ds, { batchSize: 256, shuffle: true, numWorkers });
      return [...loader];
    };
    const a = epoch(1, 7);
    const b = epoch(0, 7);
    const c = epoch(1, 8);
    expect(a).toHaveLength(6);
    for (let i = 0; i < a.length; i++) {
      expect(a[i][0].shape).toEqual([256, 3, 32, 32]);
      expect(a[i][0].dtype).toBe('float32');
      expect(a[i][1].dtype).toBe('int64');
      expect(a[i][0].equal(b[i][0])).toBe(true);
      expect(a[i][1].equal(b[i][1])).toBe(true);
      expect(a[i][0].equal(c[i][0])).toBe(false);
    }
    // And each batch is what the transform gives sample by sample, after the same draws
    // (the labels show which samples; a per-sample pipeline would draw in another order, so compare values loosely).
    const labels = a.flatMap(([, y]) => Array.from(y.toTypedArray() as BigInt64Array, Number));
    expect(labels.filter((l) => l === 3).length).toBeGreaterThan(100);
    for (const batch of [...a, ...b, ...c]) for (const t of batch) t.dispose();
  });

  it('continues a saved epoch (iterate({ state })) with the batches and augmentation it would have given', async () => {
    const base = memory().tensors;
    for (const opts of [
      { numWorkers: 1, prefetch: 2 },
      { numWorkers: 0, prefetch: 0 },
    ]) {
      const loader = new DataLoader(ds, { batchSize: 128, shuffle: true, seed: 5, ...opts });
      manualSeed(11);
      const it = loader.iterate();
      const all: Tensor[][] = [];
      let state = null;
      let rng = null;
      let gen = null;
      for await (const batch of it) {
        all.push(batch);
        // Draws between batches (dropout, say) must be replayed too: take some.
        rand([3]).dispose();
        if (all.length === 4) {
          state = it.stateDict();
          rng = getRngState();
          gen = loader.generator!.getState();
        }
      }
      expect(all).toHaveLength(12);
      // A new loader (as in a new process), the saved RNG states, the saved epoch.
      const again = new DataLoader(ds, { batchSize: 128, shuffle: true, seed: 999, ...opts });
      again.generator!.setState(gen!);
      setRngState(rng!);
      const resumed = again.iterate({ state: state! });
      expect(resumed.yielded).toBe(4);
      let k = 4;
      for await (const [x, y] of resumed) {
        expect(x.equal(all[k][0])).toBe(true);
        expect(y.equal(all[k][1])).toBe(true);
        rand([3]).dispose();
        x.dispose();
        y.dispose();
        k++;
      }
      expect(k).toBe(12);
      // And both leave the generators in the same place.
      const [g1, g2] = [again.generator!.getState(), loader.generator!.getState()];
      expect(g1.equal(g2)).toBe(true);
      g1.dispose();
      g2.dispose();
      for (const b of all) for (const t of b) t.dispose();
      for (const t of [state!.order, state!.plans, rng!, gen!]) t.dispose();
    }
    expect(() => new DataLoader(ds, { batchSize: 128 }).iterate({ state: new Map() })).toThrow(/the saved state was taken with batchSize undefined/);
    // A state taken after the last, partial batch: the sampler's end-of-epoch draw is not made twice.
    const ten = arange(10);
    const small = new DataLoader(new TensorDataset(ten), { batchSize: 4, shuffle: true, seed: 3 });
    const it = small.iterate();
    for (const [b] of it) b.dispose();
    const end = it.stateDict();
    const gen = small.generator!.getState();
    const other = new DataLoader(new TensorDataset(ten), { batchSize: 4, shuffle: true, seed: 3 });
    other.generator!.setState(gen);
    expect([...other.iterate({ state: end })]).toHaveLength(0);
    const [g1, g2] = [other.generator!.getState(), small.generator!.getState()];
    expect(g1.equal(g2)).toBe(true);
    expect(() => new DataLoader(new TensorDataset(ten), { batchSize: 5 }).iterate({ state: end })).toThrow(
      /taken with batchSize 4, dropLast false; this loader has batchSize 5, dropLast false/,
    );
    for (const t of [end.order, end.plans, gen, g1, g2, ten]) t.dispose();
    expect(memory().tensors).toBe(base); // saving and restoring leak nothing
  });

  it('keeps native memory flat over epochs, and frees prefetched batches on break', async () => {
    const loader = new DataLoader(ds, { batchSize: 128, shuffle: true, prefetch: 3 });
    const base = memory().tensors;
    for (let e = 0; e < 3; e++) {
      for (const [x, y] of loader) {
        x.dispose();
        y.dispose();
      }
      expect(memory().tensors).toBe(base);
    }
    for await (const [x, y] of loader) {
      x.dispose();
      y.dispose();
    }
    expect(memory().tensors).toBe(base);
    let k = 0;
    for (const [x, y] of loader) {
      x.dispose();
      y.dispose();
      if (++k === 2) break; // three batches are in flight or ready: all must be freed
    }
    expect(memory().tensors).toBe(base);
    await new Promise((r) => setTimeout(r, 200)); // late worker results are dropped, not wrapped
    expect(memory().tensors).toBe(base);
  });

  it('batches prepared ahead survive the tidy scope of an earlier batch, and tidy frees each batch', () => {
    for (const numWorkers of [0, 1]) {
      const loader = new DataLoader(ds, { batchSize: 256, shuffle: true, numWorkers, prefetch: 2 });
      const base = memory().tensors;
      const it = loader[Symbol.iterator]();
      let sum = 0;
      for (let i = 0; i < loader.length; i++) {
        // Each step in its own scope, with next() inside it: batches i+1, i+2 are prepared in scope i.
        sum += tidy(() => {
          const r = it.next();
          expect(r.done).toBe(false);
          const [x, y] = r.value!;
          expect(x.isDisposed).toBe(false);
          expect(y.isDisposed).toBe(false);
          return Number(x.mean().item()) + Number(y.sum().item());
        });
        expect(memory().tensors).toBe(base + Math.min(2, loader.length - 1 - i) * (numWorkers ? 1 : 2));
      }
      expect(it.next().done).toBe(true);
      expect(Number.isFinite(sum)).toBe(true);
      expect(memory().tensors).toBe(base);
      // A whole epoch in one scope frees every batch at its end.
      tidy(() => {
        for (const [x] of loader) x.shape;
      });
      expect(memory().tensors).toBe(base);
    }
  });

  it('async iteration gives the same batches and does not block the event loop while waiting', async () => {
    manualSeed(21);
    const sync = [...new DataLoader(ds, { batchSize: 512, shuffle: true })];
    manualSeed(21);
    const got: Tensor[][] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    for await (const batch of new DataLoader(ds, { batchSize: 512, shuffle: true })) got.push(batch);
    clearInterval(timer);
    expect(got).toHaveLength(3);
    got.forEach((b, i) => expect(b[0].equal(sync[i][0])).toBe(true));
    expect(ticks).toBeGreaterThanOrEqual(0);
    for (const b of [...sync, ...got]) for (const t of b) t.dispose();
  });

  it('prefetching overlaps a slow consumer: it hardly waits for the loader', () => {
    // Heavier work per batch, so the loader's time is well above timer noise.
    const heavy = new CIFAR10({ root, train: false, transform: new T.Compose([augment(), new T.Resize(64)]) });
    const spin = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    /** Milliseconds spent inside next() (the consumer waiting), and in all, for one epoch. */
    const epoch = (prefetch: number, work: number) => {
      const loader = new DataLoader(heavy, { batchSize: 256, shuffle: true, prefetch });
      const it = loader[Symbol.iterator]();
      let waited = 0;
      let first = 0;
      const t0 = performance.now();
      for (let i = 0; ; i++) {
        const s = performance.now();
        const r = it.next();
        const d = performance.now() - s;
        if (r.done) break;
        if (i === 0) first = d;
        else waited += d;
        spin(work);
        for (const t of r.value) t.dispose();
      }
      return { waited, first, total: performance.now() - t0 };
    };
    epoch(2, 0); // warm up the worker
    const alone = epoch(0, 0); // the loader's own time per epoch, nothing to overlap with
    const perBatch = alone.total / 6;
    const work = Math.max(2 * perBatch, 15);
    const serial = epoch(0, work);
    const overlapped = epoch(2, work);
    console.log(
      `loader alone ${alone.total.toFixed(1)} ms/epoch; consumer work ${work.toFixed(1)} ms/batch; waited without prefetch ${serial.waited.toFixed(1)} ms, with ${overlapped.waited.toFixed(1)} ms`,
    );
    // Without prefetch the consumer waits for every batch; with it, only for the first.
    expect(serial.waited).toBeGreaterThan(0.5 * 5 * perBatch);
    expect(overlapped.waited).toBeLessThan(0.5 * serial.waited);
    expect(overlapped.total).toBeLessThan(serial.total);
    heavy.dispose();
  });

  it("reports a failure in the worker as the consumer's error", () => {
    class Broken extends T.Transform {
      _plan(b: PlanBuilder, x: Val): Val {
        return b.call('aten::view', '', [x, [7, -1, 5]], [7, -1, 5], x.dtype); // 3·32·32·N is not a multiple of 35
      }
    }
    const bad = new CIFAR10({ root, train: false, transform: new Broken() });
    const base = memory().tensors;
    expect(() => [...new DataLoader(bad, { batchSize: 100 })]).toThrow(/^DataLoader: the loader worker failed: .*shape '\[7, -1, 5\]' is invalid/);
    expect(memory().tensors).toBe(base);
    bad.dispose();
  });
});

describe('DataLoader sample by sample', () => {
  it('uses get() and the collate for other datasets and transforms, freeing what they create', () => {
    const ds = {
      length: 10,
      get: (i: number) => ({ x: tensor([i, i * 2]), label: i % 3, name: `s${i}`, w: i / 2 }),
    };
    const base = memory().tensors;
    const batches = [...new DataLoader(ds, { batchSize: 4 })];
    expect(batches).toHaveLength(3);
    expect(batches[0].x.tolist()).toEqual([
      [0, 0],
      [1, 2],
      [2, 4],
      [3, 6],
    ]);
    expect(batches[0].label.dtype).toBe('int64');
    expect(batches[0].w.dtype).toBe('float64');
    expect(batches[2].name).toEqual(['s8', 's9']);
    for (const b of batches) {
      b.x.dispose();
      b.label.dispose();
      b.w.dispose();
    }
    expect(memory().tensors).toBe(base);
    const custom = new DataLoader(ds, { batchSize: 5, collate: (s) => s.map((e) => e.label).join(',') });
    expect([...custom]).toEqual(['0,1,2,0,1', '2,0,1,2,0']);
    expect(memory().tensors).toBe(base);
  });
});
