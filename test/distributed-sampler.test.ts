// data.DistributedSampler against torch.utils.data.DistributedSampler (live oracle).
import { describe, expect, it } from 'vitest';
import { DataLoader, DistributedSampler, TensorDataset, arange, manualSeed, rand } from '../lib/index.js';
import { hasTorchPython, python, requireLiveOracle } from './helpers.js';

const CASES: { n: number; replicas: number; shuffle: boolean; seed: number; dropLast: boolean; epoch: number }[] = [
  { n: 10, replicas: 3, shuffle: true, seed: 0, dropLast: false, epoch: 0 },
  { n: 10, replicas: 3, shuffle: true, seed: 0, dropLast: false, epoch: 1 },
  { n: 10, replicas: 3, shuffle: true, seed: 7, dropLast: true, epoch: 2 },
  { n: 10, replicas: 4, shuffle: false, seed: 0, dropLast: false, epoch: 0 },
  { n: 3, replicas: 8, shuffle: true, seed: 1, dropLast: false, epoch: 0 }, // padding longer than the dataset
  { n: 1000, replicas: 2, shuffle: true, seed: 42, dropLast: false, epoch: 5 },
  { n: 1001, replicas: 4, shuffle: true, seed: 3, dropLast: true, epoch: 3 },
];

describe.skipIf(!hasTorchPython && !requireLiveOracle)('DistributedSampler', () => {
  it("gives PyTorch's indices for every rank (shuffle, seed + epoch, padding, dropLast)", async () => {
    const r = await python(
      [
        '-c',
        `
import json, sys, torch
from torch.utils.data import DistributedSampler
out = []
for c in json.loads(sys.argv[1]):
    per = []
    for rank in range(c['replicas']):
        s = DistributedSampler(range(c['n']), num_replicas=c['replicas'], rank=rank, shuffle=c['shuffle'], seed=c['seed'], drop_last=c['dropLast'])
        s.set_epoch(c['epoch'])
        per.append([list(s), len(s)])
    out.append(per)
print(json.dumps(out))
`,
        JSON.stringify(CASES),
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const want = JSON.parse(r.stdout) as [number[], number][][];
    CASES.forEach((c, i) => {
      for (let rank = 0; rank < c.replicas; rank++) {
        const s = new DistributedSampler({ length: c.n }, { numReplicas: c.replicas, rank, shuffle: c.shuffle, seed: c.seed, dropLast: c.dropLast });
        s.setEpoch(c.epoch);
        expect([[...s], s.length], `case ${i} rank ${rank}`).toEqual(want[i][rank]);
      }
    });
  }, 60_000);

  it("as a DataLoader's sampler: PyTorch's batches per rank and epoch, and the global RNG left where PyTorch leaves it", async () => {
    const r = await python(
      [
        '-c',
        `
import json, torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
torch.manual_seed(5)
ds = TensorDataset(torch.arange(23))
out = []
for rank in range(2):
    s = DistributedSampler(ds, num_replicas=2, rank=rank, seed=9)
    loader = DataLoader(ds, batch_size=4, sampler=s)
    for epoch in range(2):
        s.set_epoch(epoch)
        out.append([b[0].tolist() for b in loader])
print(json.dumps({'batches': out, 'len': len(loader), 'after': torch.rand(2).tolist()}))
`,
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const want = JSON.parse(r.stdout) as { batches: number[][][]; len: number; after: number[] };
    manualSeed(5);
    const ds = new TensorDataset(arange(23));
    const got: number[][][] = [];
    let len = 0;
    for (let rank = 0; rank < 2; rank++) {
      const sampler = new DistributedSampler(ds, { numReplicas: 2, rank, seed: 9 });
      const loader = new DataLoader(ds, { batchSize: 4, sampler });
      len = loader.length;
      for (let epoch = 0; epoch < 2; epoch++) {
        sampler.setEpoch(epoch);
        const batches: number[][] = [];
        for (const [b] of loader) {
          batches.push(Array.from(b.toTypedArray() as BigInt64Array, Number));
          b.dispose();
        }
        got.push(batches);
      }
    }
    expect(got).toEqual(want.batches);
    expect(len).toBe(want.len);
    const after = rand([2]);
    expect(Array.from(after.toTypedArray() as Float32Array)).toEqual(want.after.map(Math.fround));
    after.dispose();
    ds.tensors.forEach((t) => t.dispose());
  }, 60_000);

  it('a sampler excludes shuffle, and its indices must lie in the dataset', () => {
    const ds = { length: 4, get: (i: number) => i };
    expect(() => new DataLoader(ds, { sampler: [0, 1], shuffle: true })).toThrow(/sampler option is mutually exclusive with shuffle/);
    expect(() => new DataLoader(ds, { sampler: 3 as never })).toThrow(/sampler must be an iterable of indices with a length, got 3/);
    expect(() => [...new DataLoader(ds, { sampler: [0, 4] })]).toThrow(/the sampler gave index 4, outside the dataset's \[0, 4\)/);
    expect([...new DataLoader(ds, { sampler: [3, 1, 2], batchSize: 2 })].map((b) => Array.from((b as any).toTypedArray(), Number))).toEqual([[3, 1], [2]]);
  });

  it('refuses a bad rank, and needs a process group or explicit numReplicas/rank', () => {
    expect(() => new DistributedSampler({ length: 4 }, { numReplicas: 2, rank: 2 })).toThrow(/invalid rank 2/);
    expect(() => new DistributedSampler({ length: 4 })).toThrow(/not initialized/);
    expect(() => new DistributedSampler({ length: 4 }, { numReplicas: 2, rank: 0, drop_last: true } as never)).toThrow(/unknown option 'drop_last'/);
  });
});
