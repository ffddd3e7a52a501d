// torch.distributed (torch/distributed/distributed_c10d.py) on libtorch's c10d:
// a TCPStore rendezvous, ProcessGroupGloo (ProcessGroupNCCL where libtorch has
// it) and the collectives, each synchronous or as a promise that a libuv worker
// resolves once the c10d Work is done, so the event loop keeps running.
// The store keys follow Python's init_process_group, so a Python rank
// (torch.distributed with gloo) can be a member of the same group.
import { native, type Handle } from '../native.js';
import { tensor } from '../tensor/creation.js';
import { type Tensor, handleOf, wrap } from '../tensor/tensor.js';
import { checkInt, checkOneOf, checkOptions, describe } from '../utils/args.js';

/** Reductions for {@link allReduce}: `ReduceOp.SUM` etc. in PyTorch. */
export type ReduceOp = 'sum' | 'avg' | 'product' | 'min' | 'max';
const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'product', 'min', 'max'];

/** Backends: `'gloo'` (CPU) always, `'nccl'` where libtorch was built with it. */
export type Backend = 'gloo' | 'nccl';

/** PyTorch's `default_pg_timeout`: 30 minutes. */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

const INSTALL_HINT =
  'torch.distributed is not available in this build of vgg-torch: its Gloo backend needs the Gloo headers and library. ' +
  'Install them (Debian/Ubuntu: sudo apt-get install libgloo-dev, or run scripts/setup.sh) and rebuild the addon (npm rebuild vgg-torch).';

/** A process group: the default one from {@link initProcessGroup}, or one from {@link newGroup}. */
export class ProcessGroup {
  /** @internal */
  constructor(readonly id: number) {}
  /** This process's rank in the group. */
  rank(): number {
    return native.distGroupRank(this.id);
  }
  /** The number of ranks in the group. */
  size(): number {
    return native.distGroupSize(this.id);
  }
}

let defaultGroup: ProcessGroup | null = null;
let defaultBackend: Backend | null = null;

/** Whether this build has torch.distributed (the Gloo backend). */
export const isAvailable = (): boolean => native.distIsAvailable();
/** Whether the NCCL backend was compiled in (a CUDA libtorch with NCCL). */
export const isNcclAvailable = (): boolean => native.distNcclAvailable();
/** Whether {@link initProcessGroup} has run (and {@link destroyProcessGroup} has not). */
export const isInitialized = (): boolean => defaultGroup !== null;

export interface InitProcessGroupOptions {
  /** `'gloo'` (default) or `'nccl'`. */
  backend?: Backend;
  /**
   * `'env://'` (default): `MASTER_ADDR`, `MASTER_PORT`, and `RANK`, `WORLD_SIZE` unless given
   * here, as torchrun and `vgg-torch train --nproc-per-node` set them; or `'tcp://host:port'`.
   */
  initMethod?: string;
  rank?: number;
  worldSize?: number;
  /** Milliseconds for the rendezvous and for every collective (default 30 minutes, as PyTorch). */
  timeout?: number;
}

function envInt(name: string, given: number | undefined): number {
  if (given !== undefined) return given;
  const v = process.env[name];
  if (v === undefined || v === '')
    throw new Error(
      `initProcessGroup(): environment variable ${name} is not set (env:// needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, as torchrun sets them)`,
    );
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`initProcessGroup(): environment variable ${name} must be an integer, got '${v}'`);
  return n;
}

/**
 * `torch.distributed.init_process_group`: joins (rank 0: hosts) the TCPStore rendezvous and creates
 * the default process group. Blocks until all `worldSize` ranks have arrived or `timeout` passes.
 */
