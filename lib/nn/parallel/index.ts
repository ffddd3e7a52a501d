// torch.nn.parallel.
export { DistributedDataParallel } from './distributed.js';
export type { DistributedDataParallelOptions } from './distributed.js';
