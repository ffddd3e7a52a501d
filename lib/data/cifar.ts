// CIFAR-10 from its official binary version: cifar-10-binary.tar.gz holds
// cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin, each a run of 3073-byte
// records (1 label byte, then 1024 red, 1024 green, 1024 blue pixel bytes — CHW).
// Parsing is three tensor ops per file (wrap, narrow, cat): no per-pixel JS.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { extract as tarExtract } from 'tar';
import { cat } from '../tensor/tensor.js';
import { fromBuffer } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { type Plan, fetching, fileDigest, perform, runAsync, runSync } from '../utils/download.js';
import { checkOptions } from '../utils/args.js';
import { ImageTensorDataset, type ImageDatasetOptions } from './dataset.js';

const RECORD = 1 + 3 * 32 * 32;

export interface CIFAR10Options extends ImageDatasetOptions {
  /** Folder that holds (or will hold) `cifar-10-batches-bin/` and the archive. */
  root: string;
  /** The 50 000 training images (default) or the 10 000 test images. */
  train?: boolean;
  /**
   * Fetch (with a progress bar), check and extract the archive when the files are
   * missing: `new CIFAR10()` blocks while it downloads (in a child process, as
   * torch.hub's synchronous downloads do); `await CIFAR10.load()` does not block.
   */
  download?: boolean;
  /** Archive URL (default: the official one). */
  url?: string;
  /** Expected MD5 of the archive (default: the official one). */
  md5?: string;
  /** Give up the download when no byte arrives for this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Give up a download that takes longer than this in all (default `null`: no limit). */
  totalTimeoutMs?: number | null;
  /** Download progress on stderr (default true). */
  progress?: boolean;
}

/**
 * CIFAR-10 (`torchvision.datasets.CIFAR10`), from the official binary files.
 * Images are held as one uint8 tensor `data` (N, 3, 32, 32); `get(i)` gives
 * `[image (3, 32, 32), label]`, the image transformed by `transform` if given.
 *
 * ```ts
 * const train = new CIFAR10({ root: './data', train: true, download: true, transform });
 * ```
 */
const CIFAR10_OPTIONS = ['root', 'train', 'download', 'url', 'md5', 'progress', 'timeoutMs', 'totalTimeoutMs', 'transform', 'targetTransform'] as const;

export class CIFAR10 extends ImageTensorDataset {
  static readonly URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
  static readonly MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
  static readonly ARCHIVE = 'cifar-10-binary.tar.gz';
  static readonly FOLDER = 'cifar-10-batches-bin';
  static readonly TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
  static readonly TEST_FILES = ['test_batch.bin'];
  /** The tutorial's short class names, by label. */
  static readonly CLASSES = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

  readonly classes: readonly string[] = CIFAR10.CLASSES;
  readonly root: string;
  readonly train: boolean;

  /**
   * Reads the extracted files under `root`, downloading them first (blocking) when
   * they are missing and `download` is set; otherwise a missing file throws, saying
   * where to put what.
   */
  constructor(opts: CIFAR10Options) {
    checkOptions('CIFAR10', opts, CIFAR10_OPTIONS, { required: ['root'] });
    if (!opts || typeof opts.root !== 'string') throw new TypeError('CIFAR10: options.root (the data folder) is required');
    const root = resolve(opts.root);
    const train = opts.train ?? true;
    const files = CIFAR10.files(root, train);
    if (opts.download && files.some((f) => !existsSync(f))) CIFAR10.downloadSync(root, opts);
    const missing = files.find((f) => !existsSync(f));
    if (missing) throw new Error(CIFAR10.missingMessage(root, missing, opts));
    const { data, labels } = readBatches(files);
    super(data, labels, opts);
    this.root = root;
    this.train = train;
  }

  /**
   * Like the constructor, but without blocking: downloads (with a progress bar),
   * checks the MD5 of and extracts `cifar-10-binary.tar.gz` when `download` is set
   * and the files are missing. The archive is kept, so a later extraction needs no download.
   */
  static async load(opts: CIFAR10Options): Promise<CIFAR10> {
    checkOptions('CIFAR10.load', opts, CIFAR10_OPTIONS, { required: ['root'] });
    if (!opts || typeof opts.root !== 'string') throw new TypeError('CIFAR10: options.root (the data folder) is required');
    const root = resolve(opts.root);
    if (opts.download && CIFAR10.files(root, opts.train ?? true).some((f) => !existsSync(f))) {
      await CIFAR10.download(root, opts);
    }
    return new CIFAR10(opts);
  }

  /** Downloads (unless a verified archive is there) and extracts the archive into `root`. */
  static download(root: string, opts: CIFAR10DownloadOptions = {}): Promise<void> {
    return runAsync(downloadAndExtract(root, opts));
  }

  /** {@link CIFAR10.download}, blocking: the download runs in a child process. */
  static downloadSync(root: string, opts: CIFAR10DownloadOptions = {}): void {
    runSync(downloadAndExtract(root, opts));
  }

  /** The batch files of a split. */
  static files(root: string, train: boolean): string[] {
    return (train ? CIFAR10.TRAIN_FILES : CIFAR10.TEST_FILES).map((f) => join(resolve(root), CIFAR10.FOLDER, f));
  }

