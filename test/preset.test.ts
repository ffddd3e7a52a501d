// weights.transforms(): the ImageClassification preset against torchvision's, on
// images written by PIL. PNG is lossless, so decoding is identical and the result
// must be bitwise equal; JPEG decoders (sharp's libjpeg-turbo vs torchvision's
// libjpeg) may round the IDCT differently, so JPEG gets a stated tolerance.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VGG16_Weights } from '../lib/index.js';
import { type EncodedTensor, bitwiseDiff, decode, hasTorchPython, requireLiveOracle, PYTHON } from './helpers.js';

const live = hasTorchPython || requireLiveOracle;
const work = mkdtempSync(join(tmpdir(), 'vgg-torch-preset-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const ORACLE = `
import sys, json, base64, torch, numpy as np
from PIL import Image
from torchvision.io import read_image, ImageReadMode
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode
out = sys.argv[1]
rng = np.random.default_rng(0)
h, w = 333, 500
yy, xx = np.mgrid[0:h, 0:w]
img = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) % 256)], -1).astype(np.int32)
img = np.clip(img + rng.integers(-40, 40, size=img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img).save(out + '/img.png')
Image.fromarray(img).save(out + '/img.jpg', quality=90)
def preset(x, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    x = F.resize(x, [256], interpolation=InterpolationMode.BILINEAR, antialias=True)
    x = F.center_crop(x, [224])
    x = F.convert_image_dtype(x, torch.float)
    return F.normalize(x, mean=list(mean), std=list(std)).unsqueeze(0).contiguous()
def enc(t): return {'dtype': 'float32', 'shape': list(t.shape), 'data': base64.b64encode(t.numpy().tobytes()).decode()}
res = {}
for name in ['png', 'jpg']:
    res[name] = enc(preset(read_image(out + '/img.' + name, ImageReadMode.RGB)))
res['features'] = enc(preset(read_image(out + '/img.png', ImageReadMode.RGB), (0.48235, 0.45882, 0.40784), (1.0 / 255.0,) * 3))
json.dump(res, open(out + '/expected.json', 'w'))
`;

describe.skipIf(!live)('ImageClassification preset against torchvision', () => {
  const r = live ? spawnSync(PYTHON, ['-c', ORACLE, work], { encoding: 'utf8' }) : null;
  const expected = () => {
    if (r && r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(readFileSync(join(work, 'expected.json'), 'utf8')) as Record<string, EncodedTensor>;
  };

  it('PNG: bitwise equal to torchvision (resize 256 antialias, crop 224, normalize)', async () => {
    const x = await VGG16_Weights.IMAGENET1K_V1.transforms().fromFile(join(work, 'img.png'));
    expect(x.shape).toEqual([1, 3, 224, 224]);
    expect(bitwiseDiff(x, expected().png)).toBeNull();
    x.dispose();
  });

  it('the feature weights use their own mean and std', async () => {
    const x = await VGG16_Weights.IMAGENET1K_FEATURES.transforms().fromFile(readFileSync(join(work, 'img.png')));
    expect(bitwiseDiff(x, expected().features)).toBeNull();
    x.dispose();
  });

  it('JPEG: within 0.05 (≈ 3 grey levels / std) of torchvision, mean error below 0.01', async () => {
    const x = await VGG16_Weights.IMAGENET1K_V1.transforms().fromFile(join(work, 'img.jpg'));
    const want = decode(expected().jpg);
    const diff = x.sub(want).abs();
    expect(diff.max().item() as number).toBeLessThan(0.05);
    expect(diff.mean().item() as number).toBeLessThan(0.01);
    for (const t of [x, want, diff]) t.dispose();
  });

  it('an undecodable file is a clear error', async () => {
    await expect(VGG16_Weights.DEFAULT.transforms().fromFile(Buffer.from('not an image'))).rejects.toThrow(/decodeImage: cannot decode the image bytes/);
  });

  it('prints like torchvision', () => {
    expect(VGG16_Weights.DEFAULT.transforms().toString()).toBe(
      'ImageClassification(\n    crop_size=[224]\n    resize_size=[256]\n    mean=[0.485, 0.456, 0.406]\n    std=[0.229, 0.224, 0.225]\n    interpolation=InterpolationMode.BILINEAR\n)',
    );
  });
});
