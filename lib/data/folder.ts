// torchvision.datasets.ImageFolder: root/<class>/**/<image>, classes sorted by
// name. Decoding needs sharp, which is asynchronous, so images are decoded once,
// up front (`await ImageFolder.load(root)` or `await folder.load()`), into one
// uint8 buffer; `get(i)` is then synchronous. Same-sized images become one
// (N, 3, H, W) tensor and load whole batches; mixed sizes stay packed in one
// buffer and are served one by one.
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { native } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import { fromBuffer } from '../tensor/creation.js';
import { type Tensor, wrap } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import { type DecodedPixels, decodePixels } from '../io/image.js';
import { type Transform, isPlannable } from '../transforms/transforms.js';
import { type BatchSource, type Dataset, type ImageDatasetOptions, checkIndex, gatherRows, indexTensor, transformSample } from './dataset.js';

/** torchvision's IMG_EXTENSIONS. */
export const IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'] as const;

export interface ImageFolderOptions extends ImageDatasetOptions {
  /** File name endings that count as images (case-insensitive; default torchvision's list). */
  extensions?: readonly string[];
  /** Decode to 3 channels (RGB, default, as torchvision's loader) or 1 (grayscale). */
  channels?: 1 | 3;
  /** Images decoded at once while loading (default 8). */
  concurrency?: number;
}

/** Lists directory entries as torchvision's find_classes/make_dataset do (following symlinks). */
function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * `torchvision.datasets.ImageFolder`: one class per sub-folder of `root` (sorted
 * by name), every image file below it a sample. Construction scans the folders;
 * {@link load} decodes the images (with sharp) into one uint8 buffer.
 * `get(i)` gives `[image (C, H, W) uint8 or transformed, label]`.
 */
export class ImageFolder implements Dataset<[Tensor, number]>, BatchSource {
  readonly root: string;
  readonly classes: string[];
  readonly classToIdx: Record<string, number>;
  /** `[path, label]` for each sample, in torchvision's order. */
  readonly samples: [string, number][];
  readonly targets: number[];
  transform: ImageFolderOptions['transform'];
  targetTransform: ImageFolderOptions['targetTransform'];
  readonly channels: 1 | 3;
  private readonly concurrency: number;
  /** Decoded pixels, HWC per image, packed; set by load(). */
  private packed: Tensor | null = null;
  /** Same-sized images: (N, C, H, W); otherwise null. */
  private uniform: Tensor | null = null;
  private offsets: Float64Array | null = null;
  private sizes: Int32Array | null = null;

