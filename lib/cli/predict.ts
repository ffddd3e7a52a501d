// `vgg-torch predict`: the top classes of images, with ImageNet weights or a
// checkpoint's model, optionally quantized to int8 or run in mixed precision.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { autocast } from '../amp/autocastMode.js';
import { quantize } from '../ao/quantization/quantize.js';
import { inferenceMode } from '../autograd.js';
import { decodeImage } from '../io/image.js';
import type { Sequential } from '../nn/modules/container.js';
import type { Module } from '../nn/modules/module.js';
import { setNumThreads } from '../runtime.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { type Command, type Values, UsageError, bool, device, int, str } from './args.js';
import { ampDtype, calibration, imagesIn, inferenceModel } from './inference.js';

export const predictCommand: Command = {
  synopsis: ['predict <images…>', 'classify images (pretrained ImageNet weights, or a checkpoint)'],
  help: `Usage: vgg-torch predict <images…> [options]

Classifies images (JPEG, PNG, WebP, …) and prints the top classes.

Options:
  --arch <name>        vgg11 … vgg19_bn (default vgg16), with ImageNet weights
  --weights <w>        DEFAULT or IMAGENET1K_V1 (downloaded once into torch.hub's cache),
                       or a .pth state dict file or URL for the same architecture
  --checkpoint <file>  a checkpoint written by 'vgg-torch train' instead (its classes)
  --topk <k>           classes to print per image (default 5)
  --device <d>         cpu or cuda (default: cuda when available)
  --threads <n>        intra-op threads (default: libtorch's)
  --int8               quantize to int8 first (quantization.quantize, libtorch's quantized kernels)
  --calibrate <dir>    images to calibrate the int8 activation ranges on (default: the images given)
  --amp <p>            auto, bf16, fp16 or off (default off): run under autocast in that
                       precision; auto is bf16 on a CPU with native bf16 (AVX512_BF16, AMX),
                       fp16 on CUDA, else fp32 (fp16 on the CPU from libtorch 2.1); not with --int8
  -h, --help

On the CPU the model runs compiled for inference (jit.trace, then
jit.optimizeForInference; with --int8, libtorch's int8 kernels in the frozen
graph) on a worker thread (nn.Module.forwardAsync), off the event loop. With
--amp the graph is compiled under autocast: it holds the casts, and its
convolutions and linear layers run in bfloat16 or float16.`,
  options: { arch: str, weights: str, checkpoint: str, topk: str, device: str, threads: str, int8: bool, calibrate: str, amp: str },
  run: runPredict,
};

async function runPredict(v: Values, files: string[]): Promise<number> {
  if (files.length === 0) throw new UsageError("predict needs at least one image (see 'vgg-torch predict --help')");
  for (const f of files) if (!existsSync(f)) throw new Error(`no such image: ${f}`);
  const topkAsked = int(v, 'topk', 5);
  if (v.threads !== undefined) setNumThreads(int(v, 'threads', 1, 1, 1024));
  const dev = device(v);
  if (v.calibrate !== undefined && !v.int8) throw new UsageError('--calibrate goes with --int8');
  if (v.int8 && dev !== 'cpu') throw new UsageError('--int8 runs on the CPU: add --device cpu');
  const amp = ampDtype(v, dev);
  if (amp && v.int8) throw new UsageError("--amp and --int8 exclude each other: libtorch's int8 kernels are not on autocast's lists");
  const { model, classes, preprocess: prepare } = inferenceModel(v);
  const preprocess = (img: Tensor): Tensor => prepare(img).unsqueeze(0);
  let int8: Sequential | null = null;
  try {
    model.to(dev).eval();
    if (v.int8) {
      const images = await calibration(v.calibrate === undefined ? files : imagesIn(resolve(v.calibrate as string)), prepare);
      try {
        int8 = quantize(model, images);
      } finally {
        for (const c of images) c.dispose();
      }
    }
    const topk = Math.min(topkAsked, classes.length);
    for (const file of files) {
      const image = await decodeImage(file);
      const x = tidy(() => preprocess(image).to(dev));
      image.dispose();
      const logits = await logitsOf(int8 ?? model, x, dev, amp);
      x.dispose();
      const lines = tidy(() =>
        inferenceMode(() => {
          // bfloat16 or float16 logits: probabilities in float32, as they are printed.
          const [p, c] = logits.float().softmax(1).topk(topk);
          const probs = p.cpu().toTypedArray() as Float32Array;
          const idx = c.cpu().toTypedArray();
          return Array.from(probs, (prob, i) => `  ${(Number(prob) * 100).toFixed(2).padStart(6)} %  ${classes[Number(idx[i])]}`);
        }),
      );
      logits.dispose();
      console.log(`${file}:\n${lines.join('\n')}`);
    }
  } finally {
    int8?.dispose();
    model.dispose();
  }
  return 0;
}

/**
 * The model's output for `x`: on the CPU (fp32 or int8) the compiled graph on a
 * worker thread (forwardAsync), so the event loop stays free; CUDA runs eagerly (asynchronous
 * on its stream already). With `amp`, under autocast: forwardAsync compiles (and caches) the
 * graph for that autocast state.
 */
async function logitsOf(net: Module<any, Tensor>, x: Tensor, dev: 'cpu' | 'cuda', amp: 'bfloat16' | 'float16' | null): Promise<Tensor> {
  const run = (): Promise<Tensor> => (dev === 'cpu' ? net.forwardAsync(x) : Promise.resolve(inferenceMode(() => net(x))));
  return amp ? autocast(dev, { dtype: amp }, run) : run();
}
