// MNIST and Fashion-MNIST from their IDX files (gzipped or not). FashionMNIST
// also finds the files of Debian's dataset-fashion-mnist package
// (/usr/share/datasets/fashion-mnist/*-ubyte.gz), so training works offline.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fromBuffer } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { type Plan, fetching, runAsync, runSync } from '../utils/download.js';
import { checkOptions } from '../utils/args.js';
import { ImageTensorDataset, type ImageDatasetOptions } from './dataset.js';

/** An IDX file's dimensions and uint8 payload. */
export interface IdxFile {
  dims: number[];
  data: Uint8Array;
}

/** Parses an IDX file (gzipped or not); only the unsigned-byte type (0x08) is accepted. */
export function parseIdx(raw: Uint8Array, what = 'IDX'): IdxFile {
  const buf = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${what}: not an IDX file (bad magic number)`);
  if (buf[2] !== 0x08) throw new Error(`${what}: IDX element type 0x${buf[2].toString(16)} is not supported (expected 0x08, unsigned byte)`);
  const ndim = buf[3];
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw new Error(`${what}: truncated IDX header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims = Array.from({ length: ndim }, (_, i) => dv.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + count) {
    throw new Error(`${what}: IDX header promises ${count} bytes of data for shape [${dims.join(', ')}], the file has ${buf.length - header}`);
  }
  return { dims, data: buf.subarray(header) };
}

export interface MNISTOptions extends ImageDatasetOptions {
  /**
   * Data folder: files are looked for in `root/<Name>/raw/` (torchvision's layout)
   * and in `root` itself. FashionMNIST falls back to Debian's package folder.
   */
  root?: string;
  /** The 60 000 training images (default) or the 10 000 test images. */
  train?: boolean;
  /** Download missing files into `root/<Name>/raw/` (the constructor blocks meanwhile; `await load()` does not). */
  download?: boolean;
  /** Download progress on stderr (default true). */
  progress?: boolean;
  /** Give up a download when no byte arrives for this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Give up a download that takes longer than this in all (default `null`: no limit). */
  totalTimeoutMs?: number | null;
}

const MNIST_OPTIONS = ['root', 'train', 'download', 'progress', 'timeoutMs', 'totalTimeoutMs', 'transform', 'targetTransform'] as const;

/** What MNIST's downloads take of its options. */
type MNISTDownloadOptions = Pick<MNISTOptions, 'progress' | 'timeoutMs' | 'totalTimeoutMs'>;

type Resource = readonly [file: string, md5: string];

/**
 * MNIST (`torchvision.datasets.MNIST`): 28×28 grayscale digits. `data` is uint8
 * (N, 28, 28); `get(i)` gives `[image (1, 28, 28), label]`.
 */
