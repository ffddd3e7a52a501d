// vgg-torch: PyTorch's VGG family in TypeScript on the real libtorch.
export { Tensor, cat, stack, where, broadcastTensors } from './tensor/tensor.js';
export type { Device, IndexSpec, Scalar, Slice, TensorOptions, Reduction } from './tensor/tensor.js';
export {
  tensor, fromBuffer, zeros, ones, empty, full, arange, linspace, randn, rand, randint, eye,
  zerosLike, onesLike, randnLike, emptyLike,
} from './tensor/creation.js';
export type { TensorData } from './tensor/creation.js';
export type { DType } from './tensor/dtype.js';
export { tidy, keep, dispose, memory } from './tensor/scope.js';
export {
  noGrad, enableGrad, isGradEnabled, setGradEnabled, inferenceMode, isInferenceModeEnabled,
} from './autograd.js';
export {
  manualSeed, initialSeed, getRngState, setRngState, getNumThreads, setNumThreads, cuda, backends,
} from './runtime.js';
export * as functional from './nn/functional.js';
export * as F from './nn/functional.js';
export * as nn from './nn/index.js';
export { summary } from './nn/summary.js';
export {
  VGG, makeLayers, cfgs, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, vggTutorial,
} from './models/vgg.js';
export type { VGGConfig, VGGOptions, VGGFactoryOptions } from './models/vgg.js';
