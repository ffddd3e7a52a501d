// torch.distributed.run (torchrun): starts this node's worker processes with
// the environment `initProcessGroup({ initMethod: 'env://' })` reads, forwards
// Ctrl-C to them, and when one fails, names it and stops the rest; with
// `maxRestarts`, then starts them again (torchrun's --max-restarts).
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { checkInt, checkOptions, describe } from '../utils/args.js';

export interface LaunchOptions {
  /** Worker processes on this node. */
  nprocPerNode: number;
  /** Nodes (machines) in the run; default 1. */
  nnodes?: number;
  /** This node's index, 0 … nnodes - 1; default 0. Node 0 hosts the store. */
  nodeRank?: number;
  /** Node 0's address, as the other nodes reach it; default 127.0.0.1. */
  masterAddr?: string;
  /** The store's port on node 0; default 29500, as torchrun's. */
  masterPort?: number;
  /** Intra-op threads per worker (`OMP_NUM_THREADS`); default floor(cores / nprocPerNode), at least 1. */
  threads?: number;
  /** Where failures are reported; default `process.stderr`. */
  stderr?: NodeJS.WritableStream;
  /** After a worker fails, how long the others get to stop on their own before they are killed (ms); default 10,000. */
  graceMs?: number;
  /**
   * torchrun's `--max-restarts`: when a worker fails, stop this node's workers and start them
   * again, up to this many times (default 0). The workers see the attempt in
   * `TORCHELASTIC_RESTART_COUNT` and resume from their last checkpoint; on several nodes each
   * node's launcher restarts its own workers, and they meet again at node 0's store.
   */
  maxRestarts?: number;
}

/** What became of the workers. */
export interface LaunchResult {
  /** Each worker's exit, by rank. */
  workers: WorkerExit[];
  /** The launcher's exit code: the first failed worker's (1 if a signal killed it), else 130 if the workers were interrupted, else 0. */
  exitCode: number;
  /** How many times the workers were started again after a failure. */
  restarts: number;
}

/** What became of one worker. */
export interface WorkerExit {
  rank: number;
  localRank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `node [execArgv] script ...args` as `nprocPerNode` workers with
 * torchrun's environment: `RANK`, `LOCAL_RANK`, `WORLD_SIZE`,
 * `LOCAL_WORLD_SIZE`, `GROUP_RANK`, `MASTER_ADDR`, `MASTER_PORT` and
 * `OMP_NUM_THREADS`. Ctrl-C (SIGINT) and SIGTERM are passed on to every worker
 * once per signal (the workers run in their own process groups, so a
 * terminal's Ctrl-C reaches them only this way); a worker whose launcher dies
 * gets SIGTERM. When a worker fails, the others are killed after `graceMs` if
 * they have not stopped by then; with `maxRestarts`, all of them are then
 * started again (see {@link LaunchOptions.maxRestarts}). Resolves once every
 * worker of the last start has exited.
 */
export function launch(script: string, args: readonly string[], options: LaunchOptions): Promise<LaunchResult> {
  const fn = 'launch()';
  checkOptions(fn, options, ['nprocPerNode', 'nnodes', 'nodeRank', 'masterAddr', 'masterPort', 'threads', 'stderr', 'graceMs', 'maxRestarts'], {
    required: ['nprocPerNode'],
  });
  const nproc = options.nprocPerNode;
  const nnodes = options.nnodes ?? 1;
  const nodeRank = options.nodeRank ?? 0;
  const port = options.masterPort ?? 29500;
  const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / nproc));
  checkInt(fn, 'nprocPerNode', nproc, 1);
  checkInt(fn, 'nnodes', nnodes, 1);
  checkInt(fn, 'nodeRank', nodeRank, 0);
  checkInt(fn, 'masterPort', port, 1);
  checkInt(fn, 'threads', threads, 1);
  if (nodeRank >= nnodes) throw new RangeError(`${fn}: nodeRank ${nodeRank} is not below nnodes ${nnodes}`);
  if (port > 65535) throw new RangeError(`${fn}: masterPort must be in 1..65535, got ${port}`);
  const addr = options.masterAddr ?? '127.0.0.1';
  if (typeof addr !== 'string' || addr === '') throw new TypeError(`${fn}: masterAddr must be a host name or address, got ${describe(addr)}`);
  const stderr = options.stderr ?? process.stderr;
  const graceMs = options.graceMs ?? 10_000;

