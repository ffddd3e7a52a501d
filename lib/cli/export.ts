// `vgg-torch export`: a model (pretrained or a checkpoint) traced in eval mode
// and written as ONNX or TorchScript.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { save as saveTorchScript } from '../jit/serialization.js';
import { trace } from '../jit/trace.js';
import type { VGG } from '../models/vgg.js';
import { DEFAULT_OPSET, OPSET_RANGE } from '../onnx/convert.js';
import { exportOnnx } from '../onnx/export.js';
import { zeros } from '../tensor/creation.js';
import { type Command, type Values, UsageError, bool, int, noPositionals, oneOf, str } from './args.js';
import { FACTORIES, IMAGENET, modelFromCheckpoint, modelWithWeights } from './models.js';

export const exportCommand: Command = {
  synopsis: ['export', 'write a model (pretrained or a checkpoint) as ONNX or TorchScript'],
  help: `Usage: vgg-torch export --out <file> [options]

Traces the model in eval mode and writes it as ONNX (dynamic batch dimension 'batch';
classes, mean and std in the model's metadata; weights past 2 GB in <file>.data), or as
TorchScript for torch.jit.load (any batch size).

Options:
  --arch <name>        vgg11 … vgg19_bn (default vgg16), with ImageNet weights
  --weights <w>        DEFAULT or IMAGENET1K_V1 (downloaded once into torch.hub's cache),
                       or a .pth state dict file or URL for the same architecture
  --checkpoint <file>  a checkpoint written by 'vgg-torch train' instead
  --format <f>         onnx (default) or torchscript
  --out <file>         the file to write
  --opset <n>          ONNX opset, ${OPSET_RANGE[0]} to ${OPSET_RANGE[1]} (default ${DEFAULT_OPSET}; ONNX only)
  --image-size <n>     input side traced (default: the checkpoint's, or 224)
  --static-batch       a fixed batch of 1 instead of the dynamic 'batch' (ONNX only)
  -h, --help`,
  options: { arch: str, weights: str, checkpoint: str, format: str, out: str, opset: str, 'image-size': str, 'static-batch': bool },
  run: runExport,
};

function runExport(v: Values, positionals: string[]): number {
  noPositionals('export', positionals);
  const format = oneOf((v.format as string) ?? 'onnx', ['onnx', 'torchscript'], 'format');
  if (format === 'torchscript' && (v.opset !== undefined || v['static-batch'])) throw new UsageError('--opset and --static-batch apply to --format onnx');
  if (!v.out) throw new UsageError("export needs --out <file> (see 'vgg-torch export --help')");
  const out = resolve(v.out as string);
  const opset = int(v, 'opset', DEFAULT_OPSET, OPSET_RANGE[0], OPSET_RANGE[1]);
  const imageSize = v['image-size'] === undefined ? null : int(v, 'image-size', 0, 1);
  let model: VGG;
  let what: string;
  let input: number[];
  let metadata: Record<string, string>;
  if (v.checkpoint) {
    if (v.arch || v.weights) throw new UsageError('--checkpoint brings its own architecture and weights: drop --arch and --weights');
    const loaded = modelFromCheckpoint(resolve(v.checkpoint as string));
    const { meta } = loaded;
    model = loaded.model;
    what = `${meta.arch} (${v.checkpoint as string}, epoch ${loaded.epoch})`;
    input = [meta.inChannels, imageSize ?? meta.imageSize, imageSize ?? meta.imageSize];
    metadata = { arch: meta.arch, classes: JSON.stringify(meta.classes), mean: JSON.stringify(meta.mean), std: JSON.stringify(meta.std) };
  } else {
    const arch = oneOf((v.arch as string) ?? 'vgg16', Object.keys(FACTORIES), 'architecture');
    const w = (v.weights as string) ?? 'DEFAULT';
    model = modelWithWeights(arch, w);
    what = `${arch} (weights ${w})`;
    input = [3, imageSize ?? 224, imageSize ?? 224];
    const { preset } = IMAGENET[arch].transforms();
    metadata = { arch, classes: JSON.stringify(IMAGENET[arch].meta.categories), mean: JSON.stringify(preset.mean), std: JSON.stringify(preset.std) };
  }
  const example = zeros([1, ...input]);
  try {
    if (format === 'torchscript') {
      const engine = trace(model.eval(), example);
      try {
        saveTorchScript(engine, out);
      } finally {
        engine.dispose();
      }
      const mb = (statSync(out).size / 2 ** 20).toFixed(1);
      console.log(`Exported ${what} to ${out}: ${mb} MiB, TorchScript (traced), input [batch, ${input.join(', ')}] float32`);
      return 0;
    }
    const saved = exportOnnx(model, example, out, { opset, dynamicBatch: !v['static-batch'], metadata });
    const mb = (saved.bytes / 2 ** 20).toFixed(1);
    console.log(
      `Exported ${what} to ${out}${saved.dataPath ? ` (weights in ${saved.dataPath})` : ''}: ${mb} MiB, ONNX opset ${opset}, ` +
        `input [${v['static-batch'] ? 1 : 'batch'}, ${input.join(', ')}] float32`,
    );
  } finally {
    example.dispose();
    model.dispose();
  }
  return 0;
}