export class MNIST extends ImageTensorDataset {
  static readonly MIRRORS: readonly string[] = ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'http://yann.lecun.com/exdb/mnist/'];
  static readonly RESOURCES: readonly Resource[] = [
    ['train-images-idx3-ubyte.gz', 'f68b3c2dcbeaaa9fbdd348bbdeb94873'],
    ['train-labels-idx1-ubyte.gz', 'd53e105ee54ea40749a09fcbcd1e9432'],
    ['t10k-images-idx3-ubyte.gz', '9fb629c4189551a2d022fa330f9573f3'],
    ['t10k-labels-idx1-ubyte.gz', 'ec29112dd5afa0611ce80d1b7f02629c'],
  ];
  static readonly CLASSES: readonly string[] = [
    '0 - zero',
    '1 - one',
    '2 - two',
    '3 - three',
    '4 - four',
    '5 - five',
    '6 - six',
    '7 - seven',
    '8 - eight',
    '9 - nine',
  ];
  /** Extra folders searched after `root` (FashionMNIST: Debian's). */
  static readonly SYSTEM_FOLDERS: readonly string[] = [];

  readonly classes: readonly string[];
  readonly train: boolean;
  /** The folder the files were read from. */
  readonly folder: string;

  /** Reads the IDX files, downloading them first (blocking) with `download`; a missing file throws, saying where to put what. */
  constructor(opts: MNISTOptions = {}) {
    const cls = new.target as unknown as typeof MNIST;
    checkOptions(cls.name, opts, MNIST_OPTIONS);
    const train = opts.train ?? true;
    const [images, labels] = cls.splitFiles(train);
    if (opts.download && opts.root && cls.findFolder(opts.root, train) === null) cls.downloadSync(opts.root, opts);
    const folder = cls.findFolder(opts.root, train);
    if (folder === null) throw new Error(cls.missingMessage(opts, train));
    const name = cls.name;
    const imgPath = withGz(join(folder, images));
    const lblPath = withGz(join(folder, labels));
    const img = parseIdx(readFileSync(imgPath), `${name}: ${imgPath}`);
    const lbl = parseIdx(readFileSync(lblPath), `${name}: ${lblPath}`);
    if (img.dims.length !== 3 || lbl.dims.length !== 1 || img.dims[0] !== lbl.dims[0]) {
      throw new Error(`${name}: ${imgPath} has shape [${img.dims.join(', ')}] and ${lblPath} [${lbl.dims.join(', ')}]; expected [N, H, W] images and N labels`);
    }
    // The tensor borrows the decompressed bytes: no copy.
    const data: Tensor = fromBuffer(img.data, { dtype: 'uint8', shape: img.dims });
    super(data, lbl.data, opts);
    this.classes = cls.CLASSES;
    this.train = train;
    this.folder = folder;
  }

  /** Like the constructor, downloading missing files first when `download` is set. */
  static async load<D extends MNIST>(this: (new (o?: MNISTOptions) => D) & typeof MNIST, opts: MNISTOptions = {}): Promise<D> {
    checkOptions(`${this.name}.load`, opts, MNIST_OPTIONS);
    const train = opts.train ?? true;
    if (opts.download && this.findFolder(opts.root, train) === null) {
      if (!opts.root) throw new Error(`${this.name}: download needs options.root, the folder to download into`);
      await this.download(opts.root, opts);
    }
    return new this(opts);
  }

  /** Downloads the four files (MD5-checked) into `root/<Name>/raw/`, trying each mirror. */
  static download(root: string, opts: MNISTDownloadOptions = {}): Promise<void> {
    return runAsync(downloads(this, root, opts));
  }

  /** {@link MNIST.download}, blocking: each file is fetched by a child process. */
  static downloadSync(root: string, opts: MNISTDownloadOptions = {}): void {
    runSync(downloads(this, root, opts));
  }

  /** The image and label file names (gzipped) of a split. */
  static splitFiles(train: boolean): [string, string] {
    const r = this.RESOURCES.map(([f]) => f);
    return train ? [r[0], r[1]] : [r[2], r[3]];
  }

  /** The first folder holding both files of the split (plain or .gz), or null. */
  static findFolder(root: string | undefined, train: boolean): string | null {
    const [images, labels] = this.splitFiles(train);
    for (const dir of this.candidates(root)) {
      if (hasFile(join(dir, images)) && hasFile(join(dir, labels))) return dir;
    }
    return null;
  }

  static candidates(root: string | undefined): string[] {
    const dirs = root ? [join(resolve(root), this.name, 'raw'), resolve(root)] : [];
    return [...dirs, ...this.SYSTEM_FOLDERS];
  }

  private static missingMessage(opts: MNISTOptions, train: boolean): string {
    const [images, labels] = this.splitFiles(train);
    const md5 = Object.fromEntries(this.RESOURCES);
    const where = this.candidates(opts.root);
    const dest = opts.root ? join(resolve(opts.root), this.name, 'raw') : `<root>/${this.name}/raw`;
    const extra = this.name === 'FashionMNIST' ? ", install Debian's dataset-fashion-mnist package," : '';
    const how = opts.download ? 'give root, the folder to download into' : 'pass download: true (with root)';
    return (
      `${this.name}: ${images} and ${labels} (gzipped or not) not found${where.length ? ` in ${where.join(', ')}` : ' (no root given)'}. ` +
      `Put them in ${dest} (from ${this.MIRRORS[0]}, MD5 ${md5[images]} and ${md5[labels]})${extra} or ${how}`
    );
  }
}

/**
 * Fashion-MNIST (`torchvision.datasets.FashionMNIST`): 28×28 grayscale pictures
 * of clothes in 10 classes. Without `root` (or when `root` lacks the files) it
 * reads Debian's dataset-fashion-mnist package from /usr/share/datasets/fashion-mnist.
 */
export class FashionMNIST extends MNIST {
  static readonly DEBIAN_FOLDER = '/usr/share/datasets/fashion-mnist';
  static override readonly MIRRORS: readonly string[] = ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'];
  static override readonly RESOURCES: readonly Resource[] = [
    ['train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'],
    ['train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'],
    ['t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'],
    ['t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310'],
  ];
  static override readonly CLASSES: readonly string[] = [
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
  ];
  static override readonly SYSTEM_FOLDERS: readonly string[] = [FashionMNIST.DEBIAN_FOLDER];
}

/** The one core of {@link MNIST.download} and {@link MNIST.downloadSync}. */
function* downloads(cls: typeof MNIST, root: string, opts: MNISTDownloadOptions): Plan<void> {
  const raw = join(resolve(root), cls.name, 'raw');
  mkdirSync(raw, { recursive: true });
  for (const [file, md5] of cls.RESOURCES) {
    const dest = join(raw, file);
    if (existsSync(dest)) continue;
    const errors: string[] = [];
    for (const mirror of cls.MIRRORS) {
      try {
        yield* fetching(`${mirror}${file}`, dest, { md5, progress: opts.progress ?? true, timeoutMs: opts.timeoutMs, totalTimeoutMs: opts.totalTimeoutMs });
        break;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (!existsSync(dest)) throw new Error(`${cls.name}: could not download ${file} from any mirror:\n  ${errors.join('\n  ')}`);
  }
}

/** `name.gz` → whichever of `name.gz` and `name` exists (the .gz first). */
function withGz(path: string): string {
  if (existsSync(path)) return path;
  return path.replace(/\.gz$/, '');
}
function hasFile(gzPath: string): boolean {
  return existsSync(gzPath) || existsSync(gzPath.replace(/\.gz$/, ''));
}