export function initProcessGroup(options: InitProcessGroupOptions = {}): ProcessGroup {
  const fn = 'initProcessGroup()';
  checkOptions(fn, options, ['backend', 'initMethod', 'rank', 'worldSize', 'timeout']);
  const backend = options.backend ?? 'gloo';
  checkOneOf(fn, 'backend', backend, ['gloo', 'nccl'] as const);
  if (!isAvailable()) throw new Error(INSTALL_HINT);
  if (backend === 'nccl' && !isNcclAvailable()) throw new Error(`${fn}: the nccl backend is not available (this libtorch was built without NCCL); use 'gloo'`);
  if (defaultGroup) throw new Error(`${fn}: the default process group is already initialized (call destroyProcessGroup() first)`);
  const initMethod = options.initMethod ?? 'env://';
  if (typeof initMethod !== 'string') throw new TypeError(`${fn}: initMethod must be a string, got ${describe(initMethod)}`);
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  checkInt(fn, 'timeout', timeout, 1);
  let host: string;
  let port: number;
  let rank: number;
  let worldSize: number;
  if (initMethod === 'env://') {
    rank = envInt('RANK', options.rank);
    worldSize = envInt('WORLD_SIZE', options.worldSize);
    const addr = process.env.MASTER_ADDR;
    if (!addr) throw new Error(`${fn}: environment variable MASTER_ADDR is not set (env:// needs MASTER_ADDR and MASTER_PORT)`);
    host = addr;
    port = envInt('MASTER_PORT', undefined);
  } else {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(initMethod);
    if (!m) throw new RangeError(`${fn}: initMethod must be 'env://' or 'tcp://host:port', got '${initMethod}'`);
    host = m[1].replace(/^\[|\]$/g, '');
    port = Number(m[2]);
    if (options.rank === undefined || options.worldSize === undefined) throw new TypeError(`${fn}: tcp:// needs rank and worldSize`);
    rank = options.rank;
    worldSize = options.worldSize;
  }
  checkInt(fn, 'worldSize', worldSize, 1);
  checkInt(fn, 'rank', rank, 0);
  if (rank >= worldSize) throw new RangeError(`${fn}: rank ${rank} is not below worldSize ${worldSize}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`${fn}: port must be in 1..65535, got ${port}`);
  defaultGroup = new ProcessGroup(native.distInit(backend, host, port, rank, worldSize, timeout));
  defaultBackend = backend;
  process.on('exit', markExit);
  return defaultGroup;
}

/** Notes this rank's exit code in the store, so that the others' failures can name it. */
const markExit = (code: number): void => native.distMarkExit(code);

/**
 * @internal `e` with what is known of the ranks it comes from appended (a DDP backward's
 * error is Gloo's bare "Connection closed by peer"): those that exited, the rank at the peer
 * address Gloo names, or after a timeout what to check. Collectives' own errors already say it.
 */
export function explainFailure(e: unknown): unknown {
  if (!(e instanceof Error) || !defaultGroup || e.message.startsWith('collective failed')) return e;
  const note = native.distExitNote(e.message);
  if (note) e.message += note;
  return e;
}

function world(fn: string): ProcessGroup {
  if (!defaultGroup) throw new Error(`${fn}: the default process group is not initialized (call initProcessGroup() first)`);
  return defaultGroup;
}

/** `torch.distributed.destroy_process_group`: drops every group and the store. */
export function destroyProcessGroup(): void {
  if (!isAvailable()) return;
  native.distDestroy();
  process.off('exit', markExit);
  defaultGroup = null;
  defaultBackend = null;
}

/** This process's rank in `group` (default: the world). */
export const getRank = (group?: ProcessGroup): number => (group ?? world('getRank()')).rank();
/** The number of ranks in `group` (default: the world). */
export const getWorldSize = (group?: ProcessGroup): number => (group ?? world('getWorldSize()')).size();
/** The backend of the default group. */
export const getBackend = (): Backend => {
  world('getBackend()');
  return defaultBackend!;
};

/**
 * `torch.distributed.new_group(ranks)`: every rank of the world must call it, in the same order
 * as the other groups. Returns null on a rank that is not in `ranks` (Python's NON_GROUP_MEMBER).
 */
export function newGroup(ranks?: readonly number[]): ProcessGroup | null {
  const fn = 'newGroup()';
  const w = world(fn);
  const list = ranks ?? Array.from({ length: w.size() }, (_, i) => i);
  if (!Array.isArray(list)) throw new TypeError(`${fn}: ranks must be an array of integers, got ${describe(list)}`);
  list.forEach((r, i) => checkInt(fn, `ranks[${i}]`, r, 0));
  const id = native.distNewGroup([...list]);
  return id < 0 ? null : new ProcessGroup(id);
}

/** Options every collective takes. */
export interface CollectiveOptions {
  /** Default: the world. */
  group?: ProcessGroup;
}

function groupOf(fn: string, options: CollectiveOptions | undefined, extra: readonly string[]): ProcessGroup {
  checkOptions(fn, options, ['group', ...extra]);
  const g = options?.group;
  if (g === undefined) return world(fn);
  if (!(g instanceof ProcessGroup)) throw new TypeError(`${fn}: group must be a ProcessGroup, got ${describe(g)}`);
  world(fn);
  return g;
}

export interface AllReduceOptions extends CollectiveOptions {
  /** Default `'sum'`. Gloo in libtorch 1.13 has no AVG: `'avg'` is a sum divided by the group size. */
  op?: ReduceOp;
}

function allReduceArgs(fn: string, tensor: Tensor, options?: AllReduceOptions): [number, Handle, ReduceOp] {
  const g = groupOf(fn, options, ['op']);
  const op = options?.op ?? 'sum';
  checkOneOf(fn, 'op', op, REDUCE_OPS);
  return [g.id, handleOf(tensor, 'tensor'), op];
}

/** `dist.all_reduce(tensor, op)`: reduces `tensor` in place across the group. */
export function allReduce(tensor: Tensor, options?: AllReduceOptions): void {
  native.distAllReduce(...allReduceArgs('allReduce()', tensor, options), false);
}
/** {@link allReduce} resolved off the main thread; do not read or write `tensor` until it settles. */
export async function allReduceAsync(tensor: Tensor, options?: AllReduceOptions): Promise<void> {
  await native.distAllReduce(...allReduceArgs('allReduceAsync()', tensor, options), true);
}

export interface BroadcastOptions extends CollectiveOptions {
  /** The rank (in the group) whose tensor everyone receives. Default 0. */
  src?: number;
}

function broadcastArgs(fn: string, tensor: Tensor, options?: BroadcastOptions): [number, Handle, number] {
  const g = groupOf(fn, options, ['src']);
  const src = options?.src ?? 0;
  checkInt(fn, 'src', src, 0);
  return [g.id, handleOf(tensor, 'tensor'), src];
}

/**
 * @internal {@link allReduce} of plain numbers (float64; counts, sums, flags):
 * every rank calls it with as many values and gets the reduced ones back.
 */
export function allReduceNumbers(values: readonly number[], options?: AllReduceOptions): number[] {
  const t = tensor([...values], { dtype: 'float64' });
  try {
    allReduce(t, options);
    return Array.from(t.toTypedArray() as Float64Array);
  } finally {
    t.dispose();
  }
}

/** `dist.broadcast(tensor, src)`: copies rank `src`'s tensor into every rank's `tensor`. */
export function broadcast(tensor: Tensor, options?: BroadcastOptions): void {
  native.distBroadcast(...broadcastArgs('broadcast()', tensor, options), false);
}
/** {@link broadcast} resolved off the main thread. */
export async function broadcastAsync(tensor: Tensor, options?: BroadcastOptions): Promise<void> {
  await native.distBroadcast(...broadcastArgs('broadcastAsync()', tensor, options), true);
}

/** `dist.all_gather`: every rank's `tensor`, in rank order (new tensors). */
export function allGather(tensor: Tensor, options?: CollectiveOptions): Tensor[] {
  const g = groupOf('allGather()', options, []);
  return (native.distAllGather(g.id, handleOf(tensor, 'tensor'), false) as Handle[]).map(wrap);
}
/** {@link allGather} resolved off the main thread. */
export async function allGatherAsync(tensor: Tensor, options?: CollectiveOptions): Promise<Tensor[]> {
  const g = groupOf('allGatherAsync()', options, []);
  return (await native.distAllGather(g.id, handleOf(tensor, 'tensor'), true)).map(wrap);
}

export interface ReduceScatterOptions extends CollectiveOptions {
  op?: Exclude<ReduceOp, 'avg'>;
}

function reduceScatterArgs(fn: string, output: Tensor, inputs: readonly Tensor[], options?: ReduceScatterOptions): [number, Handle, Handle[], string] {
  const g = groupOf(fn, options, ['op']);
  const op = options?.op ?? 'sum';
  checkOneOf(fn, 'op', op, ['sum', 'product', 'min', 'max'] as const);
  if (!Array.isArray(inputs)) throw new TypeError(`${fn}: inputs must be an array of tensors, got ${describe(inputs)}`);
  return [g.id, handleOf(output, 'output'), inputs.map((t, i) => handleOf(t, `inputs[${i}]`)), op];
}

/**
 * `dist.reduce_scatter(output, inputs)`: rank i receives the reduction of every rank's `inputs[i]`.
 * The gloo backend has reduce_scatter only in newer libtorch releases (not in 1.13 nor 2.6): there it throws an Error naming the version.
 */
export function reduceScatter(output: Tensor, inputs: readonly Tensor[], options?: ReduceScatterOptions): void {
  native.distReduceScatter(...reduceScatterArgs('reduceScatter()', output, inputs, options), false);
}
/** {@link reduceScatter} resolved off the main thread. */
export async function reduceScatterAsync(output: Tensor, inputs: readonly Tensor[], options?: ReduceScatterOptions): Promise<void> {
  await native.distReduceScatter(...reduceScatterArgs('reduceScatterAsync()', output, inputs, options), true);
}

/** `dist.barrier()`: returns once every rank of the group has entered it. */
export function barrier(options?: CollectiveOptions): void {
  native.distBarrier(groupOf('barrier()', options, []).id, false);
}
/** {@link barrier} resolved off the main thread. */
export async function barrierAsync(options?: CollectiveOptions): Promise<void> {
  await native.distBarrier(groupOf('barrierAsync()', options, []).id, true);
}

/** @internal The group a DDP or sampler uses: the given one or the world. */
export function resolveGroup(fn: string, group: ProcessGroup | undefined): ProcessGroup {
  if (group !== undefined && !(group instanceof ProcessGroup)) throw new TypeError(`${fn}: processGroup must be a ProcessGroup, got ${describe(group)}`);
  return group ?? world(fn);
}
