// Datasets (CIFAR-10 binary files, MNIST/Fashion-MNIST IDX files, Debian's
// Fashion-MNIST, ImageFolder), TensorDataset/Subset/randomSplit, the seeded
// Generator against torch.Generator, and the metrics.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { arange, manualSeed, memory, randn, tensor, tidy } from '../lib/index.js';
import { CIFAR10, DataLoader, FashionMNIST, Generator, ImageFolder, MNIST, Subset, TensorDataset, parseIdx, randomSplit } from '../lib/data/index.js';
import { ConfusionMatrix, accuracy, confusionMatrix, perClassAccuracy } from '../lib/train/index.js';
import { ToTensor } from '../lib/transforms/index.js';
import { type EncodedTensor, bitwiseDiff, readFixture } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'vgg-torch-data-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const RECORD = 3073;
/** One batch file in CIFAR-10's binary layout; returns its records. */
function writeCifar(path: string, n: number, seed: number): Buffer {
  const buf = Buffer.alloc(n * RECORD);
  let s = seed;
  for (let i = 0; i < n; i++) {
    buf[i * RECORD] = (i * 3 + seed) % 10;
    for (let p = 1; p < RECORD; p++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      buf[i * RECORD + p] = s >>> 24;
    }
  }
  writeFileSync(path, buf);
  return buf;
}