  /** Scans `root`; call {@link load} (or use {@link ImageFolder.load}) before reading samples. */
  constructor(root: string, opts: ImageFolderOptions = {}) {
    if (typeof root !== 'string') throw new TypeError(`ImageFolder: argument 'root' must be a path, got ${describe(root)}`);
    checkOptions('ImageFolder', opts, ['transform', 'targetTransform', 'extensions', 'channels', 'concurrency']);
    this.root = resolve(root);
    if (!isDir(this.root)) throw new Error(`ImageFolder: ${this.root} is not a folder`);
    const exts = (opts.extensions ?? IMG_EXTENSIONS).map((e) => e.toLowerCase());
    this.classes = readdirSync(this.root)
      .filter((d) => isDir(join(this.root, d)))
      .sort();
    if (this.classes.length === 0) throw new Error(`ImageFolder: couldn't find any class folder in ${this.root}`);
    this.classToIdx = Object.fromEntries(this.classes.map((c, i) => [c, i]));
    this.samples = [];
    const empty: string[] = [];
    for (const cls of this.classes) {
      const before = this.samples.length;
      // As os.walk sorted by folder, then files sorted by name.
      const walk: [string, string[]][] = [];
      const visit = (dir: string): void => {
        const names = readdirSync(dir);
        walk.push([dir, names.filter((n) => !isDir(join(dir, n)))]);
        for (const n of names) if (isDir(join(dir, n))) visit(join(dir, n));
      };
      visit(join(this.root, cls));
      walk.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [dir, files] of walk) {
        for (const f of files.sort()) {
          if (exts.some((e) => f.toLowerCase().endsWith(e))) this.samples.push([join(dir, f), this.classToIdx[cls]]);
        }
      }
      if (this.samples.length === before) empty.push(cls);
    }
    if (empty.length) throw new Error(`ImageFolder: found no valid file for the classes ${empty.join(', ')}. Supported extensions are: ${exts.join(', ')}`);
    this.targets = this.samples.map(([, t]) => t);
    this.transform = opts.transform ?? null;
    this.targetTransform = opts.targetTransform ?? null;
    this.channels = opts.channels ?? 3;
    this.concurrency = opts.concurrency ?? 8;
  }

  /** Scans and decodes: `const ds = await ImageFolder.load('data/train', { transform })`. */
  static async load(root: string, opts: ImageFolderOptions = {}): Promise<ImageFolder> {
    return new ImageFolder(root, opts).load();
  }

  /** Whether the images are decoded. */
  get loaded(): boolean {
    return this.packed !== null;
  }

  /** Decodes every image once (RGB, or grayscale with `channels: 1`); returns this. */
  async load(): Promise<this> {
    if (this.packed) return this;
    const mode = this.channels === 3 ? 'RGB' : 'GRAY';
    const decoded: DecodedPixels[] = new Array(this.samples.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < this.samples.length) {
        const i = next++;
        const path = this.samples[i][0];
        try {
          decoded[i] = await decodePixels(path, mode);
        } catch (e) {
          throw new Error(`ImageFolder: cannot decode ${path}: ${(e as Error).message}`, { cause: e });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, this.samples.length) }, worker));
    const offsets = new Float64Array(decoded.length + 1);
    const sizes = new Int32Array(decoded.length * 2);
    decoded.forEach((d, i) => {
      offsets[i + 1] = offsets[i] + d.data.length;
      sizes[2 * i] = d.height;
      sizes[2 * i + 1] = d.width;
    });
    const all = new Uint8Array(offsets[decoded.length]);
    decoded.forEach((d, i) => all.set(d.data, offsets[i]));
    const c = this.channels;
    this.packed = fromBuffer(all, { dtype: 'uint8' });
    this.offsets = offsets;
    this.sizes = sizes;
    const same = decoded.every((d) => d.height === decoded[0].height && d.width === decoded[0].width);
    if (same) {
      const [h, w] = [decoded[0].height, decoded[0].width];
      const nhwc = this.packed.view(decoded.length, h, w, c);
      this.uniform = nhwc.permute(0, 3, 1, 2).contiguous();
      nhwc.dispose();
      this.packed.dispose();
      this.packed = this.uniform;
    }
    return this;
  }

  get length(): number {
    return this.samples.length;
  }

  private image(i: number): Tensor {
    if (!this.packed) throw new Error('ImageFolder: the images are not decoded yet; `await folder.load()` (or use `await ImageFolder.load(root)`) first');
    if (this.uniform) return this.uniform.select(0, i);
    const [h, w] = [this.sizes![2 * i], this.sizes![2 * i + 1]];
    const flat = this.packed.narrow(0, this.offsets![i], h * w * this.channels);
    const hwc = flat.view(h, w, this.channels);
    flat.dispose();
    const chw = hwc.permute(2, 0, 1);
    hwc.dispose();
    return chw;
  }

  /** `[image, label]`; the image is uint8 (C, H, W) — a view — unless `transform` changes it. */
  get(index: number): [Tensor, number] {
    const i = checkIndex(index, this.length, 'ImageFolder');
    return transformSample(this.image(i), this.targets[i], this.transform ?? null, this.targetTransform ?? null);
  }

  _fetchBatch(indices: Int32Array): Tensor[] {
    const idx = indexTensor(indices);
    try {
      return [gatherRows(this.uniform!, idx), gatherRows(this.targetTensor(), idx)];
    } finally {
      idx.dispose();
    }
  }
  private targetsT: Tensor | null = null;
  private targetTensor(): Tensor {
    this.targetsT ??= wrap(native.fromBuffer(BigInt64Array.from(this.targets, BigInt).buffer, 0, [this.targets.length], dtypeCode('int64'), false));
    return this.targetsT;
  }
  _batchTransform(): Transform | null | undefined {
    if (!this.uniform || this.targetTransform || !isPlannable(this.transform)) return undefined;
    return this.transform ?? null;
  }

  /** Frees the decoded images. */
  dispose(): void {
    this.packed?.dispose();
    this.targetsT?.dispose();
    this.packed = this.uniform = this.targetsT = null;
  }
}
