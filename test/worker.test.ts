// The addon in several worker_threads at once: per-environment state, no shared JS references.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { manualSeed, randn } from '../lib/index.js';

const addon = fileURLToPath(new URL('../build/Release/vgg_torch.node', import.meta.url));

// Plain JS against the addon itself: what any worker-based loader would do.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const n = require(workerData.addon);
const randn = n.op('aten::randn', '');
const add = n.op('aten::add', 'Tensor');
const sum = n.op('aten::sum', '');
n.manualSeed(7);
let total = 0;
for (let i = 0; i < 2000; i++) {
  const a = n.call(randn, [16, 16]);
  const b = n.call(add, a, a, 1);
  const s = n.call(sum, b);
  total += n.item(s);
  n.dispose(a); n.dispose(b); n.dispose(s);
}
const leftover = n.call(randn, [1000]); // left alive on purpose: worker teardown must free it
parentPort.postMessage({ memory: n.memory(), ok: true });
`;

function runWorker(): Promise<{ memory: { tensors: number }; ok: boolean }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { addon } });
    w.once('message', (m) => {
      void w.terminate().then(() => resolve(m));
    });
    w.once('error', reject);
  });
}

describe('worker threads', () => {
  it('loads in four workers at once, each with its own handle table', async () => {
    const results = await Promise.all([runWorker(), runWorker(), runWorker(), runWorker()]);
    for (const r of results) {
      expect(r.ok).toBe(true);
      expect(r.memory.tensors).toBe(1);
    }
    // The main thread is unaffected and still works.
    manualSeed(7);
    const x = randn(2, 2);
    expect(x.shape).toEqual([2, 2]);
    x.dispose();
  });
});
