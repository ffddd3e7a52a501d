// The models of the CLI: torchvision's VGGs with ImageNet weights (or a state
// dict file or URL), the tutorial VGG, and any of them rebuilt from a checkpoint
// that `vgg-torch train` wrote.
import { existsSync } from 'node:fs';
import { loadStateDictFromUrlSync } from '../hub/index.js';
import { type VGG, type VGGFactoryOptions, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, vggTutorial } from '../models/vgg.js';
import {
  VGG11_BN_Weights,
  VGG11_Weights,
  VGG13_BN_Weights,
  VGG13_Weights,
  VGG16_BN_Weights,
  VGG16_Weights,
  VGG19_BN_Weights,
  VGG19_Weights,
  type Weights,
} from '../models/weights.js';
import { Linear } from '../nn/modules/linear.js';
import { load } from '../serialization/load.js';
import type { Tensor } from '../tensor/tensor.js';
import { CHECKPOINT_FORMAT, disposeAll, loadCheckpoint } from '../train/checkpoint.js';
import type { MetricsRecord } from '../train/metricsLog.js';

export const FACTORIES: Record<string, (o?: VGGFactoryOptions) => VGG> = {
  vgg11,
  vgg11_bn,
  vgg13,
  vgg13_bn,
  vgg16,
  vgg16_bn,
  vgg19,
  vgg19_bn,
};
/** Each factory's ImageNet weights: categories and preprocessing, also for weights given as a file or URL. */
export const IMAGENET: Record<string, Weights> = {
  vgg11: VGG11_Weights.IMAGENET1K_V1,
  vgg11_bn: VGG11_BN_Weights.IMAGENET1K_V1,
  vgg13: VGG13_Weights.IMAGENET1K_V1,
  vgg13_bn: VGG13_BN_Weights.IMAGENET1K_V1,
  vgg16: VGG16_Weights.IMAGENET1K_V1,
  vgg16_bn: VGG16_BN_Weights.IMAGENET1K_V1,
  vgg19: VGG19_Weights.IMAGENET1K_V1,
  vgg19_bn: VGG19_BN_Weights.IMAGENET1K_V1,
};
export const ARCHS = ['tutorial', 'tutorial_bn', ...Object.keys(FACTORIES)];

/** How a trained model is rebuilt: stored in every checkpoint's `meta`. */
export interface ModelMeta {
  arch: string;
  numClasses: number;
  inChannels: number;
  imageSize: number;
  classes: string[];
  mean: number[];
  std: number[];
  dataset: string;
  data: string;
  /** Started from ImageNet weights (and so normalized with ImageNet's mean and std). */
  pretrained: boolean;
}

/**
 * The model `meta` describes: ImageNet weights and a new head (`pretrained`),
 * a fresh init, or (`forLoading`) no init at all, for weights loaded next.
 */
export function buildModel(meta: ModelMeta, how: 'pretrained' | 'init' | 'forLoading'): VGG {
  const initWeights = how !== 'forLoading';
  if (meta.arch === 'tutorial' || meta.arch === 'tutorial_bn') {
    return vggTutorial({
      batchNorm: meta.arch === 'tutorial_bn',
      numClasses: meta.numClasses,
      inChannels: meta.inChannels,
      inputSize: [meta.imageSize, meta.imageSize],
      initWeights,
    });
  }
  const factory = FACTORIES[meta.arch];
  if (how !== 'pretrained') return factory({ numClasses: meta.numClasses, inChannels: meta.inChannels, initWeights });
  // ImageNet weights, then a new last layer for our classes (the fine-tuning recipe).
  const model = factory({ weights: 'DEFAULT' });
  model.classifier[6].dispose();
  model.classifier[6] = new Linear(4096, meta.numClasses);
  return model;
}

/** The model and its description from a checkpoint `vgg-torch train` wrote, weights loaded. */
export function modelFromCheckpoint(file: string): { model: VGG; meta: ModelMeta; epoch: number; metrics: MetricsRecord[] } {
  if (!existsSync(file)) throw new Error(`no such checkpoint: ${file}`);
  const ck = loadCheckpoint(file);
  try {
    const m = ck.meta as Partial<ModelMeta>;
    const ok =
      typeof m.arch === 'string' &&
      ARCHS.includes(m.arch) &&
      Number.isInteger(m.numClasses) &&
      Number.isInteger(m.inChannels) &&
      Number.isInteger(m.imageSize) &&
      Array.isArray(m.classes) &&
      Array.isArray(m.mean) &&
      Array.isArray(m.std) &&
      typeof m.dataset === 'string' &&
      typeof m.data === 'string';
    if (!ok) throw new Error(`${file} was not written by 'vgg-torch train': its meta does not describe the model`);
    const meta = { ...(m as ModelMeta), pretrained: m.pretrained === true };
    const model = buildModel(meta, 'forLoading');
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { model, meta, epoch: ck.epoch, metrics: ck.metrics };
  } finally {
    ck.dispose();
  }
}

/** A torchvision architecture with `--weights`: DEFAULT or IMAGENET1K_V1 (torch.hub's cache), or a state dict file or URL. */
export function modelWithWeights(arch: string, w: string): VGG {
  const factory = FACTORIES[arch];
  if (w === 'DEFAULT' || w === 'IMAGENET1K_V1') return factory({ weights: w });
  const sd: unknown = /^https?:\/\//.test(w) ? loadStateDictFromUrlSync(w, { checkHash: true }) : load(w);
  const model = factory({ initWeights: false });
  try {
    if (!(sd instanceof Map)) throw new Error(`${w} does not hold a state dict`);
    if (sd.get('format') === CHECKPOINT_FORMAT) throw new Error(`${w} is a training checkpoint: use --checkpoint`);
    model.loadStateDict(sd as Map<string, Tensor>);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    disposeAll(sd);
  }
}
