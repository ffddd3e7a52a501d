// data.DistributedSampler against torch.utils.data.DistributedSampler (live oracle).
import { describe, expect, it } from 'vitest';
import { DistributedSampler } from '../lib/index.js';
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
    const r = await python(['-c', `
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
`, JSON.stringify(CASES)], { timeoutMs: 60_000 });
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

  it('refuses a bad rank, and needs a process group or explicit numReplicas/rank', () => {
    expect(() => new DistributedSampler({ length: 4 }, { numReplicas: 2, rank: 2 })).toThrow(/invalid rank 2/);
    expect(() => new DistributedSampler({ length: 4 })).toThrow(/not initialized/);
    expect(() => new DistributedSampler({ length: 4 }, { numReplicas: 2, rank: 0, drop_last: true } as never)).toThrow(/unknown option 'drop_last'/);
  });
});
