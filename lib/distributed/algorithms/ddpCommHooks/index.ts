// torch.distributed.algorithms.ddp_comm_hooks.
export * as defaultHooks from './defaultHooks.js';
export * as powerSGD from './powerSGD.js';
