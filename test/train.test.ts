// The training toolkit on real data (Debian's Fashion-MNIST): fit() drives the
// loss down to well above chance, the same seed gives the same losses, and a
// run interrupted mid-epoch (and again at an epoch boundary) then resumed from
// its checkpoints gives exactly the losses of an uninterrupted run, random
// augmentation and dropout included. Checkpoints load in PyTorch.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DataLoader, FashionMNIST, Subset, makeLayers, manualSeed, memory, nn, optim, transforms } from '../lib/index.js';
import { type FitOptions, type MetricsRecord, MetricsLog, ProgressBar, fit, loadCheckpoint } from '../lib/train/index.js';
import { hasTorchPython, python, requireLiveOracle } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Collects what fit() prints. */
class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const normalize = () => [new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])];
const slice = (train: boolean, n: number, augment: boolean) => {
  const extra = augment ? [new transforms.RandomCrop(28, { padding: 2 }), new transforms.RandomHorizontalFlip()] : [];
  const ds = new FashionMNIST({ train, transform: new transforms.Compose([...extra, ...normalize()]) });
  return new Subset(
    ds,
    Array.from({ length: n }, (_, i) => i),
  );
};

/** A slim VGG: two conv blocks with batch norm, dropout, one linear layer. */
const slimVgg = () =>
  new nn.Sequential(makeLayers([16, 'M', 32, 'M'], { batchNorm: true, inChannels: 1 }), new nn.Flatten(), new nn.Dropout(0.3), new nn.Linear(32 * 7 * 7, 10));

/** One training setup, fresh, from the same seed. */
function setup(opts: { trainImages: number; augment: boolean; batch: number }) {
  manualSeed(777);
  const model = slimVgg();
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.02, momentum: 0.9 });
  const scheduler = new optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
  const trainLoader = new DataLoader(slice(true, opts.trainImages, opts.augment), { batchSize: opts.batch, shuffle: true, seed: 7 });
  const testLoader = new DataLoader(slice(false, 500, false), { batchSize: 250 });
  return { model, optimizer, scheduler, trainLoader, testLoader };
}

const losses = (records: readonly MetricsRecord[]) => records.filter((r) => r.kind === 'batch').map((r) => r.loss);
const epochs = (records: readonly MetricsRecord[]) =>
  records.filter((r) => r.kind === 'epoch').map((r) => [r.trainLoss, r.trainAccuracy, r.testLoss, r.testAccuracy, r.lr]);

