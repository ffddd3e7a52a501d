// VGG (Simonyan & Zisserman, 2014) as torchvision builds it: declarative
// configurations, one layer builder, one model class, eight factories; plus the
// 32×32 CIFAR-10 VGG of the tutorial this project grew from.
import { noGrad } from '../autograd.js';
import * as init from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, Module, ReLU, Sequential } from '../nn/modules/index.js';
import { type Tensor, handleOf } from '../tensor/tensor.js';
import { checkBoolean, checkInt, checkOptions, describe } from '../utils/args.js';
import { loadStateDictFromUrlSync } from '../hub/index.js';
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
  verifyWeights,
} from './weights.js';

/** A layer configuration: output channels of a 3×3 conv, or `'M'` for a 2×2 max-pool. */
export type VGGConfig = readonly (number | 'M')[];

/** torchvision's configurations (A = VGG11, B = VGG13, D = VGG16, E = VGG19) and the tutorial's. */
export const cfgs = {
  A: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  B: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  D: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  E: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
  /** The CIFAR-10 tutorial's 13-conv VGG for 32×32 input (three pools: 32 → 4). */
  tutorial: [32, 32, 'M', 64, 64, 128, 128, 128, 'M', 256, 256, 256, 512, 512, 512, 'M'],
} as const satisfies Record<string, VGGConfig>;

/** torchvision's `make_layers`: conv 3×3 (padding 1) [+ BatchNorm] + ReLU per number, MaxPool 2×2 per `'M'`. */
export function makeLayers(cfg: VGGConfig, opts: { batchNorm?: boolean; inChannels?: number } = {}): Sequential {
  if (!Array.isArray(cfg)) throw new TypeError(`makeLayers(): argument 'cfg' must be an array of positive integers and 'M', got ${describe(cfg)}`);
  checkOptions('makeLayers()', opts, ['batchNorm', 'inChannels']);
  checkBoolean('makeLayers()', 'batchNorm', opts.batchNorm);
  if (opts.inChannels !== undefined) checkInt('makeLayers()', 'inChannels', opts.inChannels, 1);
  const layers: Module<any, any>[] = [];
  let channels = opts.inChannels ?? 3;
  for (const [i, v] of cfg.entries()) {
    if (v === 'M') {
      layers.push(new MaxPool2d(2, { stride: 2 }));
    } else {
      if (!Number.isInteger(v) || (v as number) <= 0) throw new RangeError(`makeLayers(): cfg[${i}] must be a positive integer or 'M', got ${describe(v)}`);
      layers.push(new Conv2d(channels, v, 3, { padding: 1 }));
      if (opts.batchNorm) layers.push(new BatchNorm2d(v));
      layers.push(new ReLU(true));
      channels = v;
    }
  }
  return new Sequential(...layers);
}

const VGG_OPTIONS = ['numClasses', 'initWeights', 'dropout', 'avgpool', 'inputSize', 'inChannels'];

export interface VGGOptions {
  numClasses?: number;
  initWeights?: boolean;
  dropout?: number;
  /**
   * Adaptive 7×7 average pooling before the classifier (torchvision's VGG, any
   * input size). With `false` the classifier is sized for `inputSize` instead,
   * as in the CIFAR-10 tutorial's VGG.
   */
  avgpool?: boolean;
  /** The input height and width the classifier is built for when `avgpool` is false (default 224×224). */
  inputSize?: [number, number];
  /** Input channels of the first layer, used to size the classifier (default 3). */
  inChannels?: number;
}

/**
 * VGG: `features` → (avgpool) → flatten → classifier, exactly as torchvision's
 * class, with torchvision's weight initialisation.
 */
export class VGG extends Module {
  features: Sequential;
  avgpool: AdaptiveAvgPool2d | undefined;
  classifier: Sequential;
  private readonly _built: { input: [number, number] | null; flat: number[] };

