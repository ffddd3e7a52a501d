// vgg-torch: PyTorch's VGG family in TypeScript on the real libtorch.
//
// The package is assembled here: a short top level (tensors, autograd, the
// runtime, autocast, the VGG models and weights, load/save, data), and PyTorch's
// namespaces (nn, F/functional, optim, amp, jit, onnx, quantization, distributed,
// hub, transforms, train). One public name per thing.
import { setInferenceCompiler } from './nn/modules/module.js';
import { inferenceCompiler } from './jit/predict.js';

// Module.predict and forwardAsync compile through lib/jit, which sits above nn.
setInferenceCompiler(inferenceCompiler);

export { Tensor, cat, stack, where, broadcastTensors } from './tensor/tensor.js';
export type { Device, IndexSpec, Scalar, Slice, TensorOptions, Reduction } from './tensor/tensor.js';
export {
  tensor,
  fromBuffer,
  zeros,
  ones,
  empty,
  full,
  arange,
  linspace,
  randn,
  rand,
  randint,
  eye,
  zerosLike,
  onesLike,
  randnLike,
  emptyLike,
} from './tensor/creation.js';
export type { TensorData } from './tensor/creation.js';
// torch.* functions generated from libtorch's schemas (those not exported by hand above).
export * from './tensor/generated/functions.js';
export type { MemoryFormat, GeneratorLike } from './tensor/dispatch.js';
export { ops } from './tensor/ops.js';
export type { OpOverload, OpOverloadPacket } from './tensor/ops.js';
export type { DType } from './tensor/dtype.js';
export { tidy, keep, dispose, memory } from './tensor/scope.js';
export {
  noGrad,
  enableGrad,
  isGradEnabled,
  setGradEnabled,
  inferenceMode,
  isInferenceModeEnabled,
} from './autograd.js';
export { autocast, isAutocastEnabled, getAutocastDtype } from './amp/autocastMode.js';
export type { AutocastDeviceType, AutocastOptions } from './amp/autocastMode.js';
export * as amp from './amp/index.js';
export {
  manualSeed,
  initialSeed,
  getRngState,
  setRngState,
  getNumThreads,
  setNumThreads,
  cuda,
  backends,
  version,
} from './runtime.js';
export type { Bf16Support } from './runtime.js';
export * as functional from './nn/functional.js';
export * as F from './nn/functional.js';
export * as nn from './nn/index.js';
export {
  VGG,
  makeLayers,
  cfgs,
  vgg11,
  vgg11_bn,
  vgg13,
  vgg13_bn,
  vgg16,
  vgg16_bn,
  vgg19,
  vgg19_bn,
  vggTutorial,
} from './models/vgg.js';
export type { VGGConfig, VGGOptions, VGGFactoryOptions } from './models/vgg.js';
export {
  Weights,
  VGG11_Weights,
  VGG11_BN_Weights,
  VGG13_Weights,
  VGG13_BN_Weights,
  VGG16_Weights,
  VGG16_BN_Weights,
  VGG19_Weights,
  VGG19_BN_Weights,
} from './models/weights.js';
export type { WeightsMeta } from './models/weights.js';
export { IMAGENET_CATEGORIES } from './models/imagenetCategories.js';
export { createFeatureExtractor, getGraphNodeNames, FeatureExtractor } from './models/featureExtraction.js';
export type { FeatureExtractorOptions } from './models/featureExtraction.js';
export { gradCam } from './models/gradCam.js';
export type { GradCamOptions, GradCamResult } from './models/gradCam.js';
export * as hub from './hub/index.js';
export * as jit from './jit/index.js';
export * as quantization from './ao/quantization/index.js';
export * as optim from './optim/index.js';
export { load, save, loadSafetensors, loadSafetensorsMetadata, saveSafetensors, OrderedDict, FormatError } from './serialization/index.js';
export type { LoadOptions, MapLocation, SaveOptions, PathOrBuffer, Tuple } from './serialization/index.js';
export * as transforms from './transforms/index.js';
export { ImageClassification } from './transforms/presets.js';
export type { ClassificationPreset } from './transforms/presets.js';
export { decodeImage } from './io/image.js';
export {
  DataLoader,
  EpochIterator,
  defaultCollate,
  TensorDataset,
  Subset,
  randomSplit,
  Generator,
  CIFAR10,
  MNIST,
  FashionMNIST,
  ImageFolder,
  IMG_EXTENSIONS,
  parseIdx,
  closeLoaderWorkers,
  DistributedSampler,
} from './data/index.js';
export type {
  Dataset,
  DataLoaderOptions,
  LoaderIterState,
  Sampler,
  Collated,
  ImageDatasetOptions,
  CIFAR10Options,
  MNISTOptions,
  ImageFolderOptions,
  IdxFile,
  DistributedSamplerOptions,
} from './data/index.js';
export { download } from './utils/download.js';
export { RemovableHandle } from './utils/hooks.js';
export type { DownloadOptions, DownloadResult, ProgressCallback } from './utils/download.js';
export { makeGrid, saveImage } from './io/grid.js';
export type { MakeGridOptions } from './io/grid.js';
export * as distributed from './distributed/index.js';
export * as train from './train/index.js';
export * as onnx from './onnx/index.js';
export { serve } from './serve/index.js';
export type { ServeOptions, ServeHandle } from './serve/index.js';
