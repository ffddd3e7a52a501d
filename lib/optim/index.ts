// torch.optim: optimizers and learning-rate schedulers.
export {
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamsInput,
  type StateValue,
  type OptimizerStateDict,
  type OptimizerStateDictInput,
} from './optimizer.js';
export { SGD, type SGDOptions, type SGDParamGroup } from './sgd.js';
export { Adam, type AdamOptions, type AdamParamGroup } from './adam.js';
export { AdamW } from './adamw.js';
export { LBFGS, type LBFGSOptions, type LBFGSParamGroup } from './lbfgs.js';
/** `torch.optim.lr_scheduler` (the schedulers are also exported directly from `optim`). */
export * as lrScheduler from './lrScheduler.js';
export {
  LRScheduler,
  StepLR,
  MultiStepLR,
  ExponentialLR,
  CosineAnnealingLR,
  LinearLR,
  OneCycleLR,
  SequentialLR,
  type SchedulerOptions,
  type StepLROptions,
  type MultiStepLROptions,
  type ExponentialLROptions,
  type CosineAnnealingLROptions,
  type LinearLROptions,
  type OneCycleLROptions,
  type OneCyclePhase,
  type SequentialLROptions,
} from './lrScheduler.js';
