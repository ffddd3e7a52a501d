// Grad-CAM (Selvaraju et al., 2017) for VGG16: which pixels made the model pick a class.
// A forward hook on the last conv block's ReLU (features.29) keeps its activation A
// and puts a tensor hook on it for dScore/dA; the class weights are the gradients
// averaged over space, the map is ReLU(Σ_c w_c A_c), upsampled to the input and
// scaled to [0, 1], then drawn over the image as a jet heatmap.
// Run: npx tsx examples/grad-cam.ts cat.jpg [cam.png] [--class 281]
// The weights (528 MB) are downloaded once into torch.hub's cache.
import { pathToFileURL } from 'node:url';
import { F, type Tensor, type VGG, VGG16_Weights, cat, keep, saveImage, tensor, tidy, vgg16 } from '../lib/index.js';

/** The Grad-CAM map of `input` (1×3×H×W): an H×W tensor in [0, 1], and the class it explains (by default the top one). */
export function gradCam(model: VGG, input: Tensor, opts: { layer?: number; classIndex?: number } = {}): { cam: Tensor; classIndex: number } {
  const layer = model.features.at(opts.layer ?? 29);
  let activation: Tensor | null = null;
  let gradient: Tensor | null = null;
  const handle = layer.registerForwardHook((_m, _input, output: Tensor) => {
    activation = keep(output);
    output.registerHook((g) => {
      gradient = keep(g);
    });
  });
  try {
    return tidy(() => {
      const logits = model(input);
      const classIndex = opts.classIndex ?? (logits.argmax(1).item() as number);
      model.zeroGrad();
      logits.select(0, 0).select(0, classIndex).backward();
      const weights = gradient!.mean([2, 3], true);
      let cam = weights.mul(activation!).sum(1, true).relu();
      cam = F.interpolate(cam, { size: [input.shape[2], input.shape[3]], mode: 'bilinear', alignCorners: false });
      cam = cam.sub(cam.min());
      cam = cam.div(cam.max().add(1e-8));
      return { cam: cam.squeeze(0).squeeze(0), classIndex };
    });
  } finally {
    handle.remove();
    (activation as Tensor | null)?.dispose();
    (gradient as Tensor | null)?.dispose();
  }
}

/** A jet colour map of `cam` (H×W in [0, 1]) blended half and half with `image` (3×H×W in [0, 1]). */
export function overlay(image: Tensor, cam: Tensor, alpha = 0.5): Tensor {
  return tidy(() => {
    const c = cam.mul(4);
    const channel = (center: number): Tensor => c.sub(center).abs().neg().add(1.5).clamp(0, 1).unsqueeze(0);
    const heat = cat([channel(3), channel(2), channel(1)], 0); // red high, blue low
    return image.mul(1 - alpha).add(heat.mul(alpha));
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const classAt = args.indexOf('--class');
  const classIndex = classAt >= 0 ? Number(args.splice(classAt, 2)[1]) : undefined;
  const [file, out = 'grad-cam.png'] = args;
  if (!file) {
    console.error('usage: grad-cam <image> [out.png] [--class N]');
    process.exit(2);
  }
  const weights = VGG16_Weights.IMAGENET1K_V1;
  const model = vgg16({ weights }).eval();
  const batch = await weights.transforms().fromFile(file);
  const { cam, classIndex: k } = gradCam(model, batch, { classIndex });
  // Undo ImageNet normalization to show the (cropped) input under the map.
  const image = tidy(() =>
    batch
      .squeeze(0)
      .mul(tensor([0.229, 0.224, 0.225]).view(3, 1, 1))
      .add(tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
      .clamp(0, 1),
  );
  const blended = overlay(image, cam);
  await saveImage(blended, out);
  console.log(`class ${k} (${weights.meta.categories![k]}): Grad-CAM written to ${out}`);
  for (const t of [batch, cam, image, blended]) t.dispose();
  model.dispose();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
