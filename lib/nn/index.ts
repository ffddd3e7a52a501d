// torch.nn: modules, layers, init and functional.
export { Module, Parameter, Sequential, ModuleList } from './module.js';
export type { LoadResult } from './module.js';
export {
  Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, ReLU, Dropout, Flatten, Identity, CrossEntropyLoss,
} from './layers.js';
export type { Conv2dOptions, BatchNorm2dOptions, FactoryOptions } from './layers.js';
export type { MaxPool2dOptions, AvgPool2dOptions } from './functional.js';
export * as init from './init.js';
export * as functional from './functional.js';
export { summary } from './summary.js';
export type { ModelSummary, LayerSummary } from './summary.js';