  private static missingMessage(root: string, missing: string, opts: CIFAR10Options): string {
    const url = opts.url ?? CIFAR10.URL;
    const md5 = opts.md5 ?? CIFAR10.MD5;
    const how = opts.download ? 'The archive holds no such file:' : 'Pass download: true, or';
    return `CIFAR10: ${missing} not found. ${how} download ${url} (the binary version, MD5 ${md5}) and extract it in ${root}, so that ${join(root, CIFAR10.FOLDER)} holds data_batch_1.bin … data_batch_5.bin and test_batch.bin`;
  }
}

/** What {@link CIFAR10.download} takes of the options. */
type CIFAR10DownloadOptions = Pick<CIFAR10Options, 'url' | 'md5' | 'progress' | 'timeoutMs' | 'totalTimeoutMs'>;

/** The one core of {@link CIFAR10.download} and {@link CIFAR10.downloadSync}. */
function* downloadAndExtract(root: string, opts: CIFAR10DownloadOptions): Plan<void> {
  root = resolve(root);
  mkdirSync(root, { recursive: true });
  const archive = join(root, CIFAR10.ARCHIVE);
  const md5 = opts.md5 ?? CIFAR10.MD5;
  const url = opts.url ?? CIFAR10.URL;
  const digest = { sync: () => createHash('md5').update(readFileSync(archive)).digest('hex'), async: () => fileDigest(archive, 'md5') };
  if (!(existsSync(archive) && (yield* perform(digest)) === md5)) {
    try {
      yield* fetching(url, archive, { md5, progress: opts.progress ?? true, timeoutMs: opts.timeoutMs, totalTimeoutMs: opts.totalTimeoutMs });
    } catch (e) {
      throw new Error(`CIFAR10: ${(e as Error).message.replace(/^download: /, '')}; then extract it in ${root} (MD5 ${md5})`, { cause: e });
    }
  }
  yield* perform({ sync: () => extractArchive(archive, root, true), async: () => extractArchive(archive, root) });
}

/** Extracts the archive's `cifar-10-batches-bin/` into `root`, replacing any partial copy. */
function extractArchive(archive: string, root: string, sync: true): void;
function extractArchive(archive: string, root: string): Promise<void>;
function extractArchive(archive: string, root: string, sync = false): void | Promise<void> {
  // Into a scratch folder first, then one rename: an interrupted extraction leaves no half folder.
  const scratch = mkdtempSync(join(root, '.cifar10-extract-'));
  const fail = (e: unknown): never => {
    rmSync(scratch, { recursive: true, force: true });
    throw new Error(`CIFAR10: cannot extract ${archive}: ${(e as Error).message}; delete it and download it again`, { cause: e });
  };
  const finish = (): void => {
    try {
      const extracted = join(scratch, CIFAR10.FOLDER);
      if (!existsSync(extracted) || !statSync(extracted).isDirectory()) {
        throw new Error(`CIFAR10: ${archive} holds no ${CIFAR10.FOLDER}/ folder; is it the binary version (cifar-10-binary.tar.gz)?`);
      }
      const dest = join(root, CIFAR10.FOLDER);
      rmSync(dest, { recursive: true, force: true });
      renameSync(extracted, dest);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  };
  if (sync) {
    try {
      tarExtract({ file: archive, cwd: scratch, strict: true, sync: true });
    } catch (e) {
      fail(e);
    }
    return finish();
  }
  return tarExtract({ file: archive, cwd: scratch, strict: true }).then(finish, fail);
}

/** Reads and concatenates batch files: images (N, 3, 32, 32) uint8 and labels. */
function readBatches(files: string[]): { data: Tensor; labels: Uint8Array } {
  const images: Tensor[] = [];
  const labelParts: Uint8Array[] = [];
  const views: Tensor[] = [];
  try {
    for (const file of files) {
      const buf = readFileSync(file);
      if (buf.length === 0 || buf.length % RECORD !== 0) {
        throw new Error(
          `CIFAR10: ${file} has ${buf.length} bytes, not a whole number of ${RECORD}-byte records (1 label + 3×32×32 pixels); is it the binary version, and complete?`,
        );
      }
      const n = buf.length / RECORD;
      const labels = new Uint8Array(n);
      for (let i = 0; i < n; i++) labels[i] = buf[i * RECORD];
      const bad = labels.findIndex((l) => l > 9);
      if (bad >= 0) throw new Error(`CIFAR10: record ${bad} of ${file} has label ${labels[bad]} (expected 0 to 9); is it CIFAR-10's binary version?`);
      labelParts.push(labels);
      const records = fromBuffer(buf, { dtype: 'uint8', shape: [n, RECORD] }); // borrows the file's bytes
      views.push(records);
      images.push(records.narrow(1, 1, RECORD - 1));
    }
    const flat = images.length === 1 ? images[0].contiguous() : cat(images, 0);
    const data = flat.view(-1, 3, 32, 32);
    flat.dispose();
    const labels = new Uint8Array(labelParts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of labelParts) {
      labels.set(p, o);
      o += p.length;
    }
    return { data, labels };
  } finally {
    for (const t of [...images, ...views]) t.dispose();
  }
}
