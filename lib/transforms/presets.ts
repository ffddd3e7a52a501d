// torchvision's ImageClassification preset, the preprocessing that pretrained
// weights were trained with: resize the short side (bilinear, antialias), center
// crop, scale to [0, 1], normalize with the weights' mean and std.
import { readFileSync } from 'node:fs';
import type { ClassificationPreset } from '../models/weights.js';
import { fromBuffer } from '../tensor/creation.js';
import { Tensor } from '../tensor/tensor.js';
import { CenterCrop, Compose, Normalize, Resize, ToTensor } from './transforms.js';

/**
 * Decodes a JPEG, PNG, WebP, GIF or TIFF image (a path or the file's bytes) with
 * sharp into a uint8 (3, H, W) RGB tensor, as `torchvision.io.read_image(…, RGB)`.
 */
export async function decodeImage(input: string | Uint8Array): Promise<Tensor> {
  const { default: sharp } = await import('sharp');
  const bytes = typeof input === 'string' ? readFileSync(input) : input;
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await sharp(bytes, { failOn: 'error' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const what = typeof input === 'string' ? input : 'the image bytes';
    throw new Error(`decodeImage: cannot decode ${what}: ${(e as Error).message}`, { cause: e });
  }
  const { data, info } = decoded;
  const hwc = fromBuffer(data, { dtype: 'uint8', shape: [info.height, info.width, info.channels] });
  const chw = hwc.permute(2, 0, 1).contiguous();
  hwc.dispose();
  return chw;
}

/** The preset as torchvision's `weights.transforms()` returns it. */
export class ImageClassification {
  private readonly pipeline: Compose;
  constructor(readonly preset: ClassificationPreset) {
    this.pipeline = new Compose([
      new Resize(preset.resizeSize, { interpolation: preset.interpolation, antialias: preset.antialias }),
      new CenterCrop(preset.cropSize),
      new ToTensor({ layout: 'CHW' }),
      new Normalize(preset.mean, preset.std),
    ]);
  }

  /** Prepares a uint8 (or [0, 1] float) image (C, H, W) or batch (N, C, H, W). */
  forward(image: Tensor): Tensor {
    return this.pipeline.forward(image);
  }

  /** Decodes an image file (or its bytes) and prepares it: a (1, 3, crop, crop) batch ready for the model. */
  async fromFile(input: string | Uint8Array): Promise<Tensor> {
    const image = await decodeImage(input);
    try {
      const x = this.forward(image);
      const batch = x.unsqueeze(0);
      x.dispose();
      return batch;
    } finally {
      image.dispose();
    }
  }

  toString(): string {
    const p = this.preset;
    return `ImageClassification(\n    crop_size=[${p.cropSize}]\n    resize_size=[${p.resizeSize}]\n    mean=[${p.mean.join(', ')}]\n` +
      `    std=[${p.std.join(', ')}]\n    interpolation=InterpolationMode.${p.interpolation.toUpperCase()}\n)`;
  }
}
