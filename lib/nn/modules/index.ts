// The layers, one file per PyTorch module file (torch/nn/modules/__init__.py): Conv2d in conv.ts as
// in conv.py, BatchNorm2d and SyncBatchNorm in batchnorm.ts, the pools in pooling.ts, Linear and Identity in
// linear.ts, ReLU in activation.ts, Dropout in dropout.ts, Flatten in flatten.ts,
// CrossEntropyLoss in loss.ts; Module and Parameter in module.ts, Sequential and ModuleList in
// container.ts.
export { Module, Parameter } from './module.js';
export type { LoadResult } from './module.js';
export { Sequential, ModuleList } from './container.js';
export { Conv2d } from './conv.js';
export type { Conv2dOptions, PaddingMode } from './conv.js';
export { BatchNorm2d, SyncBatchNorm } from './batchnorm.js';
export type { BatchNorm2dOptions, SyncBatchNormOptions } from './batchnorm.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from './pooling.js';
export { Identity, Linear } from './linear.js';
export type { LinearLayerOptions } from './linear.js';
export { ReLU } from './activation.js';
export { Dropout } from './dropout.js';
export { Flatten } from './flatten.js';
export type { FlattenOptions } from './flatten.js';
export { CrossEntropyLoss } from './loss.js';
export type { FactoryOptions, Pair } from './utils.js';