describe('CIFAR10', () => {
  const root = join(work, 'cifar');
  const folder = join(root, 'cifar-10-batches-bin');
  mkdirSync(folder, { recursive: true });
  const files = [1, 2, 3, 4, 5].map((b) => writeCifar(join(folder, `data_batch_${b}.bin`), 6 + b, b));
  const testFile = writeCifar(join(folder, 'test_batch.bin'), 5, 99);

  it('parses the official binary layout: label byte, then R, G, B planes of 32×32', () => {
    const ds = new CIFAR10({ root, train: true });
    expect(ds.length).toBe(7 + 8 + 9 + 10 + 11);
    expect(ds.data.shape).toEqual([45, 3, 32, 32]);
    expect(ds.data.dtype).toBe('uint8');
    expect(ds.targets.dtype).toBe('int64');
    expect(ds.classes).toEqual(['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect(ds.classToIdx.truck).toBe(9);
    const all = Buffer.concat(files);
    const pixels = ds.data.toTypedArray() as Uint8Array;
    const labels = ds.targets.toTypedArray() as BigInt64Array;
    for (let i = 0; i < 45; i++) {
      expect(Number(labels[i])).toBe(all[i * RECORD]);
      expect(ds.target(i)).toBe(all[i * RECORD]);
      expect(Buffer.from(pixels.subarray(i * 3072, (i + 1) * 3072)).equals(all.subarray(i * RECORD + 1, (i + 1) * RECORD))).toBe(true);
    }
    // get(i): a (3, 32, 32) uint8 image, channel c at row y, column x = byte 1 + 1024c + 32y + x.
    tidy(() => {
      const [img, label] = ds.get(17);
      expect(img.shape).toEqual([3, 32, 32]);
      expect(label).toBe(all[17 * RECORD]);
      expect(Number(img.index(2, 5, 7).item())).toBe(all[17 * RECORD + 1 + 2 * 1024 + 5 * 32 + 7]);
      const [last] = ds.get(-1);
      expect(last.equal(ds.data.select(0, 44))).toBe(true);
    });
    expect(() => ds.get(45)).toThrow(/CIFAR10: index 45 is out of range for 45 samples/);
    // A Subset loads whole batches through the dataset's index.
    tidy(() => {
      const [[x, y]] = [...new DataLoader(new Subset(ds, [44, 3, 17]), { batchSize: 3 })];
      expect(x.equal(ds.data.index(tensor([44, 3, 17])))).toBe(true);
      expect(y.tolist()).toEqual([44, 3, 17].map((i) => all[i * RECORD]));
    });
    const test = new CIFAR10({ root, train: false, transform: new ToTensor() });
    expect(test.length).toBe(5);
    tidy(() => {
      const [img] = test.get(0);
      expect(img.dtype).toBe('float32');
      expect(Math.round(Number(img.index(0, 0, 0).item()) * 255)).toBe(testFile[1]);
    });
    ds.dispose();
    test.dispose();
  });

  it('rejects damaged files with the file name', () => {
    const bad = join(work, 'cifar-bad');
    mkdirSync(join(bad, 'cifar-10-batches-bin'), { recursive: true });
    writeFileSync(join(bad, 'cifar-10-batches-bin', 'test_batch.bin'), Buffer.alloc(RECORD + 5));
    expect(() => new CIFAR10({ root: bad, train: false })).toThrow(/^CIFAR10: .*test_batch\.bin has 3078 bytes, not a whole number of 3073-byte records/);
    const labels = Buffer.alloc(RECORD * 2);
    labels[RECORD] = 10;
    writeFileSync(join(bad, 'cifar-10-batches-bin', 'test_batch.bin'), labels);
    expect(() => new CIFAR10({ root: bad, train: false })).toThrow(/^CIFAR10: record 1 of .*test_batch\.bin has label 10/);
  });
});

/** An IDX file: uint8, dims big-endian. */
function idx(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

describe('MNIST and FashionMNIST', () => {
  it('read IDX files, gzipped or not, from root/<Name>/raw or root', () => {
    const root = join(work, 'mnist');
    const raw = join(root, 'MNIST', 'raw');
    mkdirSync(raw, { recursive: true });
    const imgs = Uint8Array.from({ length: 5 * 28 * 28 }, (_, i) => (i * 13) % 256);
    writeFileSync(join(raw, 'train-images-idx3-ubyte.gz'), gzipSync(idx([5, 28, 28], imgs)));
    writeFileSync(join(raw, 'train-labels-idx1-ubyte'), idx([5], Uint8Array.from([3, 1, 4, 1, 5])));
    const ds = new MNIST({ root });
    expect(ds.length).toBe(5);
    expect(ds.folder).toBe(raw);
    expect(ds.data.shape).toEqual([5, 28, 28]);
    expect(ds.classes[3]).toBe('3 - three');
    tidy(() => {
      const [img, label] = ds.get(2);
      expect(img.shape).toEqual([1, 28, 28]);
      expect(label).toBe(4);
      expect(Number(img.index(0, 1, 2).item())).toBe(imgs[2 * 784 + 28 + 2]);
    });
    expect(() => new MNIST({ root, train: false })).toThrow(
      /^MNIST: t10k-images-idx3-ubyte\.gz and t10k-labels-idx1-ubyte\.gz \(gzipped or not\) not found in .*MNIST\/raw, .*mnist\. Put them in .*MNIST\/raw \(from https:\/\/ossci-datasets.*MD5 9fb629c4189551a2d022fa330f9573f3/,
    );
    expect(() => parseIdx(Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 'x')).toThrow(/x: IDX element type 0xd is not supported/);
    expect(() => parseIdx(idx([3], Uint8Array.from([1, 2])), 'y')).toThrow(/y: IDX header promises 3 bytes/);
    ds.dispose();
  });

  const debian = existsSync(join(FashionMNIST.DEBIAN_FOLDER, 'train-images-idx3-ubyte.gz'));
  it.skipIf(!debian && process.env.CI !== 'true')("reads Debian's dataset-fashion-mnist: 60 000 + 10 000 images, 6 000 / 1 000 per class", () => {
    for (const [train, n, perClass] of [
      [true, 60000, 6000],
      [false, 10000, 1000],
    ] as const) {
      const before = memory().tensors;
      const ds = new FashionMNIST({ train });
      expect(ds.folder).toBe(FashionMNIST.DEBIAN_FOLDER);
      expect(ds.length).toBe(n);
      expect(ds.data.shape).toEqual([n, 28, 28]);
      expect(ds.classes).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
      tidy(() => {
        const c = new Array(10).fill(0);
        for (const v of ds.targets.toTypedArray() as BigInt64Array) c[Number(v)]++;
        expect(c).toEqual(new Array(10).fill(perClass));
        // Real pictures: not blank, full 0…255 range.
        expect(Number(ds.data.max().item())).toBe(255);
        expect(Number(ds.data.float().mean().item())).toBeGreaterThan(40);
      });
      // A root without the files falls back to Debian's folder.
      const fallback = new FashionMNIST({ root: join(work, 'nowhere'), train });
      expect(fallback.folder).toBe(FashionMNIST.DEBIAN_FOLDER);
      ds.dispose();
      fallback.dispose();
      expect(memory().tensors).toBe(before);
    }
  });
});

describe('TensorDataset, Subset, randomSplit', () => {
  it('index tensors together, by subset, and split like torch.utils.data.random_split', () => {
    tidy(() => {
      const x = arange(20).view(10, 2);
      const y = arange(10).mul(10);
      const ds = new TensorDataset(x, y);
      expect(ds.length).toBe(10);
      const [a, b] = ds.get(3);
      expect(a.tolist()).toEqual([6, 7]);
      expect(b.item()).toBe(30);
      expect(() => new TensorDataset(x, arange(3))).toThrow(/TensorDataset: size mismatch between tensors \(first dimensions 10, 3\)/);
      const sub = new Subset(ds, [9, 0, 4]);
      expect(sub.length).toBe(3);
      expect(sub.get(0)[1].item()).toBe(90);
      expect(sub.get(-1)[1].item()).toBe(40);
      expect(() => new Subset(ds, [10])).toThrow(/Subset: index 10 is out of range for 10 samples/);
      manualSeed(0);
      const [p, q] = randomSplit(ds, [7, 3]);
      expect(p.length + q.length).toBe(10);
      expect(new Set([...p.indices, ...q.indices]).size).toBe(10);
      // torch.manual_seed(0); random_split(range(10), [7, 3]) → torch.randperm(10) order.
      expect([...p.indices, ...q.indices]).toEqual([4, 1, 7, 5, 3, 9, 0, 8, 6, 2]);
      const [r, s, t] = randomSplit(ds, [0.5, 0.3, 0.2], new Generator().manualSeed(42));
      expect([r.length, s.length, t.length]).toEqual([5, 3, 2]);
    });
  });
});

describe('Generator', () => {
  const oracle = readFixture<{
    generators: { seed: string; state: EncodedTensor }[];
    defaultGenerator: { seed: string; state: EncodedTensor };
  }>('data/oracle.json');

  it('has torch.Generator().manual_seed(s).get_state() bytes for every seed', () => {
    for (const g of oracle.generators) {
      tidy(() => {
        const gen = new Generator().manualSeed(BigInt(g.seed));
        expect(gen.initialSeed()).toBe(BigInt(g.seed));
        expect(bitwiseDiff(gen.getState(), g.state)).toBeNull();
      });
    }
    tidy(() => {
      const fresh = new Generator();
      expect(fresh.initialSeed()).toBe(BigInt(oracle.defaultGenerator.seed));
      expect(bitwiseDiff(fresh.getState(), oracle.defaultGenerator.state)).toBeNull();
    });
  });

  it('draws its own stream without disturbing the global generator', () => {
    tidy(() => {
      manualSeed(5);
      const expected = randn(4);
      manualSeed(5);
      const g = new Generator().manualSeed(7);
      const p1 = g.randperm(10);
      const p2 = g.randperm(10);
      expect(p1.equal(p2)).toBe(false);
      expect(randn(4).equal(expected)).toBe(true);
      // Same seed, same stream; state round-trips.
      const h = new Generator().manualSeed(7);
      expect(h.randperm(10).equal(p1)).toBe(true);
      const state = h.getState();
      const after = h.randperm(10);
      h.setState(state);
      expect(h.randperm(10).equal(after)).toBe(true);
      // torch.Generator().manual_seed(7); torch.randperm(10, generator=g)
      expect(p1.tolist()).toEqual([5, 0, 3, 4, 1, 7, 9, 6, 8, 2]);
    });
  });
});

describe('ImageFolder', () => {
  it('finds classes and images as torchvision does, decodes them with sharp, and loads batches', async () => {
    const root = join(work, 'folder');
    const px = (r: number, g: number, b: number) => ({ r, g, b });
    const images: [string, number, ReturnType<typeof px>, 1 | 3 | 4][] = [
      ['cat/b.png', 0, px(10, 20, 30), 3],
      ['cat/a.jpg', 0, px(200, 100, 50), 3],
      ['cat/sub/c.png', 0, px(1, 2, 3), 4],
      ['dog/x.png', 1, px(90, 90, 90), 1],
      ['dog/notes.txt', -1, px(0, 0, 0), 3],
    ];
    for (const [rel, , color, channels] of images) {
      const path = join(root, rel);
      mkdirSync(join(path, '..'), { recursive: true });
      if (rel.endsWith('.txt')) {
        writeFileSync(path, 'not an image');
        continue;
      }
      const img = sharp({ create: { width: 5, height: 4, channels: channels === 4 ? 4 : 3, background: { ...color, alpha: 1 } } });
      const out = channels === 1 ? img.grayscale() : img;
      await (rel.endsWith('.jpg') ? out.jpeg({ quality: 100 }) : out.png()).toFile(path);
    }
    mkdirSync(join(root, 'empty-not-a-class-file'), { recursive: true });
    writeFileSync(
      join(root, 'empty-not-a-class-file', 'x.png'),
      await sharp({ create: { width: 5, height: 4, channels: 3, background: px(0, 0, 0) } })
        .png()
        .toBuffer(),
    );
    const ds = await ImageFolder.load(root);
    expect(ds.classes).toEqual(['cat', 'dog', 'empty-not-a-class-file']);
    expect(ds.samples.map(([p, t]) => [p.slice(root.length + 1), t])).toEqual([
      ['cat/a.jpg', 0],
      ['cat/b.png', 0],
      ['cat/sub/c.png', 0],
      ['dog/x.png', 1],
      ['empty-not-a-class-file/x.png', 2],
    ]);
    expect(ds.length).toBe(5);
    tidy(() => {
      const [img, label] = ds.get(1);
      expect(img.shape).toEqual([3, 4, 5]);
      expect(img.dtype).toBe('uint8');
      expect(label).toBe(0);
      expect(img.index(':', 0, 0).tolist()).toEqual([10, 20, 30]);
      const [gray] = ds.get(3);
      expect(gray.index(':', 2, 3).tolist()).toEqual([90, 90, 90]);
      const [rgba] = ds.get(2);
      expect(rgba.shape).toEqual([3, 4, 5]);
    });
    expect(ds._batchTransform()).toBeNull();
    // Same-sized images load as whole batches, transformed in the loader's worker.
    ds.transform = new ToTensor();
    const batches = [...new DataLoader(ds, { batchSize: 2 })];
    expect(batches.map(([x, y]) => [x.shape, x.dtype, y.tolist()])).toEqual([
      [[2, 3, 4, 5], 'float32', [0, 0]],
      [[2, 3, 4, 5], 'float32', [0, 1]],
      [[1, 3, 4, 5], 'float32', [2]],
    ]);
    expect(Math.round(Number(batches[0][0].index(1, 2, 0, 0).item()) * 255)).toBe(30);
    for (const b of batches) for (const t of b) t.dispose();
    ds.dispose();
    rmSync(join(root, 'empty-not-a-class-file'), { recursive: true });
    const lazy = new ImageFolder(root, { channels: 1 });
    expect(() => lazy.get(0)).toThrow(/ImageFolder: the images are not decoded yet; `await folder\.load\(\)`/);
    await lazy.load();
    tidy(() => expect(lazy.get(0)[0].shape).toEqual([1, 4, 5]));
    lazy.dispose();
    mkdirSync(join(root, 'zebra'));
    expect(() => new ImageFolder(root)).toThrow(/ImageFolder: found no valid file for the classes zebra/);
  });
});

describe('metrics', () => {
  it('accuracy (top-k, percent), confusion matrix and per-class accuracy', () => {
    tidy(() => {
      const out = tensor([
        [0.1, 0.7, 0.2],
        [0.8, 0.05, 0.15],
        [0.3, 0.3, 0.4],
        [0.2, 0.5, 0.3],
      ]);
      const y = tensor([1, 2, 2, 0]);
      expect(accuracy(out, y)).toBe(50);
      expect(accuracy(out, y, { topk: [1, 2, 3] })).toEqual([50, 75, 100]);
      expect(accuracy(out, y, { topk: 2 })).toBe(75);
      expect(() => accuracy(out, y, { topk: 4 })).toThrow(/accuracy\(\): topk 4 must be an integer between 1 and 3/);
      const m = confusionMatrix(out, y, 3);
      expect(m.tolist()).toEqual([
        [0, 1, 0],
        [0, 1, 0],
        [1, 0, 1],
      ]);
      expect(perClassAccuracy(m)).toEqual([0, 100, 50]);
      const cm = new ConfusionMatrix(['a', 'b', 'c']);
      cm.update(out, y).update(tensor([0, 0]), tensor([0, 1]));
      expect(cm.total).toBe(6);
      expect(cm.accuracy()).toBeCloseTo(50);
      expect(cm.perClassAccuracy()).toEqual([50, 50, 50]);
      expect(cm.toString().split('\n')[0]).toBe('Accuracy for class: a     is 50.0 %');
      expect(cm.toTensor().tolist()).toEqual([
        [1, 1, 0],
        [1, 1, 0],
        [1, 0, 1],
      ]);
      expect(() => confusionMatrix(tensor([3]), tensor([0]), 3)).toThrow(/predicted class indices must be in \[0, 3\)/);
    });
  });
});