  constructor(features: Sequential, opts: VGGOptions = {}) {
    super();
    if (!(features instanceof Module)) throw new TypeError(`VGG: argument 'features' must be a Sequential, got ${describe(features)}`);
    checkOptions('VGG', opts, VGG_OPTIONS);
    const numClasses = opts.numClasses ?? 1000;
    const dropout = opts.dropout ?? 0.5;
    const useAvgpool = opts.avgpool ?? true;
    checkInt('VGG', 'numClasses', numClasses, 1);
    checkBoolean('VGG', 'avgpool', opts.avgpool);
    checkBoolean('VGG', 'initWeights', opts.initWeights);
    if (opts.inChannels !== undefined) checkInt('VGG', 'inChannels', opts.inChannels, 1);
    const size = opts.inputSize;
    if (size !== undefined && !(Array.isArray(size) && size.length === 2 && size.every((d) => Number.isInteger(d) && d > 0))) {
      throw new RangeError(`VGG: inputSize must be [height, width] of positive integers, got ${describe(size)}`);
    }
    this.features = features;
    this.avgpool = useAvgpool ? new AdaptiveAvgPool2d([7, 7]) : undefined;
    if (!useAvgpool) delete (this as { avgpool?: unknown }).avgpool; // no such child, as in the tutorial's class
    const input = useAvgpool ? null : (opts.inputSize ?? [224, 224]);
    const probe = [1, opts.inChannels ?? 3, ...(input ?? [224, 224])];
    const flat = useAvgpool ? this.avgpool!.outputShape(features.outputShape(probe)) : features.outputShape(probe);
    if (flat.slice(1).some((d) => !(d > 0))) {
      const pools = [...features.modules()].filter((m) => m instanceof MaxPool2d).length;
      throw new RangeError(
        `VGG: inputSize [${probe.slice(2).join(', ')}] is too small for these features: they reduce it to ` +
          `${flat.slice(2).join('×')} (each of the ${pools} max-pools halves it); use at least [${2 ** pools}, ${2 ** pools}]`,
      );
    }
    this._built = { input, flat: flat.slice(1) };
    const inFeatures = flat.slice(1).reduce((a, b) => a * b, 1);
    this.classifier = new Sequential(
      new Linear(inFeatures, 4096),
      new ReLU(true),
      new Dropout(dropout),
      new Linear(4096, 4096),
      new ReLU(true),
      new Dropout(dropout),
      new Linear(4096, numClasses),
    );
    if (opts.initWeights ?? true) this.initializeWeights();
  }

  /** torchvision's rules: conv kaiming-normal (fan_out, relu), bias 0; BatchNorm 1, 0; Linear N(0, 0.01), 0. */
  private initializeWeights(): void {
    noGrad(() => {
      for (const m of this.modules()) {
        if (m instanceof Conv2d) {
          init.kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
          if (m.bias) init.constant_(m.bias, 0);
        } else if (m instanceof BatchNorm2d) {
          if (m.weight) init.constant_(m.weight, 1);
          if (m.bias) init.constant_(m.bias, 0);
        } else if (m instanceof Linear) {
          init.normal_(m.weight, 0, 0.01);
          if (m.bias) init.constant_(m.bias, 0);
        }
      }
    });
  }

  forward(x: Tensor): Tensor {
    const f = this.features(this.checkInput(x));
    const pooled = this.avgpool ? this.avgpool(f) : f;
    this.checkFeatures(pooled, x);
    return this.classifier(pooled.flatten(1));
  }

  private checkInput(x: Tensor): Tensor {
    handleOf(x, 'input');
    if (x.ndim !== 4) {
      throw new RangeError(
        `VGG: expected a 4-d (N, C, H, W) batch, got shape [${x.shape.join(', ')}]` +
          (x.ndim === 3 ? '; for a single image, add the batch dimension with x.unsqueeze(0)' : ''),
      );
    }
    return x;
  }

  // libtorch's own message (mat1 and mat2 shapes cannot be multiplied) would not say which input size fits.
  private checkFeatures(pooled: Tensor, x: Tensor): void {
    const got = pooled.shape.slice(1);
    if (got.reduce((a, b) => a * b, 1) !== (this.classifier[0] as Linear).inFeatures) throw new RangeError(this.mismatch(x.shape, got));
  }

  private mismatch(inputShape: number[], got: number[]): string {
    const expected = this._built.flat;
    const built = this._built.input ? `built for ${this._built.input.join('×')} input` : 'after the 7×7 avgpool';
    const hw = inputShape.slice(-2).join('×');
    return (
      `VGG: the classifier takes ${expected.join(' × ')} = ${expected.reduce((a, b) => a * b, 1)} features (${built}), ` +
      `but a ${hw} input gives ${got.join(' × ')} = ${got.reduce((a, b) => a * b, 1)}. ` +
      `Build the model with { avgpool: false, inputSize: [${inputShape.slice(-2).join(', ')}] } for this input size ` +
      '(vggTutorial() takes just inputSize), or keep avgpool (the default of the torchvision factories) to accept any size.'
    );
  }

