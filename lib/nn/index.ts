// torch.nn: modules, layers, init and functional.
export {
  Module,
  Parameter,
  Sequential,
  ModuleList,
  Conv2d,
  BatchNorm2d,
  SyncBatchNorm,
  MaxPool2d,
  AvgPool2d,
  AdaptiveAvgPool2d,
  Linear,
  ReLU,
  Dropout,
  Flatten,
  Identity,
  CrossEntropyLoss,
} from './modules/index.js';
export type { LoadResult, Conv2dOptions, BatchNorm2dOptions, SyncBatchNormOptions, FactoryOptions } from './modules/index.js';
export type { MaxPool2dOptions, AvgPool2dOptions } from './functional.js';
export * as init from './init.js';
export * as functional from './functional.js';
export { summary } from './summary.js';
export type { ModelSummary, LayerSummary } from './summary.js';
export * as parallel from './parallel/index.js';
