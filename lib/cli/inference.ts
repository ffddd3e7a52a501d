// What `predict` and `serve` share: the model, its classes and its image
// preprocessing from --arch/--weights or --checkpoint, the --amp precision, and
// the calibration images of --int8.
import { existsSync, readdirSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { ampRulesNow } from '../amp/releases.js';
import { IMG_EXTENSIONS } from '../data/folder.js';
import { decodeImage } from '../io/image.js';
import type { VGG } from '../models/vgg.js';
import { backends, version } from '../runtime.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import * as T from '../transforms/transforms.js';
import { UsageError, type Values, oneOf } from './args.js';
import { NATIVE_SIZE, transformFor } from './datasets.js';
import { FACTORIES, IMAGENET, modelFromCheckpoint, modelWithWeights } from './models.js';

/** A model ready to classify photos. */
export interface InferenceModel {
  model: VGG;
  /** The architecture's name (a checkpoint's too). */
  arch: string;
  classes: readonly string[];
  /** A decoded uint8 (3, H, W) photo to the model's input for it, (C, H, W). */
  preprocess: (image: Tensor) => Tensor;
}

/** `--checkpoint`, or `--arch` (default vgg16) with `--weights` (default DEFAULT: ImageNet's). */
export function inferenceModel(v: Values): InferenceModel {
  if (v.checkpoint && (v.arch || v.weights)) throw new UsageError('--checkpoint brings its own architecture and weights: drop --arch and --weights');
  if (v.checkpoint) {
    const { model, meta } = modelFromCheckpoint(resolve(v.checkpoint as string));
    // A photo is first brought to the dataset's own size, then prepared as training prepared that dataset.
    const size = NATIVE_SIZE[meta.dataset] ?? null;
    const tf =
      size === null ? transformFor(meta, null, 3, false) : new T.Compose([new T.Resize(size), new T.CenterCrop(size), transformFor(meta, size, 3, false)]);
    return { model, arch: meta.arch, classes: meta.classes, preprocess: (img) => tf.forward(img) };
  }
  const arch = oneOf((v.arch as string) ?? 'vgg16', Object.keys(FACTORIES), 'architecture');
  const weights = IMAGENET[arch];
  const model = modelWithWeights(arch, (v.weights as string) ?? 'DEFAULT');
  const preset = weights.transforms();
  return { model, arch, classes: weights.meta.categories!, preprocess: (img) => preset.forward(img) };
}

/**
 * `--amp`: the autocast dtype, or null for off. `auto` is bf16 on a CPU that computes it natively
 * and fp16 on CUDA (as `train --amp auto`), fp32 elsewhere; it says which on stderr.
 */
export function ampDtype(v: Values, dev: 'cpu' | 'cuda'): 'bfloat16' | 'float16' | null {
  let amp = oneOf((v.amp as string) ?? 'off', ['auto', 'bf16', 'fp16', 'off'], '--amp precision');
  if (amp === 'auto') {
    const bf16 = backends.cpu.bf16Support();
    amp = dev === 'cuda' ? 'fp16' : bf16.native ? 'bf16' : 'off';
    process.stderr.write(`Precision: ${amp === 'off' ? 'fp32' : `${amp} autocast`} (--amp auto: ${dev === 'cuda' ? 'fp16 on CUDA' : bf16.reason})\n`);
  }
  if (amp === 'off') return null;
  if (amp === 'fp16' && dev === 'cpu' && !ampRulesNow.cpuAutocastHalf) {
    throw new UsageError(`--amp fp16 on the CPU needs libtorch 2.1 or later (this is ${version.torch}); use --amp bf16`);
  }
  return amp === 'bf16' ? 'bfloat16' : 'float16';
}

/** The images `files` preprocessed, each a batch of one, to calibrate the int8 activation ranges on. */
export async function calibration(files: string[], preprocess: (image: Tensor) => Tensor): Promise<Tensor[]> {
  const out: Tensor[] = [];
  for (const f of files) {
    const image = await decodeImage(f);
    out.push(tidy(() => preprocess(image).unsqueeze(0)));
    image.dispose();
  }
  return out;
}

/** The images in a folder (torchvision's IMG_EXTENSIONS), sorted. */
export function imagesIn(dir: string): string[] {
  if (!existsSync(dir)) throw new Error(`no such folder: ${dir}`);
  const images = readdirSync(dir)
    .filter((f) => (IMG_EXTENSIONS as readonly string[]).includes(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(dir, f));
  if (images.length === 0) throw new Error(`no images in ${dir}`);
  return images;
}
