// torchvision.io's image reading: files or bytes decoded with sharp, with
// PIL's conversions (`convert('RGB')` / `convert('L')`: alpha dropped, palettes
// and grey expanded), the one decoding path for presets, ImageFolder and the CLI.
import { readFileSync } from 'node:fs';
import { fromBuffer } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** torchvision's ImageReadMode: three RGB channels, or one grey channel. */
export type ImageReadMode = 'RGB' | 'GRAY';

/** Decoded pixels, row-major (H, W, C) bytes. */
export interface DecodedPixels {
  data: Buffer;
  height: number;
  width: number;
  channels: number;
}

/**
 * Decodes a JPEG, PNG, WebP, GIF or TIFF image (a path or the file's bytes) into
 * (H, W, C) uint8 pixels. Throws sharp's error for anything it cannot decode.
 */
export async function decodePixels(input: string | Uint8Array, mode: ImageReadMode = 'RGB'): Promise<DecodedPixels> {
  const { default: sharp } = await import('sharp');
  const img = sharp(input, { failOn: 'error' })
    .removeAlpha()
    .toColourspace(mode === 'RGB' ? 'srgb' : 'b-w');
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  const channels = mode === 'RGB' ? 3 : 1;
  if (info.channels !== channels) throw new Error(`decoded to ${info.channels} channels`);
  return { data, height: info.height, width: info.width, channels };
}

/**
 * Decodes a JPEG, PNG, WebP, GIF or TIFF image (a path or the file's bytes) with
 * sharp into a uint8 (3, H, W) RGB tensor, as `torchvision.io.read_image(…, RGB)`.
 */
export async function decodeImage(input: string | Uint8Array): Promise<Tensor> {
  let pixels: DecodedPixels;
  try {
    pixels = await decodePixels(typeof input === 'string' ? readFileSync(input) : input);
  } catch (e) {
    const what = typeof input === 'string' ? input : 'the image bytes';
    throw new Error(`decodeImage: cannot decode ${what}: ${(e as Error).message}`, { cause: e });
  }
  // The (H, W, C) tensor and its permuted view are freed here, not left to the garbage collector.
  return tidy(() =>
    fromBuffer(pixels.data, { dtype: 'uint8', shape: [pixels.height, pixels.width, pixels.channels] })
      .permute(2, 0, 1)
      .contiguous(),
  );
}