  const maxRestarts = options.maxRestarts ?? 0;
  checkInt(fn, 'maxRestarts', maxRestarts, 0);
  const group = { nproc, nnodes, nodeRank, addr, port, threads, stderr, graceMs, maxRestarts };
  return (async () => {
    for (let restarts = 0; ; restarts++) {
      const attempt = await startWorkers(script, args, group, restarts);
      // A stop asked by Ctrl-C / SIGTERM ends the run even when a worker failed on the way out.
      const restartable = attempt.failed && !attempt.interrupted;
      if (!restartable || restarts >= maxRestarts) {
        if (restartable && maxRestarts > 0) {
          stderr.write(`vgg-torch: no restarts left (${maxRestarts} used); giving up\n`);
        }
        return { workers: attempt.workers, exitCode: attempt.exitCode, restarts };
      }
      stderr.write(`vgg-torch: restarting this node's workers from their last checkpoint (restart ${restarts + 1} of ${maxRestarts})\n`);
    }
  })();
}

/** One start of this node's workers, until every one has exited. */
function startWorkers(
  script: string,
  args: readonly string[],
  o: {
    nproc: number;
    nnodes: number;
    nodeRank: number;
    addr: string;
    port: number;
    threads: number;
    stderr: NodeJS.WritableStream;
    graceMs: number;
    maxRestarts: number;
  },
  restartCount: number,
): Promise<{ workers: WorkerExit[]; exitCode: number; failed: boolean; interrupted: boolean }> {
  const { nproc, nnodes, nodeRank, addr, port, threads, stderr, graceMs } = o;
  const children: ChildProcess[] = [];
  for (let local = 0; local < nproc; local++) {
    const env = {
      ...process.env,
      RANK: String(nodeRank * nproc + local),
      LOCAL_RANK: String(local),
      WORLD_SIZE: String(nnodes * nproc),
      LOCAL_WORLD_SIZE: String(nproc),
      GROUP_RANK: String(nodeRank),
      MASTER_ADDR: addr,
      MASTER_PORT: String(port),
      OMP_NUM_THREADS: String(threads),
      TORCHELASTIC_RESTART_COUNT: String(restartCount),
      TORCHELASTIC_MAX_RESTARTS: String(o.maxRestarts),
    };
    // detached: a process group of its own, so that Ctrl-C reaches it once, from here. The IPC
    // channel tells it when this launcher is gone.
    children.push(spawn(process.execPath, [...process.execArgv, script, ...args], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true }));
  }

  return new Promise((resolve) => {
    const exits: WorkerExit[] = [];
    let failure: WorkerExit | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    let interrupted = false;
    const alive = (): ChildProcess[] => children.filter((c) => c.exitCode === null && c.signalCode === null);
    const forward = (signal: NodeJS.Signals): void => {
      for (const c of alive()) c.kill(signal);
    };
    const interrupt = (signal: NodeJS.Signals): void => {
      interrupted = true;
      forward(signal);
    };
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
    children.forEach((child, local) => {
      const rank = nodeRank * nproc + local;
      const exited = (code: number | null, signal: NodeJS.Signals | null): void => {
        const exit = { rank, localRank: local, pid: child.pid, code, signal };
        exits.push(exit);
        if (!stopped(code) && !failure) {
          failure = exit;
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          stderr.write(`vgg-torch: rank ${rank} (local rank ${local}, pid ${child.pid}) ${how}; stopping the other ranks\n`);
          killTimer = setTimeout(() => forward('SIGKILL'), graceMs);
        }
        if (exits.length === children.length) {
          process.off('SIGINT', interrupt);
          process.off('SIGTERM', interrupt);
          if (killTimer) clearTimeout(killTimer);
          const exitCode = failure ? (failure.code ?? 1) : exits.some((e) => e.code !== 0) ? 130 : 0;
          resolve({ workers: exits.sort((a, b) => a.rank - b.rank), exitCode, failed: failure !== null, interrupted });
        }
      };
      child.once('exit', exited);
      child.once('error', (e) => {
        stderr.write(`vgg-torch: could not start rank ${rank}: ${e.message}\n`);
        if (child.exitCode === null) exited(1, null);
      });
    });
  });
}

/** Finished, or stopped by Ctrl-C / SIGTERM (130, 143). */
const stopped = (code: number | null): boolean => code === 0 || code === 130 || code === 143;

/**
 * In a worker started by {@link launch}: when the launcher dies (the IPC
 * channel closes), stop as on SIGTERM. No-op in any other process.
 */
export function watchLauncher(): void {
  if (!process.send || !process.channel) return;
  process.channel.unref(); // the channel must not keep the worker alive
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
