// examples/grad-cam.ts: the Grad-CAM map of a seeded VGG16 against the same computation in PyTorch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage, manualSeed, noGrad, randn, tidy, vgg16 } from '../lib/index.js';
import { gradCam, overlay } from '../examples/grad-cam.js';
import { type EncodedTensor, bitwiseDiff, hasTorchPython, python, requireLiveOracle } from './helpers.js';

// torchvision's vgg16 with the seed of the JS side (manualSeed draws the same weights), a 64×64 input.
const ORACLE = String.raw`
import base64, json, torch, torchvision
import torch.nn.functional as F
enc = lambda t: {'dtype': 'float32', 'shape': list(t.shape), 'data': base64.b64encode(t.contiguous().numpy().tobytes()).decode()}
torch.manual_seed(0)
model = torchvision.models.vgg16().eval()
torch.manual_seed(1)
x = torch.randn(1, 3, 64, 64)
saved = {}
def fwd(m, i, o):
    saved['a'] = o
    o.register_hook(lambda g: saved.__setitem__('g', g))
h = model.features[29].register_forward_hook(fwd)
logits = model(x)
k = int(logits.argmax(1).item())
model.zero_grad()
logits[0, k].backward()
w = saved['g'].mean((2, 3), keepdim=True)
cam = (w * saved['a']).sum(1, keepdim=True).relu()
cam = F.interpolate(cam, size=(64, 64), mode='bilinear', align_corners=False)
cam = cam - cam.min()
cam = cam / (cam.max() + 1e-8)
print(json.dumps({'cam': enc(cam[0, 0].detach()), 'k': k}))
`;

describe.skipIf(!hasTorchPython && !requireLiveOracle)('Grad-CAM example against PyTorch (live oracle)', () => {
  it("the heatmap and the explained class are PyTorch's, bit for bit; the overlay is written as a PNG", async () => {
    const r = await python(['-c', ORACLE]);
    expect(r.status, r.stderr).toBe(0); // Python's warnings on stderr are not failures
    const o = JSON.parse(r.stdout) as { cam: EncodedTensor; k: number };
    manualSeed(0);
    const model = vgg16().eval();
    const dir = mkdtempSync(join(tmpdir(), 'vgg-gradcam-'));
    try {
      manualSeed(1);
      const x = randn([1, 3, 64, 64]);
      const { cam, classIndex } = gradCam(model, x);
      expect(classIndex).toBe(o.k);
      expect(cam.shape).toEqual([64, 64]);
      expect(bitwiseDiff(cam, o.cam)).toBeNull();
      expect(cam.max().item()).toBeGreaterThan(0.99); // a real map, scaled to [0, 1]
      const { saveImage } = await import('../lib/index.js');
      const file = join(dir, 'cam.png');
      const img = tidy(() => noGrad(() => overlay(x.squeeze(0).sigmoid(), cam)));
      await saveImage(img, file);
      const back = await decodeImage(file);
      expect(back.shape).toEqual([3, 64, 64]);
      for (const t of [x, cam, img, back]) t.dispose();
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