  outputShape(shape: number[]): number[] {
    const f = this.features.outputShape(shape);
    const pooled = this.avgpool ? this.avgpool.outputShape(f) : f;
    return this.classifier.outputShape([pooled[0], pooled.slice(1).reduce((a, b) => a * b, 1)]);
  }
}

/** Options of the factories; `weights` selects pretrained ImageNet weights. */
export interface VGGFactoryOptions extends VGGOptions {
  /**
   * Pretrained weights: a member of the factory's enum (`VGG16_Weights.IMAGENET1K_V1`,
   * `VGG16_Weights.DEFAULT`) or its name (`'IMAGENET1K_V1'`, `'DEFAULT'`). Downloaded
   * once into torch.hub's cache, checked against the SHA-256 prefix in the file name.
   */
  weights?: Weights | string | null;
  /** Progress bar while downloading weights (default true). */
  progress?: boolean;
}

type WeightsEnum = Readonly<Record<string, Weights>>;

// torchvision's _vgg: pretrained weights fix numClasses and skip initialisation.
function build(cfg: VGGConfig, batchNorm: boolean, enumName: string, members: WeightsEnum, opts: VGGFactoryOptions): VGG {
  checkOptions(`${enumName.replace('_Weights', '').toLowerCase()}()`, opts, [...VGG_OPTIONS, 'weights', 'progress']);
  const weights = verifyWeights(enumName, members, opts.weights);
  const { weights: _given, progress: _progress, ...vggOptions } = opts;
  let options: VGGOptions = vggOptions;
  if (weights) {
    const categories = weights.meta.categories;
    if (categories) {
      if (opts.numClasses !== undefined && opts.numClasses !== categories.length) {
        throw new Error(`The parameter 'numClasses' expected value ${categories.length} but got ${opts.numClasses} instead.`);
      }
      options = { ...options, numClasses: categories.length };
    }
    if (opts.avgpool === false) throw new Error(`${weights.name} needs the 7×7 avgpool; leave avgpool at its default`);
    options = { ...options, initWeights: false };
  }
  const model = new VGG(makeLayers(cfg, { batchNorm, inChannels: opts.inChannels }), options);
  if (weights) {
    try {
      const stateDict = loadStateDictFromUrlSync(weights.url, { progress: opts.progress ?? true, checkHash: true });
      try {
        model.loadStateDict(stateDict);
      } finally {
        for (const t of stateDict.values()) t.dispose();
      }
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}

/** VGG 11-layer model (configuration "A"). */
export const vgg11 = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.A, false, 'VGG11_Weights', VGG11_Weights, opts);
/** VGG 11-layer model with batch normalization. */
export const vgg11_bn = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.A, true, 'VGG11_BN_Weights', VGG11_BN_Weights, opts);
/** VGG 13-layer model (configuration "B"). */
export const vgg13 = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.B, false, 'VGG13_Weights', VGG13_Weights, opts);
/** VGG 13-layer model with batch normalization. */
export const vgg13_bn = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.B, true, 'VGG13_BN_Weights', VGG13_BN_Weights, opts);
/** VGG 16-layer model (configuration "D"). */
export const vgg16 = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.D, false, 'VGG16_Weights', VGG16_Weights, opts);
/** VGG 16-layer model with batch normalization. */
export const vgg16_bn = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.D, true, 'VGG16_BN_Weights', VGG16_BN_Weights, opts);
/** VGG 19-layer model (configuration "E"). */
export const vgg19 = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.E, false, 'VGG19_Weights', VGG19_Weights, opts);
/** VGG 19-layer model with batch normalization. */
export const vgg19_bn = (opts: VGGFactoryOptions = {}): VGG => build(cfgs.E, true, 'VGG19_BN_Weights', VGG19_BN_Weights, opts);

/**
 * The CIFAR-10 tutorial's VGG: configuration `cfgs.tutorial`, no avgpool, a
 * classifier sized for 32×32 input (`Linear(512 * 4 * 4, 4096)`), 10 classes.
 * `batchNorm` adds BatchNorm after each conv.
 */
export function vggTutorial(opts: Omit<VGGOptions, 'avgpool'> & { batchNorm?: boolean } = {}): VGG {
  checkOptions('vggTutorial()', opts, [...VGG_OPTIONS.filter((k) => k !== 'avgpool'), 'batchNorm']);
  const { batchNorm, ...rest } = opts;
  return new VGG(makeLayers(cfgs.tutorial, { batchNorm, inChannels: rest.inChannels }), {
    numClasses: 10,
    inputSize: [32, 32],
    ...rest,
    avgpool: false,
  });
}
