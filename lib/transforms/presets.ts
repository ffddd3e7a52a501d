// torchvision's ImageClassification preset, the preprocessing that pretrained
// weights were trained with: resize the short side (bilinear, antialias), center
// crop, scale to [0, 1], normalize with the weights' mean and std.
import { decodeImage } from '../io/image.js';
import type { Tensor } from '../tensor/tensor.js';
import { CenterCrop, Compose, Normalize, Resize, ToTensor } from './transforms.js';

/** How images are prepared for a set of weights (torchvision's ImageClassification preset). */
export interface ClassificationPreset {
  cropSize: number;
  resizeSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: 'bilinear';
  antialias: boolean;
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
    return (
      `ImageClassification(\n    crop_size=[${p.cropSize}]\n    resize_size=[${p.resizeSize}]\n    mean=[${p.mean.join(', ')}]\n` +
      `    std=[${p.std.join(', ')}]\n    interpolation=InterpolationMode.${p.interpolation.toUpperCase()}\n)`
    );
  }
}
