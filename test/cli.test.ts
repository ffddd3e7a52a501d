// The vgg-torch command end to end, in child processes: --help and one-line
// errors; train on Fashion-MNIST, Ctrl-C (a real SIGINT) and --resume giving the
// losses of an uninterrupted run; eval of the checkpoint; predict with the
// checkpoint, and with ImageNet-style weights served on 127.0.0.1 that PyTorch
// wrote, against PyTorch's own top-5; summary.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ampRulesNow } from '../lib/amp/releases.js';
import { backends } from '../lib/runtime.js';
import { MetricsLog } from '../lib/train/metricsLog.js';
import { type CliRun, hasTorchPython, python, requireLiveOracle, runCli as cli, startCli as start } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two training runs of 20 batches in one test: minutes on a loaded 2-core machine. A hang detector.
const TRAINING_TIMEOUT = 600_000;

const losses = (file: string) =>
  MetricsLog.read(file)
    .filter((r) => r.kind === 'batch')
    .map((r) => r.loss);

describe('vgg-torch CLI', () => {
  it('prints help for every command and fails with one clear line', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Commands:\n {2}predict/);
    for (const c of ['predict', 'train', 'eval', 'summary', 'export']) {
      const r = await cli([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: vgg-torch ${c}`));
      if (c === 'train') expect(r.stdout).toMatch(/^ {2}--amp <mode> +mixed precision: auto \(default: bf16 autocast on a CPU with native bf16,$/m);
    }
    const cases: [string[], number, RegExp][] = [
      [['frobnicate'], 2, /^vgg-torch: unknown command 'frobnicate'/],
      [['train', '--bogus'], 2, /^vgg-torch: unknown option '--bogus' \(see 'vgg-torch train --help'\)/],
      [['train', '--epochs'], 2, /^vgg-torch: --epochs needs a value /],
      [['predict', 'x.png', '--int8=yes'], 2, /^vgg-torch: --int8 takes no value /],
      [['train', '--epochs', '0'], 2, /^vgg-torch: --epochs must be an integer >= 1, got '0'/],
      [['train', '--arch', 'vgg17'], 2, /^vgg-torch: unknown architecture 'vgg17' \(choose from tutorial, tutorial_bn, vgg11/],
      [['train', '--pretrained'], 2, /^vgg-torch: --pretrained needs one of vgg11/],
      [['predict'], 2, /^vgg-torch: predict needs at least one image/],
      [['predict', join(dir, 'missing.png')], 1, /^vgg-torch: no such image: /],
      [['eval', join(dir, 'missing.pth')], 1, /^vgg-torch: no such checkpoint: /],
      [['summary', 'vgg16', '--input', '3x224'], 2, /^vgg-torch: --input must look like 3x224x224/],
      [['train', '--dataset', 'folder', '--data', join(dir, 'nowhere')], 1, /^vgg-torch: ImageFolder: .* is not a folder/],
      [['train', '--port', '8080'], 2, /^vgg-torch: --port goes with --live/],
      [['train', '--image-size', '64'], 2, /^vgg-torch: --image-size applies to folder datasets/],
      [['train', '--resume', '--overwrite'], 2, /^vgg-torch: --resume continues the run in --out, --overwrite starts it again/],
      [['train', '--amp', 'fp8'], 2, /^vgg-torch: --amp must be one of auto, bf16, fp16, off, got 'fp8'$/m],
    ];
    // fp16 on a CPU libtorch without CPU float16 autocast and GradScaler (before 2.3): refused up front.
    if (!ampRulesNow.cpuGradScaler)
      cases.push([['train', '--amp', 'fp16', '--device', 'cpu'], 1, /^vgg-torch: --amp: amp 'fp16' on the CPU needs libtorch 2\.3 or later/]);
    for (const [args, code, message] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('the built bin (dist/cli.js, what `npx vgg-torch` runs) works', async () => {
    const bin = resolve('dist/cli.js');
    if (!existsSync(bin)) {
      expect(requireLiveOracle).toBe(false); // CI builds dist/ in npm ci (prepare)
      return;
    }
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
    expect(resolve(pkg.bin['vgg-torch'])).toBe(bin);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const r = await new Promise<CliRun>((res) => {
      const child = spawn(process.execPath, [bin, 'summary', 'tutorial'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => res({ code, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Total params: 58,190,506');
  });

  it('summary prints the layer table', async () => {
    const r = await cli(['summary', 'vgg16_bn']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/classifier\.6 \(Linear\) +\[1, 1000\] +4,097,000/);
    expect(r.stdout).toMatch(/138,365,992/); // torchvision's parameter count for vgg16_bn
  });

  describe('train, interrupt, resume, eval, predict', () => {
    const train = [
      'train',
      '--dataset',
      'fashion-mnist',
      '--arch',
      'tutorial_bn',
      '--epochs',
      '2',
      '--limit',
      '320',
      '--test-limit',
      '100',
      '--batch-size',
      '32',
      '--lr',
      '0.01',
      '--log-every',
      '1',
      '--augment',
    ];
    const whole = join(dir, 'whole');
    const parts = join(dir, 'parts');

    beforeAll(async () => {
      await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: 200, g: 200, b: 200 } } })
        .png()
        .toFile(join(dir, 'shoe.png'));
      const r = await cli([...train, '--out', whole]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      // --amp auto by default: bf16 where this CPU has native bf16, with the reason.
      const bf16 = backends.cpu.bf16Support();
      expect(r.stdout).toContain(bf16.native ? `Mixed precision: bf16 autocast (amp 'auto': ${bf16.reason})` : `Precision: fp32 (amp 'auto': ${bf16.reason})`);
      const epochs = MetricsLog.read(join(whole, 'metrics.jsonl')).filter((x) => x.kind === 'epoch');
      expect(epochs.map((e) => e.precision)).toEqual(bf16.native ? ['bf16', 'bf16'] : ['fp32', 'fp32']);
    }, TRAINING_TIMEOUT);

    it(
      'Ctrl-C saves a checkpoint and --resume continues with the same losses',
      async () => {
        const run = start([...train, '--out', parts]);
        // Interrupt once a few batches of the second epoch are done.
        await new Promise<void>((res, rej) => {
          const timer = setInterval(() => {
            if (/^\[2, +3\] loss/m.test(run.output())) {
              clearInterval(timer);
              run.child.kill('SIGINT');
              res();
            }
          }, 20);
          run.done.then(() => rej(new Error('the run ended before it could be interrupted')), rej);
        });
        const stopped = await run.done;
        expect(stopped.code).toBe(130);
        expect(stopped.stdout).toMatch(/Interrupted: stopping after this batch/);
        expect(stopped.stdout).toMatch(/Checkpoint saved to .*checkpoint\.pth; continue with resume/);
        const before = losses(join(parts, 'metrics.jsonl'));
        expect(before.length).toBeGreaterThan(12);
        expect(before.length).toBeLessThan(20);

        const resumed = await cli([...train, '--out', parts, '--resume']);
        expect(resumed.stderr).toBe('');
        expect(resumed.code).toBe(0);
        expect(resumed.stdout).toMatch(new RegExp(`Resuming from .*checkpoint\\.pth: epoch 2, after batch ${before.length - 10}`));
        const reference = losses(join(whole, 'metrics.jsonl'));
        expect(reference).toHaveLength(20);
        expect(losses(join(parts, 'metrics.jsonl'))).toEqual(reference);
      },
      TRAINING_TIMEOUT,
    );

    it('eval reports the accuracy training measured, and writes report.html', async () => {
      const r = await cli(['eval', join(whole, 'checkpoint.pth'), '--limit', '100']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const last = MetricsLog.read(join(whole, 'metrics.jsonl'))
        .filter((x) => x.kind === 'eval')
        .at(-1)!;
      expect(r.stdout).toContain(`Accuracy of the network on the 100 test images: ${last.accuracy.toFixed(1)} %`);
      expect(r.stdout).toMatch(/^Accuracy for class: Trouser is /m);
      expect(r.stdout).toMatch(/^Ankle boot +(\d+ +){9}\d+$/m);
      const html = readFileSync(join(whole, 'report.html'), 'utf8');
      expect(html).toContain('Ankle boot');
    });

    it('refuses to clobber a run, to resume it as something else, or to read a checkpoint as weights', async () => {
      const again = await cli([...train, '--out', whole]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^vgg-torch: .*whole already holds a run: pass --resume to continue it or --overwrite to start again$/m);
      const other = await cli([...train.map((a) => (a === 'tutorial_bn' ? 'tutorial' : a)), '--out', whole, '--resume', '--epochs', '3']);
      expect(other.code).toBe(2);
      expect(other.stderr).toMatch(
        /^vgg-torch: --resume: the run in .* was trained with --arch tutorial_bn; leave --arch out, or start again with --overwrite$/m,
      );
      const batch = await cli(['train', '--out', whole, '--resume', '--epochs', '3', '--batch-size', '64']);
      expect(batch.code).toBe(2);
      expect(batch.stderr).toMatch(/was trained with --batch-size 32; leave --batch-size out/);
      const precision = await cli(['train', '--out', whole, '--resume', '--epochs', '3', '--amp', 'off']);
      expect(precision.code).toBe(2);
      expect(precision.stderr).toMatch(/was trained with --amp auto; leave --amp out, or start again with --overwrite$/m);
      const done = await cli([...train, '--out', whole, '--resume']);
      expect(done.code).toBe(2);
      expect(done.stderr).toMatch(/has already trained 2 epochs; pass --epochs with more to train on$/m);
      // Labels are class indices: eval refuses data whose class names are not the checkpoint's.
      for (const split of ['train', 'val']) {
        for (const c of ['ant', 'zebra']) {
          mkdirSync(join(dir, 'zoo', split, c), { recursive: true });
          copyFileSync(join(dir, 'shoe.png'), join(dir, 'zoo', split, c, 'a.png'));
        }
      }
      const zoo = await cli(['eval', join(whole, 'checkpoint.pth'), '--dataset', 'folder', '--data', join(dir, 'zoo')]);
      expect(zoo.code).toBe(1);
      expect(zoo.stderr).toMatch(/^vgg-torch: .*zoo has classes \[ant, zebra\] but the checkpoint's model was trained on \[T-shirt\/top, Trouser, /m);
      const asWeights = await cli(['predict', join(dir, 'shoe.png'), '--arch', 'vgg11', '--weights', join(whole, 'checkpoint.pth')]);
      expect(asWeights.code).toBe(1);
      expect(asWeights.stderr).toMatch(/is a training checkpoint: use --checkpoint$/m);
    });

    it('--resume continues with the run’s own settings; only --epochs needs saying', async () => {
      const more = join(dir, 'more');
      cpSync(whole, more, { recursive: true });
      const r = await cli(['train', '--out', more, '--resume', '--epochs', '3']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Training tutorial_bn on fashion-mnist: 320 images, 3 epochs, batch 32');
      expect(r.stdout).toMatch(/Resuming from .*checkpoint\.pth: epoch 2 done, step 20/);
      expect(r.stdout).toMatch(/^\[3, +10\] loss/m); // --log-every 1 carried over
      expect(losses(join(more, 'metrics.jsonl'))).toHaveLength(30);
    });

    it('predict classifies with the checkpoint and its classes', async () => {
      const png = join(dir, 'shoe.png');
      const r = await cli(['predict', png, '--checkpoint', join(whole, 'checkpoint.pth'), '--topk', '3']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe(`${png}:`);
      expect(lines.slice(1)).toHaveLength(3);
      const probs = lines
        .slice(1)
        .map((l) => Number(/^ +([\d.]+) % {2}(T-shirt\/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot)$/.exec(l)![1]));
      expect(probs[0]).toBeGreaterThanOrEqual(probs[1]);
      expect(probs.reduce((a, b) => a + b)).toBeLessThanOrEqual(100.01);
    });

    it('predict --int8 quantizes with the calibration images and classifies with the int8 kernels', async () => {
      const png = join(dir, 'shoe.png');
      const fp32 = await cli(['predict', png, '--checkpoint', join(whole, 'checkpoint.pth'), '--topk', '10', '--threads', '1']);
      const r = await cli(['predict', png, '--checkpoint', join(whole, 'checkpoint.pth'), '--topk', '10', '--int8', '--calibrate', dir]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const classesOf = (out: string) =>
        out
          .trim()
          .split('\n')
          .slice(1)
          .map((l) => l.replace(/^ +[\d.]+ % {2}/, ''))
          .sort();
      expect(classesOf(r.stdout)).toEqual(classesOf(fp32.stdout)); // all ten classes, each once
      const probs = r.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => Number(/^ +([\d.]+) %/.exec(l)![1]));
      expect(Math.abs(probs.reduce((a, b) => a + b) - 100)).toBeLessThan(0.1);
      const bad = await cli(['predict', png, '--checkpoint', join(whole, 'checkpoint.pth'), '--calibrate', dir]);
      expect([bad.code, bad.stderr.trim()]).toEqual([2, 'vgg-torch: --calibrate goes with --int8']);
      const none = await cli(['predict', png, '--checkpoint', join(whole, 'checkpoint.pth'), '--int8', '--calibrate', join(dir, 'nowhere')]);
      expect([none.code, none.stderr.trim()]).toEqual([1, `vgg-torch: no such folder: ${join(dir, 'nowhere')}`]);
    });
  });

  it('predict with weights served on 127.0.0.1 gives PyTorch’s top-5', async () => {
    if (!hasTorchPython) {
      expect(requireLiveOracle).toBe(false);
      return;
    }
    const work = join(dir, 'predict');
    const img = join(dir, 'noise.png');
    const pixels = Buffer.alloc(64 * 48 * 3);
    let s = 7;
    for (let i = 0; i < pixels.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      pixels[i] = s >>> 24;
    }
    await sharp(pixels, { raw: { width: 64, height: 48, channels: 3 } })
      .png()
      .toFile(img);
    // PyTorch writes the weights (vgg11, seeded init) and its own top-5 for the image.
    const script = `
import sys, os, json, torch, torchvision
from torchvision.io import read_image
from torchvision.models import VGG11_Weights
os.makedirs(sys.argv[1], exist_ok=True)
torch.manual_seed(0)
m = torchvision.models.vgg11().eval()
torch.save(m.state_dict(), os.path.join(sys.argv[1], 'weights.pth'))
w = VGG11_Weights.IMAGENET1K_V1
with torch.no_grad():
    p, c = m(w.transforms()(read_image(sys.argv[2])).unsqueeze(0)).softmax(1).topk(5)
print(json.dumps([['%.2f' % (float(x) * 100), w.meta['categories'][int(i)]] for x, i in zip(p[0], c[0])]))
`;
    const py = await python(['-c', script, work, img]);
    expect(py.status, py.stderr).toBe(0); // Python's warnings on stderr are not failures
    const expected = JSON.parse(py.stdout) as [string, string][];
    // torch.hub names files <name>-<first 8 hex digits of the SHA-256>.pth and checks them.
    const sha = createHash('sha256')
      .update(readFileSync(join(work, 'weights.pth')))
      .digest('hex');
    const name = `vgg11-${sha.slice(0, 8)}.pth`;
    renameSync(join(work, 'weights.pth'), join(work, name));
    const server = createServer((req, res) => {
      const file = join(work, (req.url ?? '/').slice(1));
      if (!existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}`;
      const r = await cli(['predict', img, '--arch', 'vgg11', '--weights', url], { TORCH_HOME: join(dir, 'torch-home') });
      expect(r.stderr.split('\n').filter((l) => l.startsWith('vgg-torch:'))).toEqual([]);
      expect(r.code).toBe(0);
      expect(existsSync(join(dir, 'torch-home', 'hub', 'checkpoints', name))).toBe(true);
      const got = r.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => {
          const m = /^ +([\d.]+) % {2}(.+)$/.exec(l)!;
          return [m[1], m[2]];
        });
      expect(got).toEqual(expected);
      // A file whose bytes do not match the hash in its name is refused.
      const bad = `vgg11-00000000.pth`;
      renameSync(join(work, name), join(work, bad));
      const r2 = await cli(['predict', img, '--arch', 'vgg11', '--weights', url.replace(name, bad)], { TORCH_HOME: join(dir, 'torch-home') });
      expect(r2.code).toBe(1);
      expect(r2.stderr).toMatch(/^vgg-torch: download: SHA-256 mismatch .*the file was not kept$/m);
    } finally {
      server.close();
    }
  });
});
