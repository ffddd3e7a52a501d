// gradCam() (lib/models/gradCam.ts) against Grad-CAM computed in PyTorch with a
// forward hook and a tensor hook, and the example that draws it (examples/grad-cam.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Tensor, decodeImage, gradCam, inferenceMode, manualSeed, nn, noGrad, randn, saveImage, tidy, vgg11_bn, vgg16 } from '../lib/index.js';
import { overlay } from '../examples/grad-cam.js';
import { type EncodedTensor, bitwiseDiff, hasTorchPython, python, requireLiveOracle } from './helpers.js';

// torchvision's VGGs with the seeds of the JS side (manualSeed draws the same
// weights and inputs); the map computed as in pytorch-grad-cam: hooks on the
// target layer's output, backward of the class score.
const ORACLE = String.raw`
import base64, json, torch, torchvision
import torch.nn.functional as F
enc = lambda t: {'dtype': 'float32', 'shape': list(t.shape), 'data': base64.b64encode(t.contiguous().numpy().tobytes()).decode()}
def grad_cam(model, x, layer, k=None):
    saved = {}
    def fwd(m, i, o):
        saved['a'] = o
        o.register_hook(lambda g: saved.__setitem__('g', g))
    h = model.features[layer].register_forward_hook(fwd)
    logits = model(x)
    h.remove()
    k = int(logits.argmax(1).item()) if k is None else k
    model.zero_grad()
    logits[0, k].backward()
    w = saved['g'].mean((2, 3), keepdim=True)
    cam = (w * saved['a']).sum(1, keepdim=True).relu()
    cam = F.interpolate(cam, size=x.shape[2:], mode='bilinear', align_corners=False)
    cam = cam - cam.min()
    cam = cam / (cam.max() + 1e-8)
    return {'cam': enc(cam[0, 0].detach()), 'k': k}
out = {}
torch.manual_seed(0)
model = torchvision.models.vgg16().eval()
torch.manual_seed(1)
out['vgg16'] = grad_cam(model, torch.randn(1, 3, 64, 64), 29)
torch.manual_seed(2)
model = torchvision.models.vgg11_bn().eval()
torch.manual_seed(3)
out['vgg11_bn'] = grad_cam(model, torch.randn(1, 3, 48, 40), 20, 7)
print(json.dumps(out))
`;

interface Case {
  cam: EncodedTensor;
  k: number;
}

