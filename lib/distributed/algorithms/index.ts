// torch.distributed.algorithms.
export * as ddpCommHooks from './ddpCommHooks/index.js';
