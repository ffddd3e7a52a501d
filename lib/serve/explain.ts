// POST /explanations/<model> (TorchServe's explanations endpoint): the Grad-CAM
// heatmap of the request's image, from the package's gradCam(). It runs the eager
// module (serve's explainModel, by default the served nn.Module) on the event loop,
// beside the batcher rather than through it: Grad-CAM needs autograd, which the
// compiled engine of the batches does not record.
import { gradCam } from '../models/gradCam.js';
import type { ClassificationPreset } from '../transforms/presets.js';
import type { Tensor } from '../tensor/tensor.js';
import { HttpError, badRequest, internal } from './errors.js';
import type { ServedModel } from './context.js';

/** The JSON of POST /explanations/<model>. */
export interface Explanation {
  /** The class explained: the model's top class, or the one asked for with `?class=`. */
  class: string;
  classIndex: number;
  /** The heatmap's size: the model input's (the preprocessed image). */
  width: number;
  height: number;
  /**
   * Where the model's input lies in the uploaded image, when the server knows its preprocessing
   * (torchvision's preset: the short side resized to `resizeSize`, then a `cropSize` center crop);
   * null when a custom `preprocess` is served.
   */
  crop: Pick<ClassificationPreset, 'resizeSize' | 'cropSize'> | null;
  /** `height` rows of `width` values in [0, 1] (gradCam's float32 values, rounded to 6 decimals). */
  heatmap: number[][];
}

/** Grad-CAM of `x` (one preprocessed image, C×H×W) for `served`, as the route answers it; does not free `x`. */
export function explain(served: ServedModel, x: Tensor, className: unknown): Explanation {
  const model = served.explainer;
  if (model === null) {
    throw new HttpError(
      501,
      'NotImplementedException',
      `model ${served.name} is a TorchScript module: Grad-CAM needs an nn.Module (autograd through its layers); serve it with the explainModel option`,
    );
  }
  let classIndex: number | undefined;
  if (className !== undefined) {
    classIndex = typeof className === 'string' ? served.classes.indexOf(className) : -1;
    if (classIndex < 0) throw badRequest(`?class=${String(className)} is not a class of model ${served.name}: give one of the names /predictions answers with`);
  }
  const batch = x.unsqueeze(0);
  let result: ReturnType<typeof gradCam>;
  try {
    result = gradCam(model, batch, { classIndex });
  } catch (e) {
    throw internal(`Grad-CAM failed for model ${served.name}: ${(e as Error).message}`);
  } finally {
    batch.dispose();
  }
  const { heatmap, classIndex: k } = result;
  try {
    const [height, width] = heatmap.shape;
    const values = heatmap.toTypedArray() as Float32Array;
    const rows: number[][] = [];
    for (let y = 0; y < height; y++) rows.push(Array.from(values.subarray(y * width, (y + 1) * width), (v) => Math.round(v * 1e6) / 1e6));
    const preset = served.preset;
    return {
      class: served.classes[k],
      classIndex: k,
      width,
      height,
      crop: preset ? { resizeSize: preset.resizeSize, cropSize: preset.cropSize } : null,
      heatmap: rows,
    };
  } finally {
    heatmap.dispose();
  }
}