describe.skipIf(!hasTorchPython && !requireLiveOracle)('gradCam() against PyTorch (live oracle)', () => {
  let oracle: Promise<Record<string, Case>> | undefined;
  const expected = (): Promise<Record<string, Case>> =>
    (oracle ??= python(['-c', ORACLE]).then((r) => {
      expect(r.status, r.stderr).toBe(0); // Python's warnings on stderr are not failures
      return JSON.parse(r.stdout) as Record<string, Case>;
    }));

  it("vgg16, default layer (features.29) and class: PyTorch's heatmap and class bit for bit; the overlay is written as a PNG", async () => {
    const o = (await expected()).vgg16;
    manualSeed(0);
    const model = vgg16().eval();
    const dir = mkdtempSync(join(tmpdir(), 'vgg-gradcam-'));
    try {
      manualSeed(1);
      const x = randn([1, 3, 64, 64]);
      const { heatmap, classIndex } = gradCam(model, x);
      expect(classIndex).toBe(o.k);
      expect(heatmap.shape).toEqual([64, 64]);
      expect(heatmap.dtype).toBe('float32');
      expect(bitwiseDiff(heatmap, o.cam)).toBeNull();
      expect(heatmap.max().item()).toBeGreaterThan(0.99); // a real map, scaled to [0, 1]
      expect(heatmap.min().item()).toBe(0);
      // The parameters keep their requiresGrad and get no gradient; nothing is left on the input.
      for (const p of model.parameters()) {
        expect(p.requiresGrad).toBe(true);
        expect(p.grad).toBeNull();
      }
      expect(x.requiresGrad).toBe(false);
      const file = join(dir, 'cam.png');
      const img = tidy(() => noGrad(() => overlay(x.squeeze(0).sigmoid(), heatmap)));
      await saveImage(img, file);
      const back = await decodeImage(file);
      expect(back.shape).toEqual([3, 64, 64]);
      for (const t of [x, heatmap, img, back]) t.dispose();
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("vgg11_bn, a named inner layer, a given class, a non-square input, frozen weights, under noGrad: PyTorch's heatmap bit for bit", async () => {
    const o = (await expected()).vgg11_bn;
    manualSeed(2);
    const model = vgg11_bn().eval();
    model.requiresGrad_(false); // a frozen model still has gradients for the activation
    try {
      manualSeed(3);
      const x = randn([1, 3, 48, 40]);
      // Under noGrad (as a server runs): gradCam switches grad on for itself.
      const byName = noGrad(() => gradCam(model, x, { targetLayer: 'features.20', classIndex: 7 }));
      expect(byName.classIndex).toBe(7);
      expect(byName.heatmap.shape).toEqual([48, 40]);
      expect(bitwiseDiff(byName.heatmap, o.cam)).toBeNull();
      // The module itself names the same layer; the default is the last ReLU (features.27).
      const byModule = gradCam(model, x, { targetLayer: model.features.at(20), classIndex: 7 });
      expect(byModule.heatmap.equal(byName.heatmap)).toBe(true);
      const last = gradCam(model, x, { classIndex: 7 });
      const explicit = gradCam(model, x, { targetLayer: 'features.27', classIndex: 7 });
      expect(last.heatmap.equal(explicit.heatmap)).toBe(true);
      expect(last.heatmap.equal(byName.heatmap)).toBe(false);
      for (const p of model.parameters()) expect(p.requiresGrad).toBe(false);
      for (const t of [x, byName.heatmap, byModule.heatmap, last.heatmap, explicit.heatmap]) t.dispose();
    } finally {
      model.dispose();
    }
  }, 60_000);
});

describe('gradCam() bad calls', () => {
  it('names the argument, and leaves the model as it was', () => {
    manualSeed(0);
    const model = vgg11_bn({ numClasses: 5 }).eval();
    const x = randn([1, 3, 32, 32]);
    const two = randn([2, 3, 32, 32]);
    try {
      expect(() => gradCam({} as never, x)).toThrow(new TypeError("gradCam(): argument 'model' must be a Module, got an object"));
      expect(() => gradCam(model, [1, 2] as never)).toThrow(TypeError);
      expect(() => gradCam(model, two)).toThrow(/gradCam\(\): argument 'input' must be one image, 1×C×H×W, got shape \[2, 3, 32, 32\]/);
      expect(() => gradCam(model, x, { classIndex: 5 })).toThrow(new RangeError("gradCam(): options.classIndex must be below the model's 5 classes, got 5"));
      expect(() => gradCam(model, x, { classIndex: -1 })).toThrow(RangeError);
      expect(() => gradCam(model, x, { classIndex: 1.5 })).toThrow(RangeError);
      expect(() => gradCam(model, x, { targetLayer: 'features.99' })).toThrow(/gradCam\(\): options.targetLayer 'features.99' is not a submodule of the VGG/);
      expect(() => gradCam(model, x, { targetLayer: new nn.ReLU() })).toThrow(/not a submodule/);
      expect(() => gradCam(model, x, { targetLayer: 'classifier.0' })).toThrow(/the target layer's output must be an N×C×h×w tensor, got shape \[1, 4096\]/);
      expect(() => gradCam(model, x, { layer: 3 } as never)).toThrow(/gradCam\(\): unexpected option 'layer'|layer/);
      expect(() => gradCam(new nn.Sequential(new nn.Flatten()) as never, x)).toThrow(/has no default target layer/);
      expect(() => inferenceMode(() => gradCam(model, x))).toThrow(/inferenceMode/);
      // After the failures: no hook left, the flags restored, and a good call works.
      for (const p of model.parameters()) {
        expect(p.requiresGrad).toBe(true);
        expect(p.grad).toBeNull();
      }
      const ok = gradCam(model, x);
      expect(ok.heatmap.shape).toEqual([32, 32]);
      ok.heatmap.dispose();
    } finally {
      for (const t of [x, two] as Tensor[]) t.dispose();
      model.dispose();
    }
  }, 60_000);
});
