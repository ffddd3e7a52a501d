// torchvision.utils.make_grid and save_image: a batch of images as one picture.
import { writeFileSync } from 'node:fs';
import { noGrad } from '../autograd.js';
import { cat, stack, Tensor } from '../tensor/tensor.js';
import { full } from '../tensor/creation.js';
import { tidy } from '../tensor/scope.js';
import { checkOptions, describe } from '../utils/args.js';

export interface MakeGridOptions {
  /** Images per row (default 8). */
  nrow?: number;
  /** Pixels between and around images (default 2). */
  padding?: number;
  /** Shift to [0, 1] by the min and max (or `valueRange`) (default false). */
  normalize?: boolean;
  valueRange?: [number, number] | null;
  /** Normalize each image by its own min and max. */
  scaleEach?: boolean;
  padValue?: number;
}

function checkImages(fn: string, images: unknown, opts: unknown): void {
  checkOptions(fn, opts, ['nrow', 'padding', 'normalize', 'valueRange', 'scaleEach', 'padValue']);
  if (!(images instanceof Tensor) && !(Array.isArray(images) && images.every((t) => t instanceof Tensor))) {
    throw new TypeError(`${fn}: argument 'images' must be a Tensor or an array of Tensors, got ${describe(images)}`);
  }
}

/**
 * `torchvision.utils.make_grid`: (N, C, H, W) images (or an array of (C, H, W))
 * laid out `nrow` per row with `padding` between them; one-channel images become
 * three-channel. Same result as torchvision, bit for bit.
 */
export function makeGrid(images: Tensor | Tensor[], opts: MakeGridOptions = {}): Tensor {
  checkImages('makeGrid', images, opts);
  const nrow = opts.nrow ?? 8;
  const padding = opts.padding ?? 2;
  if (!Number.isInteger(nrow) || nrow < 1) throw new RangeError(`makeGrid: nrow must be a positive integer, got ${describe(nrow)}`);
  return tidy(() =>
    noGrad(() => {
      let t = Array.isArray(images) ? stack(images, 0) : images;
      if (!(t instanceof Tensor)) throw new TypeError('makeGrid: expected a Tensor or an array of Tensors');
      if (t.ndim === 2) t = t.unsqueeze(0);
      if (t.ndim === 3) {
        if (t.shape[0] === 1) t = cat([t, t, t], 0);
        t = t.unsqueeze(0);
      }
      if (t.ndim !== 4) throw new RangeError(`makeGrid: expected (N, C, H, W) images, got shape [${t.shape.join(', ')}]`);
      if (t.shape[1] === 1) t = cat([t, t, t], 1);
      if (opts.normalize) {
        t = t.clone();
        const normIp = (img: Tensor, low: number, high: number): void => {
          img.clamp_(low, high);
          img.sub_(low).div_(Math.max(high - low, 1e-5));
        };
        const normRange = (img: Tensor): void => {
          if (opts.valueRange) normIp(img, opts.valueRange[0], opts.valueRange[1]);
          else normIp(img, img.min().item() as number, img.max().item() as number);
        };
        if (opts.scaleEach) for (let i = 0; i < t.shape[0]; i++) normRange(t.select(0, i));
        else normRange(t);
      }
      if (t.shape[0] === 1) return t.squeeze(0).clone();
      const [n, c, h, w] = t.shape;
      const xmaps = Math.min(nrow, n);
      const ymaps = Math.ceil(n / xmaps);
      const [height, width] = [h + padding, w + padding];
      const grid = full([c, height * ymaps + padding, width * xmaps + padding], opts.padValue ?? 0, { dtype: t.dtype, device: t.device });
      for (let k = 0; k < n; k++) {
        const [y, x] = [Math.floor(k / xmaps), k % xmaps];
        grid
          .narrow(1, y * height + padding, height - padding)
          .narrow(2, x * width + padding, width - padding)
          .copy_(t.select(0, k));
      }
      return grid;
    }),
  );
}

/**
 * `torchvision.utils.save_image`: writes images in [0, 1] (a grid of a batch) as a
 * PNG or JPEG, by the file's extension, with torchvision's rounding to 8 bits.
 */
export async function saveImage(images: Tensor | Tensor[], path: string, opts: MakeGridOptions = {}): Promise<void> {
  checkImages('saveImage', images, opts);
  const { default: sharp } = await import('sharp');
  const [bytes, shape] = tidy(() => {
    const grid = makeGrid(images, opts);
    const hwc = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to({ device: 'cpu', dtype: 'uint8' }).contiguous();
    return [hwc.toTypedArray() as Uint8Array, hwc.shape] as const;
  });
  const [height, width, channels] = shape;
  const img = sharp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { raw: { width, height, channels: channels as 3 } });
  const out = /\.jpe?g$/i.test(path) ? await img.jpeg({ quality: 95 }).toBuffer() : await img.png().toBuffer();
  writeFileSync(path, out);
}
