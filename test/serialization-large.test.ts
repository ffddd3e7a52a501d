// A VGG16-sized checkpoint (528 MiB of float32), generated now by PyTorch in the
// legacy format (like the official vgg16-397923af.pth) and the zip format: load()
// must return every value exactly, hold the data in memory once, and take about
// as long as torch.load. Needs /usr/bin/python3 with torch, ~1.2 GB of disk and
// ~3 GB of memory; VGG_TORCH_SKIP_LARGE=1 skips it. Runs in its own process
// (vitest forks per file), so the RSS it measures is its own.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, dispose, tidy } from '../lib/index.js';
import { load } from '../lib/serialization/index.js';
import { tensorBytes } from '../lib/serialization/bytes.js';
import { hasTorchPython, python, requireLiveOracle } from './helpers.js';

interface Meta {
  keys: string[];
  shapes: number[][];
  sha256: string[];
  bytes: number;
  torch_load_seconds: { legacy: number; zip: number };
}

const enoughRoom = (() => {
  try {
    const fs = statfsSync(tmpdir());
    return fs.bavail * fs.bsize > 2.5e9 && freemem() > 3e9;
  } catch {
    return false;
  }
})();
const run = (hasTorchPython || requireLiveOracle) && process.env.VGG_TORCH_SKIP_LARGE !== '1' && (enoughRoom || requireLiveOracle);

/** Runs `fn` while a worker thread samples the process's RSS every millisecond; returns its peak. */
async function withPeakRss<T>(fn: () => T): Promise<{ value: T; peak: number }> {
  const shared = new Float64Array(new SharedArrayBuffer(16));
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const out = new Float64Array(workerData);
     const sample = () => { const r = process.memoryUsage.rss(); if (r > out[0]) out[0] = r; out[1]++; };
     sample();
     setInterval(sample, 1);`,
    { eval: true, workerData: shared.buffer },
  );
  while (shared[1] < 2) await new Promise((r) => setTimeout(r, 5));
  const value = fn();
  const samples = shared[1];
  while (shared[1] < samples + 2) await new Promise((r) => setTimeout(r, 2));
  await worker.terminate();
  return { value, peak: shared[0] };
}

function sha256(t: Tensor): string {
  // In slices, so hashing never holds a second copy of a 400 MB weight.
  const h = createHash('sha256');
  const flat = t.reshape(-1);
  const n = flat.numel();
  const step = 1 << 22;
  for (let i = 0; i < n; i += step) {
    const part = flat.narrow(0, i, Math.min(step, n - i));
    h.update(tensorBytes(part));
    part.dispose();
  }
  flat.dispose();
  return h.digest('hex');
}

describe.skipIf(!run)('load(): a VGG16-sized checkpoint (528 MiB)', () => {
  let dir = '';
  let meta: Meta;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vgg-torch-large-'));
    const r = await python(['scripts/fixtures/pth_large.py', dir], { timeoutMs: 280_000 });
    if (r.status !== 0) throw new Error(`pth_large.py failed: ${r.stderr}`);
    meta = JSON.parse(readFileSync(join(dir, 'vgg16.json'), 'utf8')) as Meta;
  }, 300_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const format of ['legacy', 'zip'] as const) {
    it(`${format}: exact values, data held once, about torch.load's time`, async () => {
      // Let V8 free the previous test's buffers (their release reaches V8 a turn after dispose()).
      for (let i = 0; i < 2; i++) {
        await new Promise((r) => setTimeout(r, 10));
        (globalThis as { gc?: () => void }).gc?.();
      }
      const before = process.memoryUsage();
      const t0 = performance.now();
      const { value: sd, peak } = await withPeakRss(() => load<Map<string, Tensor>>(join(dir, `vgg16-${format}.pth`)));
      const seconds = (performance.now() - t0) / 1000;
      const after = process.memoryUsage();
      try {
        // Memory: the tensors' data lives in JS-allocated buffers, once; nothing else of that size.
        const held = after.arrayBuffers - before.arrayBuffers;
        expect(held).toBeGreaterThan(meta.bytes * 0.99);
        expect(held).toBeLessThan(meta.bytes * 1.02 + 16e6);
        // A second copy at any moment would push the peak to twice the data.
        expect(peak - before.rss).toBeLessThan(meta.bytes * 1.25 + 100e6);
        // Time: generous, to catch a slow path, not to benchmark (bench/load.ts does that).
        expect(seconds).toBeLessThan(Math.max(4 * meta.torch_load_seconds[format], meta.torch_load_seconds[format] + 3));
        expect([...sd.keys()]).toEqual(meta.keys);
        tidy(() => {
          meta.keys.forEach((k, i) => {
            const t = sd.get(k)!;
            expect(t.shape, k).toEqual(meta.shapes[i]);
            expect(t.dtype).toBe('float32');
            expect(sha256(t), k).toBe(meta.sha256[i]);
          });
        });
        console.log(
          `vgg16 ${format}: load ${seconds.toFixed(2)} s (torch.load ${meta.torch_load_seconds[format].toFixed(2)} s), ` +
            `peak RSS +${((peak - before.rss) / 2 ** 20).toFixed(0)} MiB for ${(meta.bytes / 2 ** 20).toFixed(0)} MiB of data`,
        );
      } finally {
        dispose(sd);
      }
    }, 120_000);
  }
});
