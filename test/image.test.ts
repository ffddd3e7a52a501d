// makeGrid and saveImage against torchvision.utils.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { makeGrid, randn, saveImage, tidy } from '../lib/index.js';
import { type EncodedTensor, bitwiseDiff, decode, hasTorchPython, requireLiveOracle, PYTHON } from './helpers.js';

const live = hasTorchPython || requireLiveOracle;
const work = mkdtempSync(join(tmpdir(), 'vgg-torch-grid-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const ORACLE = `
import sys, json, base64, torch
from torchvision.utils import make_grid, save_image
torch.manual_seed(0)
x = torch.rand(7, 3, 5, 6); g = torch.randn(5, 1, 4, 4) * 3
def enc(t): t = t.contiguous(); return {'dtype': str(t.dtype).replace('torch.', ''), 'shape': list(t.shape), 'data': base64.b64encode(t.numpy().tobytes()).decode()}
out = {'x': enc(x), 'g': enc(g),
  'default': enc(make_grid(x)), 'nrow3': enc(make_grid(x, nrow=3, padding=1, pad_value=0.5)),
  'gray_norm': enc(make_grid(g, nrow=2, normalize=True)), 'scale_each': enc(make_grid(g, normalize=True, scale_each=True)),
  'range': enc(make_grid(g, normalize=True, value_range=(-1, 1))), 'single': enc(make_grid(x[:1]))}
save_image(x, sys.argv[1] + '/torch.png', nrow=4)
json.dump(out, open(sys.argv[1] + '/grid.json', 'w'))
`;

describe.skipIf(!live)('makeGrid and saveImage against torchvision.utils', () => {
  const r = live ? spawnSync(PYTHON, ['-c', ORACLE, work], { encoding: 'utf8' }) : null;
  const fx = () => {
    if (r && r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(readFileSync(join(work, 'grid.json'), 'utf8')) as Record<string, EncodedTensor>;
  };

  it('lays images out bit for bit as make_grid (padding, nrow, pad value, gray, normalize, scale_each, value_range)', () => {
    const f = fx();
    tidy(() => {
      const x = decode(f.x);
      const g = decode(f.g);
      expect(bitwiseDiff(makeGrid(x), f.default)).toBeNull();
      expect(bitwiseDiff(makeGrid(x, { nrow: 3, padding: 1, padValue: 0.5 }), f.nrow3)).toBeNull();
      expect(bitwiseDiff(makeGrid(g, { nrow: 2, normalize: true }), f.gray_norm)).toBeNull();
      expect(bitwiseDiff(makeGrid(g, { normalize: true, scaleEach: true }), f.scale_each)).toBeNull();
      expect(bitwiseDiff(makeGrid(g, { normalize: true, valueRange: [-1, 1] }), f.range)).toBeNull();
      expect(bitwiseDiff(makeGrid(x.index('0:1')), f.single)).toBeNull();
    });
  });

  it('saveImage writes the same pixels as save_image', async () => {
    const x = decode(fx().x);
    await saveImage(x, join(work, 'ours.png'), { nrow: 4 });
    x.dispose();
    const [ours, theirs] = await Promise.all(['ours.png', 'torch.png'].map((f) => sharp(join(work, f)).raw().toBuffer({ resolveWithObject: true })));
    expect(ours.info).toEqual(theirs.info);
    expect(ours.data.equals(theirs.data)).toBe(true);
  });
});

describe('makeGrid input checks', () => {
  it('rejects shapes it cannot lay out', () => {
    const t = randn(2, 2, 2, 2, 2);
    expect(() => makeGrid(t)).toThrow(/expected \(N, C, H, W\) images, got shape \[2, 2, 2, 2, 2\]/);
    expect(() => makeGrid(randn(2, 3, 4, 4), { nrow: 0 })).toThrow(/nrow must be a positive integer/);
    t.dispose();
  });
});
