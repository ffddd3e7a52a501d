// torch.utils.data and torchvision.datasets: datasets, the DataLoader, a seeded
// Generator, and classification metrics.
export { TensorDataset, Subset, randomSplit } from './dataset.js';
export type { Dataset, ImageDatasetOptions } from './dataset.js';
export { Generator } from '../generator.js';
export { DataLoader, EpochIterator, defaultCollate } from './dataloader.js';
export type { DataLoaderOptions, Collated, LoaderIterState, Sampler } from './dataloader.js';
export { CIFAR10 } from './cifar.js';
export type { CIFAR10Options } from './cifar.js';
export { MNIST, FashionMNIST, parseIdx } from './mnist.js';
export type { MNISTOptions, IdxFile } from './mnist.js';
export { ImageFolder, IMG_EXTENSIONS } from './folder.js';
export type { ImageFolderOptions } from './folder.js';
export { closeLoaderWorkers } from './pool.js';
export { DistributedSampler } from './distributed.js';
export type { DistributedSamplerOptions } from './distributed.js';
