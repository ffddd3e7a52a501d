// Shared by the distributed tests (not a test file itself).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { train } from '../lib/index.js';
import { MetricsLog } from '../lib/train/metricsLog.js';
import { PYTHON, type StartedCli, bytesOf, collect } from './helpers.js';

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * What a Python rank's environment needs on this machine's torch. From 2.4 Python's TCPStore
 * asks for the libuv server by default, and a libtorch built without libuv (Debian's) refuses it:
 * a user sets USE_LIBUV=0 there, as PyTorch's own error says. vgg-torch decides this by itself.
 */
export function pythonRankEnv(): Record<string, string> {
  rankEnv ??= probeRankEnv();
  return rankEnv;
}
let rankEnv: Record<string, string> | undefined;
function probeRankEnv(): Record<string, string> {
  const probe = spawnSync(
    PYTHON,
    [
      '-W',
      'ignore',
      '-c',
      `
import datetime, torch.distributed as d
try:
    d.TCPStore('127.0.0.1', 0, 1, True, timeout=datetime.timedelta(seconds=5), use_libuv=True)
    print('libuv')
except TypeError:
    print('no option')   # before 2.2: no use_libuv at all
except RuntimeError as e:
    print('no libuv' if 'libuv' in str(e) else 'error: ' + str(e))
`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return probe.stdout.trim() === 'no libuv' ? { USE_LIBUV: '0' } : {};
}

/** The built command (dist/cli.js, as users run it; vitest's global setup builds it). */
export const DIST_CLI = new URL('../dist/cli.js', import.meta.url).pathname;

/** Starts `node dist/cli.js ...args` here, or through `spawnIn` (e.g. inside a network namespace). */
export function startBuiltCli(
  args: readonly string[],
  spawnIn: (command: string, args: readonly string[], opts: { stdio: ['ignore', 'pipe', 'pipe']; env: Record<string, string> }) => ReturnType<typeof spawn> = (
    c,
    a,
    o,
  ) => spawn(c, a, { ...o, env: { ...process.env, ...o.env } }),
): StartedCli {
  return collect(spawnIn(process.execPath, [DIST_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { FORCE_COLOR: '0' } }));
}

/** Resolves once `pattern` shows in the run's stdout (rejects if the run ends first). */
export function waitFor(run: StartedCli, pattern: RegExp): Promise<void> {
  return new Promise<void>((res, rej) => {
    const timer = setInterval(() => {
      if (pattern.test(run.output())) {
        clearInterval(timer);
        res();
      }
    }, 20);
    run.done.then(() => {
      clearInterval(timer);
      rej(new Error(`the run ended before ${pattern} showed: ${run.output()}${run.errors()}`));
    }, rej);
  });
}

/** The pid of the launcher's worker with this RANK. */
export function workerPid(launcher: number, rank: number): number {
  const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(launcher)], { encoding: 'utf8' })
    .trim()
    .split(/\s+/)
    .map(Number);
  const pid = pids.find((p) => readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').includes(`RANK=${rank}`));
  if (!pid) throw new Error(`no worker with RANK=${rank} among ${pids.join(', ')}`);
  return pid;
}

/** The per-batch losses a `vgg-torch train` run wrote to `out`/metrics.jsonl. */
export const batchLosses = (out: string): number[] =>
  MetricsLog.read(join(out, 'metrics.jsonl'))
    .filter((r) => r.kind === 'batch')
    .map((r) => r.loss);

/** Each weight of `out`/checkpoint.pth, as raw bytes (for bitwise comparison). */
export function checkpointWeights(out: string): Record<string, string> {
  const ck = train.loadCheckpoint(join(out, 'checkpoint.pth'));
  try {
    return Object.fromEntries([...ck.model].map(([k, t]) => [k, bytesOf(t).toString('base64')]));
  } finally {
    ck.dispose();
  }
}
