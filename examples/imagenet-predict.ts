// Classify photos with the official pretrained ImageNet weights, as in torchvision:
//   weights = VGG16_Weights.IMAGENET1K_V1; model = vgg16(weights=weights).eval()
//   batch = weights.transforms()(read_image(path)).unsqueeze(0)
//   model(batch).softmax(1).topk(5)
// Run: npx tsx examples/imagenet-predict.ts cat.jpg [more images…]
// The weights (528 MB) are downloaded once into torch.hub's cache (~/.cache/torch/hub/checkpoints).
import { VGG16_Weights, inferenceMode, tidy, vgg16 } from '../lib/index.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: imagenet-predict <image> [image…]');
  process.exit(2);
}

const weights = VGG16_Weights.IMAGENET1K_V1;
const model = vgg16({ weights }).eval();
const preprocess = weights.transforms();
const categories = weights.meta.categories!;

for (const file of files) {
  const batch = await preprocess.fromFile(file);
  const lines = tidy(() =>
    inferenceMode(() => {
      const [probs, classes] = model(batch).softmax(1).topk(5);
      const p = probs.toTypedArray();
      const c = classes.toTypedArray();
      return [...p].map((prob, i) => `  ${(Number(prob) * 100).toFixed(2).padStart(6)}%  ${categories[Number(c[i])]}`);
    }),
  );
  batch.dispose();
  console.log(`${file}:\n${lines.join('\n')}`);
}
model.dispose();
