// Grad-CAM (Selvaraju et al., 2017) for VGG16: which pixels made the model pick a class.
// The package's gradCam() computes the map on the last conv block's ReLU (features.29):
// ReLU(Σ_c w_c A_c), w_c the class score's gradients averaged over space, upsampled
// to the input and scaled to [0, 1]; this example draws it over the image as a jet heatmap.
// Run: npx tsx examples/grad-cam.ts cat.jpg [cam.png] [--class 281]
// The weights (528 MB) are downloaded once into torch.hub's cache.
import { pathToFileURL } from 'node:url';
import { type Tensor, VGG16_Weights, cat, gradCam, saveImage, tensor, tidy, vgg16 } from '../lib/index.js';

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
  const { heatmap: cam, classIndex: k } = gradCam(model, batch, { classIndex });
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
