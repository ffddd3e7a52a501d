// The datasets of `train` and `eval` (CIFAR-10, Fashion-MNIST, an image
// folder) and their transforms for a model.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CIFAR10 } from '../data/cifar.js';
import { type Dataset, Subset } from '../data/dataset.js';
import { ImageFolder } from '../data/folder.js';
import { FashionMNIST } from '../data/mnist.js';
import * as T from '../transforms/transforms.js';
import type { ModelMeta } from './models.js';

export const DATASETS = ['cifar10', 'fashion-mnist', 'folder'];
/** Image side of the built-in datasets (folder images are resized to the model's size). */
export const NATIVE_SIZE: Record<string, number> = { cifar10: 32, 'fashion-mnist': 28 };

/** The transforms of a dataset for a model: augmentation (training only), size, channels, normalization. */
export function transformFor(meta: ModelMeta, nativeSize: number | null, nativeChannels: number, augment: boolean): T.Compose {
  const steps: T.Transform[] = [];
  if (nativeSize === null) steps.push(new T.Resize(meta.imageSize), new T.CenterCrop(meta.imageSize));
  else if (nativeSize < meta.imageSize) steps.push(new T.Pad((meta.imageSize - nativeSize) / 2)); // 28 → 32 for VGG's five poolings
  if (nativeChannels !== meta.inChannels) steps.push(new T.Grayscale(meta.inChannels as 1 | 3));
  if (augment) steps.push(new T.RandomCrop(meta.imageSize, { padding: Math.round(meta.imageSize / 8) }), new T.RandomHorizontalFlip());
  steps.push(new T.ToTensor(), new T.Normalize(meta.mean, meta.std));
  return new T.Compose(steps);
}

/** Labels are class indices: data labelled by `found` means `expected` only if the names agree, in order. */
export function checkClasses(found: readonly string[], where: string, expected: readonly string[], expectedWhere: string): void {
  if (found.join('\n') !== expected.join('\n')) {
    throw new Error(`${where} has classes [${found.join(', ')}] but ${expectedWhere} [${expected.join(', ')}]`);
  }
}

/** n samples evenly spaced through `ds` (a folder dataset is sorted by class, so its first n would be one class). */
export const evenlySpaced = <D extends Dataset<any>>(ds: D, n: number | null): Dataset<any> =>
  n === null || n >= ds.length
    ? ds
    : new Subset(
        ds,
        Array.from({ length: n }, (_, i) => Math.floor((i * ds.length) / n)),
      );

/** The train and test splits of a dataset, and what the model needs to know about it. */
export async function datasets(name: string, root: string, meta: { arch: string; pretrained: boolean; imageSize?: number }, augment: boolean) {
  const tutorial = meta.arch.startsWith('tutorial');
  const pretrained = meta.pretrained;
  const norm = pretrained ? { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } : null;
  if (name === 'cifar10') {
    const m: ModelMeta = {
      arch: meta.arch,
      numClasses: 10,
      inChannels: 3,
      imageSize: meta.imageSize ?? 32,
      classes: [...CIFAR10.CLASSES],
      mean: norm?.mean ?? [0.5, 0.5, 0.5],
      std: norm?.std ?? [0.5, 0.5, 0.5],
      dataset: name,
      data: root,
      pretrained,
    };
    const train = async () => CIFAR10.load({ root, train: true, download: true, transform: transformFor(m, NATIVE_SIZE.cifar10, 3, augment) });
    const test = async () => CIFAR10.load({ root, train: false, download: true, transform: transformFor(m, NATIVE_SIZE.cifar10, 3, false) });
    return { meta: m, train, test };
  }
  if (name === 'fashion-mnist') {
    const channels = pretrained ? 3 : 1;
    const m: ModelMeta = {
      arch: meta.arch,
      numClasses: 10,
      inChannels: channels,
      imageSize: meta.imageSize ?? (tutorial ? 28 : 32),
      classes: [...FashionMNIST.CLASSES],
      mean: norm?.mean ?? Array(channels).fill(0.5),
      std: norm?.std ?? Array(channels).fill(0.5),
      dataset: name,
      data: root,
      pretrained,
    };
    const opts = existsSync(root) ? { root } : {};
    const size = NATIVE_SIZE['fashion-mnist'];
    const train = async () => FashionMNIST.load({ ...opts, train: true, transform: transformFor(m, size, 1, augment) });
    const test = async () => FashionMNIST.load({ ...opts, train: false, transform: transformFor(m, size, 1, false) });
    return { meta: m, train, test };
  }
  // folder: root/train and root/val, or root alone (no evaluation)
  const trainRoot = existsSync(join(root, 'train')) ? join(root, 'train') : root;
  const valRoot = existsSync(join(root, 'val')) ? join(root, 'val') : null;
  const scan = new ImageFolder(trainRoot);
  const m: ModelMeta = {
    arch: meta.arch,
    numClasses: scan.classes.length,
    inChannels: 3,
    imageSize: meta.imageSize ?? (pretrained ? 224 : 32),
    classes: scan.classes,
    mean: norm?.mean ?? [0.5, 0.5, 0.5],
    std: norm?.std ?? [0.5, 0.5, 0.5],
    dataset: name,
    data: root,
    pretrained,
  };
  const train = async () => ImageFolder.load(trainRoot, { transform: transformFor(m, null, 3, augment) });
  const test = valRoot
    ? async () => {
        const val = await ImageFolder.load(valRoot, { transform: transformFor(m, null, 3, false) });
        try {
          checkClasses(val.classes, valRoot, scan.classes, `${trainRoot} has`);
        } catch (e) {
          val.dispose();
          throw e;
        }
        return val;
      }
    : null;
  return { meta: m, train, test };
}
