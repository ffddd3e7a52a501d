// Pretrained weights: torchvision's WeightsEnum entries for the VGG family, with
// the same URLs, metadata and preprocessing recipe.
import { IMAGENET_CATEGORIES } from './imagenetCategories.js';
import { type ClassificationPreset, ImageClassification } from '../transforms/presets.js';

export interface WeightsMeta {
  numParams: number;
  minSize: [number, number];
  /** The output classes in order, or null for feature-extractor weights. */
  categories: readonly string[] | null;
  recipe: string;
  /** ImageNet-1K accuracy in percent (NaN where the classifier is not usable). */
  metrics: { 'ImageNet-1K': { 'acc@1': number; 'acc@5': number } };
  /** Billions of multiply-accumulates per 224×224 image (torchvision's `_ops`, "GFLOPS"). */
  gflops: number;
  /** Size of the file in MB (torchvision's `_file_size`). */
  fileSize: number;
  docs: string;
}

/** One set of pretrained weights (a member of a torchvision `WeightsEnum`). */
export class Weights {
  constructor(
    /** `VGG16_Weights.IMAGENET1K_V1` */
    readonly name: string,
    readonly url: string,
    readonly meta: WeightsMeta,
    readonly preset: ClassificationPreset,
  ) {}
  /** The preprocessing these weights expect (torchvision's `weights.transforms()`). */
  transforms(): ImageClassification {
    return new ImageClassification(this.preset);
  }
  toString(): string {
    return this.name;
  }
}

const RECIPE = 'https://github.com/pytorch/vision/tree/main/references/classification#alexnet-and-vgg';
const DOCS = 'These weights were trained from scratch by using a simplified training recipe.';
const IMAGENET_PRESET: ClassificationPreset = {
  cropSize: 224,
  resizeSize: 256,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  interpolation: 'bilinear',
  antialias: true,
};

function imagenet(enumName: string, file: string, numParams: number, acc1: number, acc5: number, gflops: number, fileSize: number): Weights {
  return new Weights(
    `${enumName}.IMAGENET1K_V1`,
    `https://download.pytorch.org/models/${file}`,
    {
      numParams,
      minSize: [32, 32],
      categories: IMAGENET_CATEGORIES,
      recipe: RECIPE,
      metrics: { 'ImageNet-1K': { 'acc@1': acc1, 'acc@5': acc5 } },
      gflops,
      fileSize,
      docs: DOCS,
    },
    IMAGENET_PRESET,
  );
}

function weightsEnum<T extends Record<string, Weights>>(members: T): Readonly<T & { DEFAULT: T[keyof T] }> {
  const first = Object.values(members)[0] as T[keyof T];
  return Object.freeze({ ...members, DEFAULT: first });
}

export const VGG11_Weights = weightsEnum({ IMAGENET1K_V1: imagenet('VGG11_Weights', 'vgg11-8a719046.pth', 132863336, 69.02, 88.628, 7.609, 506.84) });
export const VGG11_BN_Weights = weightsEnum({ IMAGENET1K_V1: imagenet('VGG11_BN_Weights', 'vgg11_bn-6002323d.pth', 132868840, 70.37, 89.81, 7.609, 506.881) });
export const VGG13_Weights = weightsEnum({ IMAGENET1K_V1: imagenet('VGG13_Weights', 'vgg13-19584684.pth', 133047848, 69.928, 89.246, 11.308, 507.545) });
export const VGG13_BN_Weights = weightsEnum({
  IMAGENET1K_V1: imagenet('VGG13_BN_Weights', 'vgg13_bn-abd245e5.pth', 133053736, 71.586, 90.374, 11.308, 507.59),
});
export const VGG16_Weights = weightsEnum({
  IMAGENET1K_V1: imagenet('VGG16_Weights', 'vgg16-397923af.pth', 138357544, 71.592, 90.382, 15.47, 527.796),
  /** Ported from amdegroot/ssd.pytorch: only `features` is valid; for feature extraction. */
  IMAGENET1K_FEATURES: new Weights(
    'VGG16_Weights.IMAGENET1K_FEATURES',
    'https://download.pytorch.org/models/vgg16_features-amdegroot-88682ab5.pth',
    {
      numParams: 138357544,
      minSize: [32, 32],
      categories: null,
      recipe: 'https://github.com/amdegroot/ssd.pytorch#training-ssd',
      metrics: { 'ImageNet-1K': { 'acc@1': NaN, 'acc@5': NaN } },
      gflops: 15.47,
      fileSize: 527.802,
      docs:
        "These weights can't be used for classification because they are missing values in the `classifier` module. " +
        'Only the `features` module has valid values and can be used for feature extraction. ' +
        'The weights were trained using the original input standardization method as described in the paper.',
    },
    { ...IMAGENET_PRESET, mean: [0.48235, 0.45882, 0.40784], std: [1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0] },
  ),
});
export const VGG16_BN_Weights = weightsEnum({ IMAGENET1K_V1: imagenet('VGG16_BN_Weights', 'vgg16_bn-6c64b313.pth', 138365992, 73.36, 91.516, 15.47, 527.866) });
export const VGG19_Weights = weightsEnum({ IMAGENET1K_V1: imagenet('VGG19_Weights', 'vgg19-dcbb9e9d.pth', 143667240, 72.376, 90.876, 19.632, 548.051) });
export const VGG19_BN_Weights = weightsEnum({
  IMAGENET1K_V1: imagenet('VGG19_BN_Weights', 'vgg19_bn-c79401a0.pth', 143678248, 74.218, 91.842, 19.632, 548.143),
});

type WeightsEnum = Readonly<Record<string, Weights>>;

/**
 * Resolves the `weights` option of a factory as torchvision's `verify` does: a
 * member of the factory's enum, or its name (`'IMAGENET1K_V1'`, `'DEFAULT'` or
 * `'VGG16_Weights.IMAGENET1K_V1'`); anything else is an error listing the choices.
 */
export function verifyWeights(enumName: string, members: WeightsEnum, weights: Weights | string | null | undefined): Weights | null {
  if (weights == null) return null;
  const choices = Object.keys(members);
  if (weights instanceof Weights) {
    if (Object.values(members).includes(weights)) return weights;
    throw new TypeError(`weights ${weights.name} are not ${enumName}; use one of ${choices.map((c) => `${enumName}.${c}`).join(', ')}`);
  }
  const key = weights.startsWith(`${enumName}.`) ? weights.slice(enumName.length + 1) : weights;
  const found = members[key];
  if (!found) throw new TypeError(`unknown weights '${weights}' for ${enumName}; use one of ${choices.join(', ')}`);
  return found;
}
