// Neural style transfer (Gatys, Ecker & Bethge, 2016) with VGG19's features, as
// PyTorch's tutorial does it: the image itself is optimized (L-BFGS, or Adam with
// --adam) so that its conv4_2 features match the content image's and the Gram
// matrices of its conv1_1 … conv5_1 features match the style image's.
// Run: npx tsx examples/style-transfer.ts content.jpg style.jpg [out.png] [--size 256] [--steps 300] [--adam]
// The VGG19 weights (548 MB) are downloaded once into torch.hub's cache.
import { pathToFileURL } from 'node:url';
import {
  F,
  type Tensor,
  type VGG,
  createFeatureExtractor,
  decodeImage,
  keep,
  nn,
  noGrad,
  optim,
  saveImage,
  tensor,
  tidy,
  transforms,
  vgg19,
} from '../lib/index.js';

/** VGG19 `features` node → layer name (conv outputs; the ReLUs are made out-of-place so they stay as computed). */
export const LAYERS = {
  'features.0': 'conv1_1',
  'features.5': 'conv2_1',
  'features.10': 'conv3_1',
  'features.19': 'conv4_1',
  'features.21': 'conv4_2',
  'features.28': 'conv5_1',
};
export const STYLE_LAYERS = ['conv1_1', 'conv2_1', 'conv3_1', 'conv4_1', 'conv5_1'];
export const CONTENT_LAYER = 'conv4_2';

/** Gram matrix of a 1×C×H×W feature map, normalized by its number of elements. */
export function gram(feature: Tensor): Tensor {
  const [, c, h, w] = feature.shape;
  const f = feature.view(c, h * w);
  return f.mm(f.t()).div(c * h * w);
}

export interface StyleTransferOptions {
  /** Optimizer steps: L-BFGS `step()` calls (each up to 20 evaluations), or Adam steps (default 20). */
  steps?: number;
  optimizer?: 'lbfgs' | 'adam';
  /** Adam's learning rate (default 0.02). */
  lr?: number;
  /** L-BFGS iterations per step (default 20). */
  maxIter?: number;
  styleWeight?: number;
  contentWeight?: number;
  /** Called with [style, content] losses at every evaluation. */
  onLoss?: (style: number, content: number) => void;
}

/**
 * Optimizes a copy of `content` (1×3×H×W in [0, 1]) toward `style`'s style;
 * returns the image (clamped to [0, 1]). `model` is a VGG19 (its ReLUs are
 * switched to out-of-place; the model is in eval mode and not trained).
 */
export function styleTransfer(model: VGG, content: Tensor, style: Tensor, opts: StyleTransferOptions = {}): Tensor {
  const { steps = 20, optimizer = 'lbfgs', lr = 0.02, maxIter = 20, styleWeight = 1e6, contentWeight = 1, onLoss } = opts;
  model.eval().requiresGrad_(false);
  const features = model.features as unknown as Record<number, nn.Module<any, any>>;
  for (const [name, m] of model.features.namedChildren()) if (m instanceof nn.ReLU && m.inplace) features[Number(name)] = new nn.ReLU();
  const extractor = createFeatureExtractor(model, { returnNodes: LAYERS });
  const mean = keep(tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1));
  const std = keep(tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1));
  const featuresOf = (img: Tensor): Map<string, Tensor> => extractor(img.sub(mean).div(std));
  const [contentTarget, styleTargets] = tidy(() =>
    noGrad(() => {
      const c = featuresOf(content).get(CONTENT_LAYER)!;
      const s = featuresOf(style);
      return [keep(c), STYLE_LAYERS.map((l) => keep(gram(s.get(l)!)))] as const;
    }),
  );
  const image = keep(content.clone().requiresGrad_());
  const opt = optimizer === 'adam' ? new optim.Adam([image], { lr }) : new optim.LBFGS([image], { maxIter });
  const closure = (): Tensor => {
    noGrad(() => image.clamp_(0, 1));
    opt.zeroGrad();
    const f = featuresOf(image);
    let styleLoss = F.mseLoss(gram(f.get(STYLE_LAYERS[0])!), styleTargets[0]);
    for (let i = 1; i < STYLE_LAYERS.length; i++) styleLoss = styleLoss.add(F.mseLoss(gram(f.get(STYLE_LAYERS[i])!), styleTargets[i]));
    const contentLoss = F.mseLoss(f.get(CONTENT_LAYER)!, contentTarget);
    const loss = styleLoss.mul(styleWeight).add(contentLoss.mul(contentWeight));
    loss.backward();
    onLoss?.(styleLoss.item() as number, contentLoss.item() as number);
    return loss;
  };
  try {
    for (let i = 0; i < steps; i++) {
      tidy(() => {
        opt.step(closure);
      });
    }
    return noGrad(() => image.detach().clamp(0, 1));
  } finally {
    opt.dispose();
    for (const t of [mean, std, contentTarget, ...styleTargets, image]) t.dispose();
  }
}

async function load(file: string, size: number): Promise<Tensor> {
  const img = await decodeImage(file);
  return tidy(() => {
    const resized = new transforms.Resize([size, size]).forward(img.unsqueeze(0).div(255));
    return resized;
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const adam = args.indexOf('--adam');
  if (adam >= 0) args.splice(adam, 1);
  const size = Number(flag('--size') ?? 256);
  const steps = Number(flag('--steps') ?? (adam >= 0 ? 300 : 15));
  const [contentFile, styleFile, out = 'styled.png'] = args;
  if (!contentFile || !styleFile) {
    console.error('usage: style-transfer <content> <style> [out.png] [--size 256] [--steps N] [--adam]');
    process.exit(2);
  }
  const model = vgg19({ weights: 'DEFAULT' });
  const content = await load(contentFile, size);
  const style = await load(styleFile, size);
  let evals = 0;
  const result = styleTransfer(model, content, style, {
    steps,
    optimizer: adam >= 0 ? 'adam' : 'lbfgs',
    onLoss: (s, c) => {
      if (++evals % 50 === 0) console.log(`evaluation ${evals}: style loss ${s.toFixed(4)}, content loss ${c.toFixed(4)}`);
    },
  });
  await saveImage(result.squeeze(0), out);
  console.log(`written ${out}`);
  for (const t of [content, style, result]) t.dispose();
  model.dispose();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