describe('fit()', () => {
  it('trains a slim VGG on 2,000 Fashion-MNIST images: the loss falls, accuracy is far above chance, the same seed repeats', async () => {
    const runs = [];
    for (let r = 0; r < 2; r++) {
      const before = memory().tensors;
      const s = setup({ trainImages: 2000, augment: false, batch: 50 });
      const out = new Sink();
      const result = await fit({
        ...s,
        epochs: 1,
        logEvery: 1,
        stream: out,
        handleSignals: false,
        classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      });
      runs.push({ result, out: out.text });
      s.model.dispose();
      s.optimizer.dispose();
      for (const l of [s.trainLoader, s.testLoader]) ((l.dataset as Subset).dataset as FashionMNIST).dispose();
      expect(memory().tensors).toBe(before); // the loop, evaluation and checkpointing leak nothing
    }
    const [a, b] = runs;
    const la = losses(a.result.metrics);
    expect(la).toHaveLength(40);
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    expect(la[0]).toBeGreaterThan(2.0); // ~ln 10 at the start
    expect(mean(la.slice(-10))).toBeLessThan(0.5 * mean(la.slice(0, 5)));
    expect(a.result.evaluation!.accuracy).toBeGreaterThan(60); // chance is 10 %
    expect(a.result.evaluation!.total).toBe(500);
    expect(losses(b.result.metrics)).toEqual(la); // bitwise: same seed, same numbers
    expect(epochs(b.result.metrics)).toEqual(epochs(a.result.metrics));
    // Plain lines when the stream is not a terminal: the tutorial's format, then the report.
    expect(a.out).toMatch(/^\[1, {5}1\] loss: \d\.\d{3} {2}acc: /m);
    expect(a.out).toMatch(/^Accuracy of the network on the 500 test images: \d+\.\d %/m);
    expect(a.out).toMatch(/^Confusion matrix \(rows: true class, columns: predicted\):$/m);
    expect(a.out).not.toContain('\r');
  });

  it('resumes from mid-epoch and epoch-boundary checkpoints with exactly the losses of an uninterrupted run', async () => {
    const cfg = { trainImages: 1000, augment: true, batch: 50 }; // 20 batches per epoch
    const common = (s: ReturnType<typeof setup>): FitOptions => ({ ...s, epochs: 3, logEvery: 1, stream: new Sink(), handleSignals: false });

    const whole = setup(cfg);
    const reference = await fit({ ...common(whole), outDir: join(dir, 'whole') });
    whole.model.dispose();
    expect(reference.interrupted).toBe(false);
    expect(losses(reference.metrics)).toHaveLength(60);

    // Stop at step 13 (mid-epoch 1), then at step 40 (the end of epoch 2), then finish: each leg in fresh objects.
    const out = join(dir, 'parts');
    for (const [i, stopAt] of [13, 40, Infinity].entries()) {
      const s = setup(cfg);
      s.model.apply((m) => m.training); // fresh weights from the seed: resume must overwrite them all
      const abort = new AbortController();
      const r = await fit({
        // The last leg hands fit() a checkpoint already read (as the CLI does after checking its meta).
        ...common(s),
        outDir: out,
        resume: i === 2 ? loadCheckpoint(join(out, 'checkpoint.pth')) : i > 0,
        signal: abort.signal,
        onRecord: (rec) => {
          if (rec.kind === 'batch' && rec.step === stopAt) abort.abort();
        },
      });
      s.model.dispose();
      if (stopAt === Infinity) {
        expect(r.interrupted).toBe(false);
        expect(losses(r.metrics)).toEqual(losses(reference.metrics));
        expect(epochs(r.metrics)).toEqual(epochs(reference.metrics));
        expect(losses(MetricsLog.read(join(out, 'metrics.jsonl')))).toEqual(losses(reference.metrics));
      } else {
        expect(r.interrupted).toBe(true);
        const ck = loadCheckpoint(r.checkpoint!);
        expect([ck.epoch, ck.batch, ck.step]).toEqual(stopAt === 13 ? [0, 13, 13] : [2, 0, 40]);
        expect(ck.loaderState() === null).toBe(stopAt === 40);
        ck.dispose();
      }
    }
    expect(existsSync(join(out, 'chart.html'))).toBe(true);
    expect(readFileSync(join(out, 'chart.html'), 'utf8')).toContain('<canvas');
  });

  it('writes checkpoints PyTorch loads into the same model, optimizer and scheduler', async () => {
    if (!hasTorchPython) {
      expect(requireLiveOracle).toBe(false);
      return;
    }
    const s = setup({ trainImages: 200, augment: false, batch: 50 });
    const r = await fit({ ...s, epochs: 1, stream: new Sink(), handleSignals: false, outDir: join(dir, 'py'), meta: { arch: 'slim' } });
    s.model.dispose();
    const script = `
import sys, json, torch, torch.nn as nn
c = torch.load(sys.argv[1])
m = nn.Sequential(nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(True), nn.MaxPool2d(2, 2),
    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(True), nn.MaxPool2d(2, 2)),
    nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 7 * 7, 10))
m.load_state_dict(c['model'])
opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
opt.load_state_dict(c['optimizer'])
sch = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
sch.load_state_dict(c['scheduler'])
torch.set_rng_state(c['rng_state'])
print(json.dumps({'epoch': c['epoch'], 'step': c['step'], 'meta': c['meta'], 'lr': opt.param_groups[0]['lr'],
  'last_lr': sch.get_last_lr(), 'kinds': sorted({r['kind'] for r in c['metrics']}), 'bufs': len(opt.state)}))
`;
    const py = await python(['-c', script, r.checkpoint!]);
    expect(py.status, py.stderr).toBe(0); // Python's warnings on stderr are not failures
    const got = JSON.parse(py.stdout);
    expect(got).toEqual({ epoch: 1, step: 4, meta: { arch: 'slim' }, lr: 0.01, last_lr: [0.01], kinds: ['epoch', 'eval'], bufs: 10 });
  });

  it('rejects what it cannot use with one clear error', async () => {
    const s = setup({ trainImages: 100, augment: false, batch: 50 });
    await expect(fit({ ...s, epochs: 0 })).rejects.toThrow(/epochs must be a positive integer/);
    await expect(fit({ ...s, epochs: 1, resume: join(dir, 'nope.pth') })).rejects.toThrow(/no checkpoint to resume from/);
    await expect(fit({ ...s, epochs: 1, resume: true })).rejects.toThrow(/resume: true needs outDir/);
    expect(() => loadCheckpoint(join(dir, 'whole', 'metrics.jsonl'))).toThrow();
    const aborted = new AbortController();
    aborted.abort();
    await expect(fit({ ...s, epochs: 1, signal: aborted.signal })).rejects.toThrow(/the abort signal was already aborted/);
    const empty = new DataLoader(slice(true, 10, false), { batchSize: 50, dropLast: true });
    await expect(fit({ ...s, trainLoader: empty, epochs: 1 })).rejects.toThrow(/the training loader gives no batches/);
    // A finished run cannot be resumed for the same number of epochs.
    await expect(fit({ ...s, epochs: 3, outDir: join(dir, 'whole'), resume: true, stream: new Sink() })).rejects.toThrow(
      /has already trained 3 epochs; ask for more than 3 to continue/,
    );
    // A checkpoint handed in is fit()'s to free, even when fit() refuses to start.
    const before = memory().tensors;
    const ck = loadCheckpoint(join(dir, 'whole', 'checkpoint.pth'));
    expect(memory().tensors).toBeGreaterThan(before);
    await expect(fit({ ...s, epochs: 1, signal: aborted.signal, resume: ck })).rejects.toThrow(/already aborted/);
    expect(memory().tensors).toBe(before);
    s.model.dispose();
  });
});

describe('ProgressBar', () => {
  it('redraws in place on a terminal and prints nothing but log lines elsewhere', () => {
    const tty = Object.assign(new Sink(), { isTTY: true, columns: 100 });
    const bar = new ProgressBar({ total: 4, label: 'epoch 1/2', stream: tty, fps: 1e9 });
    for (let i = 1; i <= 4; i++) bar.update(i, { loss: 1 / i, accuracy: 25 * i, images: 32 * i });
    bar.log('[1,     4] loss: 0.250');
    bar.finish('epoch 1/2 done');
    expect(tty.text).toContain('\r\x1b[2Kepoch 1/2 [');
    expect(tty.text).toMatch(/4\/4 loss 0\.250 acc 100\.0% \d+ img\/s ETA 00:00/);
    expect(tty.text).toContain('[1,     4] loss: 0.250\n');
    expect(tty.text.endsWith('epoch 1/2 done\n')).toBe(true);

    const file = new Sink();
    const plain = new ProgressBar({ total: 4, label: 'epoch 1/2', stream: file });
    for (let i = 1; i <= 4; i++) plain.update(i, { loss: 1, accuracy: 50, images: 32 * i });
    plain.log('a line');
    plain.finish('done');
    expect(file.text).toBe('a line\ndone\n');
  });
});
