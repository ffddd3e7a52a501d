// What the routes share: the served models by name, the metrics, and the steps
// of a prediction that a route composes (the request's image, preprocessed;
// top-k of a model's output row).
import type { FastifyRequest } from 'fastify';
import { inferenceMode } from '../autograd.js';
import type { ScriptModule } from '../jit/scriptModule.js';
import type { Module } from '../nn/modules/module.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ClassificationPreset } from '../transforms/presets.js';
import type { Batcher } from './batcher.js';
import { badRequest, internal, modelNotFound, wrongType } from './errors.js';
import { imageFromBytes } from './image.js';
import type { ServeMetrics } from './metrics.js';

/** A model the server answers for, under its name. */
export interface ServedModel {
  name: string;
  /** What the batches run through (its forwardAsync). */
  model: Module<any, Tensor> | ScriptModule;
  /** The nn.Module that /explanations runs Grad-CAM on (null: none, answered 501). */
  explainer: Module<[Tensor], Tensor> | null;
  classes: readonly string[];
  /** A decoded uint8 (3, H, W) image to the model's input for one image (C, H, W). */
  preprocess: (image: Tensor) => Tensor;
  /** The preset `preprocess` applies, when known (the default): tells clients where the model's input lies in the image. */
  preset?: ClassificationPreset;
  topk: number;
  batcher: Batcher;
}

export interface ServeContext {
  models: Map<string, ServedModel>;
  metrics: ServeMetrics;
  bodyLimit: number;
  maxPixels: number;
  /** The model named in a route, or a 404. */
  modelOf(name: string): ServedModel;
  /** The request's image (raw bytes or a multipart file), decoded, checked and preprocessed for `served`: (C, H, W). */
  inputOf(request: FastifyRequest, served: ServedModel): Promise<Tensor>;
  /** The top k classes and their probabilities (softmax of the output row), most probable first; frees `row`. */
  topk(served: ServedModel, row: Tensor): [string, number][];
}

export function makeContext(models: Map<string, ServedModel>, metrics: ServeMetrics, bodyLimit: number, maxPixels: number): ServeContext {
  return {
    models,
    metrics,
    bodyLimit,
    maxPixels,
    modelOf(name) {
      const m = models.get(name);
      if (!m) throw modelNotFound(name);
      return m;
    },
    async inputOf(request, served) {
      const image = await imageFromBytes(await bodyBytes(request, bodyLimit), maxPixels);
      try {
        const x = tidy(() => served.preprocess(image));
        if (x.dim() !== 3) {
          x.dispose();
          throw internal(`preprocess gave a tensor of shape [${x.shape.join(', ')}]: it must give one image (C, H, W)`);
        }
        return x;
      } finally {
        image.dispose();
      }
    },
    topk(served, row) {
      try {
        return tidy(() =>
          inferenceMode(() => {
            // bfloat16 logits under --amp: probabilities in float32.
            const [p, i] = row.float().softmax(0).topk(Math.min(served.topk, row.shape[0]));
            const probs = p.toTypedArray() as Float32Array;
            const idx = i.toTypedArray();
            return Array.from(probs, (prob, j): [string, number] => [served.classes[Number(idx[j])], prob]);
          }),
        );
      } finally {
        row.dispose();
      }
    },
  };
}

/** The body's bytes: raw (image/*, application/octet-stream) or the first file of a multipart/form-data body. */
async function bodyBytes(request: FastifyRequest, bodyLimit: number): Promise<Buffer> {
  if (request.isMultipart()) {
    const part = await request.file({ limits: { fileSize: bodyLimit, files: 1 } });
    if (!part) throw badRequest('the multipart/form-data body has no file field: add the image as a file (curl -F data=@photo.jpg)');
    return part.toBuffer();
  }
  if (Buffer.isBuffer(request.body)) return request.body;
  throw badRequest(`Content-Type ${request.headers['content-type'] ?? '(none)'}: ${wrongType}`);
}
