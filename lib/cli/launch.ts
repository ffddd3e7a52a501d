// `vgg-torch train --nproc-per-node n`: the launcher (torchrun's role) that
// starts this machine's training processes, each running `train` with the
// other flags and torchrun's environment.
import { availableParallelism } from 'node:os';
import { launch } from '../distributed/run.js';
import { type Values, UsageError, int } from './args.js';

/** The flags of `train` that start the launcher. */
export const LAUNCH_FLAGS = ['nproc-per-node', 'nnodes', 'node-rank', 'master-addr', 'master-port', 'max-restarts'] as const;

/** Starts this machine's workers and waits for them; resolves to the run's exit code. */
export async function launchTraining(argv: string[], v: Values, batchSize: number): Promise<number> {
  const nproc = int(v, 'nproc-per-node', 1);
  const nnodes = int(v, 'nnodes', 1);
  const nodeRank = int(v, 'node-rank', 0, 0);
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank must be below --nnodes (${nnodes}), got ${nodeRank}`);
  const masterPort = int(v, 'master-port', 29500, 1, 65535);
  const maxRestarts = int(v, 'max-restarts', 0, 0);
  const world = nproc * nnodes;
  if (batchSize % world !== 0) throw new UsageError(`--batch-size ${batchSize} does not split over ${world} processes: pass a multiple of ${world}`);
  const script = process.argv[1];
  if (!script) throw new Error('cannot tell which script to start the workers with (process.argv[1] is empty)');
  const workerArgv = withoutFlags(argv, LAUNCH_FLAGS);
  const threads = v.threads === undefined ? Math.max(1, Math.floor(availableParallelism() / nproc)) : int(v, 'threads', 1);
  if (v.threads === undefined) workerArgv.push('--threads', String(threads));
  const first = nodeRank * nproc;
  console.log(
    `Starting ${nproc} training process${nproc > 1 ? 'es' : ''} (rank${nproc > 1 ? `s ${first}–${first + nproc - 1}` : ` ${first}`} of ${world}), ` +
      `${threads} thread${threads > 1 ? 's' : ''} each; rendezvous at ${(v['master-addr'] as string | undefined) ?? '127.0.0.1'}:${masterPort}`,
  );
  const result = await launch(script, ['train', ...workerArgv], {
    nprocPerNode: nproc,
    nnodes,
    nodeRank,
    masterAddr: v['master-addr'] as string | undefined,
    masterPort,
    threads,
    maxRestarts,
  });
  return result.exitCode;
}

/** `argv` without `flags` (as `--flag value` or `--flag=value`). */
function withoutFlags(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (flags.some((f) => a === `--${f}`)) i++;
    else if (!flags.some((f) => a.startsWith(`--${f}=`))) out.push(a);
  }
  return out;
}
