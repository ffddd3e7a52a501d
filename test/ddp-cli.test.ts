// `vgg-torch train --nproc-per-node 2` end to end on Fashion-MNIST: the launcher starts two
// DDP workers with torchrun's environment; rank 0 alone prints and writes --out; the
// checkpoint's single-process evaluation is the one training reported; Ctrl-C on the launcher
// stops both ranks with a checkpoint that --resume continues with the same losses; the same run
// as two "machines" (--nnodes 2) on 127.0.0.1 gives the same losses; a rank killed with
// SIGKILL is named by the launcher, which stops the other.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributed } from '../lib/index.js';
import { MetricsLog } from '../lib/train/metricsLog.js';
import { freePort, waitFor, workerPid } from './distributed-helpers.js';
import { type CliRun, runCli as cli, startCli as start } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-ddp-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One thread per worker in every run, so that runs with other launch layouts compute the same.
const train = [
  'train',
  '--dataset',
  'fashion-mnist',
  '--arch',
  'tutorial_bn',
  '--epochs',
  '2',
  '--limit',
  '128',
  '--test-limit',
  '50',
  '--batch-size',
  '32',
  '--lr',
  '0.01',
  '--log-every',
  '1',
  '--augment',
  '--threads',
  '1',
];
const losses = (out: string) =>
  MetricsLog.read(join(out, 'metrics.jsonl'))
    .filter((r) => r.kind === 'batch')
    .map((r) => r.loss);

describe.skipIf(!distributed.isAvailable())('vgg-torch train --nproc-per-node (DDP launcher)', () => {
  const whole = join(dir, 'whole');
  let first: CliRun;

  beforeAll(async () => {
    first = await cli([...train, '--out', whole, '--nproc-per-node', '2', '--master-port', String(await freePort())]);
  }, 600_000);

  it('starts two ranks; rank 0 alone prints and writes; the report is the checkpoint’s own evaluation', async () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Starting 2 training processes \(ranks 0–1 of 2\), 1 thread each; rendezvous at 127\.0\.0\.1:\d+$/m);
    expect(first.stdout).toContain('128 images, 2 epochs, batch 32 (16 on each of 2 processes)');
    expect(first.stdout.match(/^\[1, +1\] loss/gm)).toHaveLength(1);
    expect(first.stdout.match(/^Finished Training/gm)).toHaveLength(1);
    expect(readdirSync(whole).sort()).toEqual(['chart.html', 'checkpoint.pth', 'metrics.jsonl']);
    expect(losses(whole)).toHaveLength(8); // 128 images / batch 32, 2 epochs
    // One process evaluating the checkpoint finds what the two ranks reported together.
    const last = MetricsLog.read(join(whole, 'metrics.jsonl'))
      .filter((x) => x.kind === 'eval')
      .at(-1)!;
    const ev = await cli(['eval', join(whole, 'checkpoint.pth'), '--limit', '50']);
    expect(ev.code).toBe(0);
    expect(ev.stdout).toContain(`Accuracy of the network on the 50 test images: ${last.accuracy.toFixed(1)} %  (loss ${last.loss.toFixed(4)})`);
    const rows = last.confusion.map((row, i) => `${last.classes[i]} +${row.join(' +')}$`);
    for (const row of rows) expect(ev.stdout).toMatch(new RegExp(`^${row.replace(/[/]/g, '\\/')}`, 'm'));
  });

  it('Ctrl-C on the launcher stops every rank with a checkpoint; --resume continues with the same losses', async () => {
    const parts = join(dir, 'parts');
    const run = start([...train, '--out', parts, '--nproc-per-node', '2', '--master-port', String(await freePort())]);
    await waitFor(run, /^\[2, +1\] loss/m);
    run.child.kill('SIGINT');
    const stopped = await run.done;
    expect(stopped.stderr).toBe('');
    expect(stopped.code).toBe(130);
    expect(stopped.stdout).toMatch(/Checkpoint saved to .*checkpoint\.pth; continue with resume/);
    const resumed = await cli([...train, '--out', parts, '--resume', '--nproc-per-node', '2', '--master-port', String(await freePort())]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/Resuming from .*checkpoint\.pth: epoch 2, after batch \d/);
    expect(losses(parts)).toEqual(losses(whole));
  }, 600_000);

  it('two machines (--nnodes 2) on 127.0.0.1: the same losses; machine 1 writes nothing', async () => {
    const port = String(await freePort());
    const node = (i: number) =>
      cli([...train, '--out', join(dir, `node${i}`), '--nnodes', '2', '--node-rank', String(i), '--nproc-per-node', '1', '--master-port', port]);
    const [n0, n1] = await Promise.all([node(0), node(1)]);
    for (const n of [n0, n1]) {
      expect(n.stderr).toBe('');
      expect(n.code).toBe(0);
    }
    expect(n0.stdout).toMatch(/^Starting 1 training process \(rank 0 of 2\)/m);
    // Machine 1 prints its launcher's line and nothing else.
    expect(n1.stdout).toMatch(/^Starting 1 training process \(rank 1 of 2\), 1 thread each; rendezvous at 127\.0\.0\.1:\d+\n$/);
    expect(existsSync(join(dir, 'node1'))).toBe(false);
    expect(losses(join(dir, 'node0'))).toEqual(losses(whole));
  }, 600_000);

  it('a rank killed with SIGKILL is named, and the launcher stops the other', async () => {
    const run = start([...train, '--out', join(dir, 'killed'), '--nproc-per-node', '2', '--master-port', String(await freePort())]);
    await waitFor(run, /^\[1, +1\] loss/m);
    const t0 = Date.now();
    process.kill(workerPid(run.child.pid!, 1), 'SIGKILL');
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vgg-torch: rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL; stopping the other ranks$/m);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 300_000);

  it('refuses a batch that does not split, and a node rank outside --nnodes', async () => {
    const odd = await cli([...train, '--batch-size', '33', '--nproc-per-node', '2']);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(/^vgg-torch: --batch-size 33 does not split over 2 processes: pass a multiple of 2$/m);
    const rank = await cli([...train, '--nnodes', '2', '--node-rank', '2', '--nproc-per-node', '1']);
    expect(rank.code).toBe(2);
    expect(rank.stderr).toMatch(/^vgg-torch: --node-rank must be below --nnodes \(2\), got 2$/m);
  });
});
