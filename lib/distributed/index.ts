// torch.distributed.
export {
  ProcessGroup,
  isAvailable,
  isNcclAvailable,
  isInitialized,
  initProcessGroup,
  destroyProcessGroup,
  getRank,
  getWorldSize,
  getBackend,
  newGroup,
  allReduce,
  allReduceAsync,
  broadcast,
  broadcastAsync,
  allGather,
  allGatherAsync,
  reduceScatter,
  reduceScatterAsync,
  barrier,
  barrierAsync,
  DEFAULT_TIMEOUT_MS,
} from './distributedC10d.js';
export type {
  ReduceOp,
  Backend,
  InitProcessGroupOptions,
  CollectiveOptions,
  AllReduceOptions,
  BroadcastOptions,
  ReduceScatterOptions,
} from './distributedC10d.js';
export { launch, watchLauncher } from './run.js';
export type { LaunchOptions, LaunchResult, WorkerExit } from './run.js';
export * as algorithms from './algorithms/index.js';
