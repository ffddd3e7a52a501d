// DDP with the built CLI (dist/cli.js) on real separate hosts and with elastic restarts.
// - One machine (127.0.0.1), `--max-restarts`: a worker killed mid-epoch makes the launcher stop
//   the group and start it again; the run resumes from its last checkpoint with exactly the losses
//   and final weights of an uninterrupted run. With --max-restarts 0 the run ends naming the rank.
// - Two hosts, each a network namespace with its own 10.x address, joined by a veth pair shaped to
//   1 Gbit/s (test/netns.ts), one `--nnodes 2` launcher on each: the same losses and weights as
//   the two ranks on one machine; a rank killed on host 1 is named on both hosts; rank 0's host
//   cut off (link down) ends every rank with a clear error within --dist-timeout; a worker
//   killed with --max-restarts 1 on both launchers: they restart and meet again, and the run
//   equals the uninterrupted one.
// Needs root for the namespaces (it skips, saying why, where it cannot make them).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributed } from '../lib/index.js';
import { batchLosses, checkpointWeights, freePort, startBuiltCli, waitFor, workerPid } from './distributed-helpers.js';
import { type Network, makeHosts, netnsUnavailable } from './netns.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-ddp-netns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 96 images at global batch 32: 3 steps an epoch, 2 epochs; one thread per worker, so every launch layout computes the same. */
const TRAIN = [
  'train',
  '--dataset',
  'fashion-mnist',
  '--arch',
  'tutorial_bn',
  '--epochs',
  '2',
  '--limit',
  '96',
  '--test-limit',
  '20',
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
const KILLED = /^vgg-torch: rank 1 \(local rank \d, pid \d+\) was killed by SIGKILL; stopping the other ranks$/m;
const RESTARTING = /^vgg-torch: restarting this node's workers from their last checkpoint \(restart 1 of 1\)$/m;

/** The uninterrupted run every other run is compared with: two ranks on 127.0.0.1. */
const whole = join(dir, 'whole');
beforeAll(async () => {
  if (!distributed.isAvailable()) return;
  const r = await startBuiltCli([...TRAIN, '--out', whole, '--nproc-per-node', '2', '--master-port', String(await freePort())]).done;
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}, 300_000);

describe.skipIf(!distributed.isAvailable())('vgg-torch train --max-restarts (one machine)', () => {
  it('a worker killed mid-epoch: the launcher restarts the group, which resumes with the uninterrupted run’s losses and weights', async () => {
    const out = join(dir, 'restarted');
    const run = startBuiltCli([...TRAIN, '--out', out, '--nproc-per-node', '2', '--max-restarts', '1', '--master-port', String(await freePort())]);
    // Epoch 1's checkpoint is written before epoch 2's first loss line.
    await waitFor(run, /^\[2, +1\] loss/m);
    process.kill(workerPid(run.child.pid!, 1), 'SIGKILL');
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(KILLED);
    expect(r.stderr).toMatch(RESTARTING);
    expect(r.stdout).toMatch(/^Resuming from .*checkpoint\.pth: epoch 1 done, step 3$/m);
    expect(r.stdout.match(/^Finished Training/gm)).toHaveLength(1);
    expect(batchLosses(out)).toHaveLength(6);
    expect(batchLosses(out)).toEqual(batchLosses(whole));
    expect(checkpointWeights(out)).toEqual(checkpointWeights(whole));
  }, 300_000);

  it('with --max-restarts 0 the run ends, naming the rank', async () => {
    const run = startBuiltCli([
      ...TRAIN,
      '--out',
      join(dir, 'failed'),
      '--nproc-per-node',
      '2',
      '--max-restarts',
      '0',
      '--master-port',
      String(await freePort()),
    ]);
    await waitFor(run, /^\[1, +1\] loss/m);
    process.kill(workerPid(run.child.pid!, 1), 'SIGKILL');
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(KILLED);
    expect(r.stderr).not.toMatch(/restarting/);
  }, 300_000);

  it('refuses a negative --max-restarts and --dist-timeout', async () => {
    for (const [flag, value] of [
      ['--max-restarts', '-1'],
      ['--dist-timeout', '0'],
    ]) {
      const r = await startBuiltCli([...TRAIN, '--out', join(dir, 'bad'), '--nproc-per-node', '2', flag, value]).done;
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^vgg-torch: ${flag} `, 'm'));
    }
  });
});

const unavailable = distributed.isAvailable() ? netnsUnavailable() : 'no torch.distributed in this build';
if (unavailable) console.log(`ddp-netns: the two-host tests are skipped: ${unavailable}`);

describe.skipIf(unavailable !== null)('two hosts in network namespaces (vgg-torch train --nnodes 2)', () => {
  let net: Network;
  beforeAll(() => {
    net = makeHosts(2);
    console.log(`ddp-netns: hosts ${net.hosts.map((h) => `${h.ns} (${h.addr} on ${h.ifname})`).join(', ')}; each link shaped with ${net.shaping}`);
  });
  afterAll(() => net?.destroy());

  /** Starts node `i`'s launcher inside its host (node 0's address is the master's). */
  const node = (i: number, out: string, extra: string[] = []) =>
    startBuiltCli(
      [
        ...TRAIN,
        '--out',
        out,
        '--nnodes',
        '2',
        '--node-rank',
        String(i),
        '--nproc-per-node',
        '1',
        '--master-addr',
        net.hosts[0].addr,
        '--master-port',
        '29500',
        ...extra,
      ],
      net.hosts[i].spawn,
    );

  it('DDP across the hosts: the losses and final weights of the two ranks on one machine; the traffic is on the veth pair', async () => {
    const before = net.hosts.map((h) => h.bytes());
    const t0 = Date.now();
    const out = join(dir, 'hosts');
    const [n0, n1] = await Promise.all([node(0, out).done, node(1, join(dir, 'host1-out')).done]);
    const seconds = (Date.now() - t0) / 1000;
    for (const n of [n0, n1]) {
      expect(n.stderr).toBe('');
      expect(n.code).toBe(0);
    }
    expect(n0.stdout).toMatch(/^Starting 1 training process \(rank 0 of 2\), 1 thread each; rendezvous at 10\.213\.0\.1:29500$/m);
    expect(batchLosses(out)).toEqual(batchLosses(whole));
    expect(checkpointWeights(out)).toEqual(checkpointWeights(whole));
    const sent = net.hosts.map((h, i) => h.bytes().tx - before[i].tx);
    const received = net.hosts.map((h, i) => h.bytes().rx - before[i].rx);
    // What one host sends the other receives: nothing else is on the link (give or take the last
    // ACKs and FINs still in flight when the counters are read).
    expect(Math.abs(received[1] - sent[0])).toBeLessThan(64 * 1024);
    expect(Math.abs(received[0] - sent[1])).toBeLessThan(64 * 1024);
    // At least the gradients of 6 steps each way (about 110 MB of float32 for the tutorial VGG on 28×28).
    expect(Math.min(...sent)).toBeGreaterThan(6 * 100e6);
    console.log(
      `ddp-netns: 6 steps across the hosts in ${seconds.toFixed(1)} s; host 0 sent ${(sent[0] / 1e6).toFixed(0)} MB, host 1 ${(sent[1] / 1e6).toFixed(0)} MB`,
    );
  }, 300_000);

  it('a rank killed on host 1 is named on both hosts, and both launchers end', async () => {
    const n0 = node(0, join(dir, 'kill0'));
    const n1 = node(1, join(dir, 'kill1'));
    await waitFor(n0, /^\[1, +1\] loss/m);
    process.kill(workerPid(n1.child.pid!, 1), 'SIGKILL');
    const [r0, r1] = await Promise.all([n0.done, n1.done]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(KILLED);
    expect(r0.code).toBe(1);
    // Rank 0 learns it from Gloo's error, which names only the peer's address.
    expect(r0.stderr).toMatch(
      /^vgg-torch \(rank 0\): .*\[10\.213\.0\.2\]:\d+.* \(the peer at 10\.213\.0\.2 is rank 1, which went away without exiting cleanly/m,
    );
    expect(r0.stderr).toMatch(/^vgg-torch: rank 0 \(local rank 0, pid \d+\) exited with code 1; stopping the other ranks$/m);
  }, 300_000);

  it('rank 0’s host cut off (link down): every rank ends with a clear error within --dist-timeout, no hang', async () => {
    const timeout = ['--dist-timeout', '15'];
    const n0 = node(0, join(dir, 'down0'), timeout);
    const n1 = node(1, join(dir, 'down1'), timeout);
    await waitFor(n0, /^\[1, +1\] loss/m);
    net.hosts[0].link(false);
    const t0 = Date.now();
    const ended = (run: typeof n0) => run.done.then((r) => ({ ...r, seconds: (Date.now() - t0) / 1000 }));
    const [r0, r1] = await Promise.all([ended(n0), ended(n1)]);
    net.hosts[0].link(true);
    console.log(`ddp-netns: after the link went down, host 0 ended in ${r0.seconds.toFixed(1)} s, host 1 in ${r1.seconds.toFixed(1)} s (--dist-timeout 15)`);
    for (const [i, r] of [r0, r1].entries()) {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^vgg-torch \\(rank ${i}\\): .*Timed out .*no answer from the other ranks within the timeout of 15000 ms: a rank is hung, or a host is unreachable`,
          'm',
        ),
      );
      expect(r.stderr).toMatch(new RegExp(`^vgg-torch: rank ${i} \\(local rank 0, pid \\d+\\) exited with code 1; stopping the other ranks$`, 'm'));
      // The timeout, once (the store on the lost host is not waited for again), plus a busy machine's margin.
      expect(r.seconds).toBeLessThan(15 + 30);
    }
    expect(r1.stderr).toMatch(/each host reaches rank 0's host 10\.213\.0\.1/);
  }, 300_000);

  it('--max-restarts 1 on both hosts: a worker killed mid-epoch, both launchers restart, and the run equals the uninterrupted one', async () => {
    const out = join(dir, 'elastic');
    const restarts = ['--max-restarts', '1'];
    const n0 = node(0, out, restarts);
    const n1 = node(1, join(dir, 'elastic1'), restarts);
    await waitFor(n0, /^\[2, +1\] loss/m);
    process.kill(workerPid(n1.child.pid!, 1), 'SIGKILL');
    const [r0, r1] = await Promise.all([n0.done, n1.done]);
    expect(r1.stderr).toMatch(KILLED);
    for (const r of [r0, r1]) {
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(RESTARTING);
    }
    expect(r0.stdout).toMatch(/^Resuming from .*checkpoint\.pth: epoch 1 done, step 3$/m);
    expect(batchLosses(out)).toEqual(batchLosses(whole));
    expect(checkpointWeights(out)).toEqual(checkpointWeights(whole));
  }, 300_000);
});
