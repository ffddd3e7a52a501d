// Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep
// Networks via Gradient-based Localization"): which pixels made a model pick a
// class. As in captum's LayerGradCam and pytorch-grad-cam: the activation A of a
// target layer and dScore/dA; each channel's weight is its gradient averaged over
// space; the map is ReLU(Σ_c w_c A_c), upsampled bilinearly to the input and
// scaled to [0, 1].
import { enableGrad, isInferenceModeEnabled } from '../autograd.js';
import { interpolate } from '../nn/functional.js';
import { ReLU } from '../nn/modules/activation.js';
import { Module } from '../nn/modules/module.js';
import { Sequential } from '../nn/modules/container.js';
import { keep, tidy } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { checkInt, checkOptions, describe } from '../utils/args.js';

/** Options of {@link gradCam}. */
export interface GradCamOptions {
  /**
   * The layer whose activation is explained: a module path as in state-dict keys
   * (`'features.29'`) or the module itself. Its output must be N×C×h×w. By
   * default the last ReLU of `model.features` (the last conv block's output, as
   * Grad-CAM is usually run on VGG: `features.29` of vgg16, `features.42` of vgg16_bn).
   */
  targetLayer?: string | Module<any, any>;
  /** The class to explain; by default the model's top class for this input. */
  classIndex?: number;
}

/** What {@link gradCam} returns. */
export interface GradCamResult {
  /** H×W (the input's height and width), float32 in [0, 1]; the caller disposes it. */
  heatmap: Tensor;
  /** The class explained (the option, or the top class). */
  classIndex: number;
}

const FN = 'gradCam()';

function defaultTarget(model: Module<any, any>): Module<any, any> {
  const features = (model as { features?: unknown }).features;
  if (features instanceof Sequential) {
    const relus = [...features.modules()].filter((m) => m instanceof ReLU);
    if (relus.length > 0) return relus[relus.length - 1];
  }
  throw new TypeError(`${FN}: a ${model.typeName()} has no default target layer (the last ReLU of a 'features' Sequential): pass options.targetLayer`);
}

function resolveTarget(model: Module<any, any>, target: unknown): Module<any, any> {
  if (target === undefined) return defaultTarget(model);
  const named = [...model.namedModules()];
  if (typeof target === 'string') {
    const hit = named.find(([name]) => name === target);
    if (hit && hit[0] !== '') return hit[1];
    const layers = named.filter(([name]) => name !== '').map(([name]) => `'${name}'`);
    const shown = layers.length > 12 ? `${layers.slice(0, 12).join(', ')}, …` : layers.join(', ');
    throw new RangeError(`${FN}: options.targetLayer '${target}' is not a submodule of the ${model.typeName()} (it has ${shown})`);
  }
  if (target instanceof Module) {
    if (target !== model && named.some(([, m]) => m === target)) return target;
    throw new RangeError(`${FN}: options.targetLayer (a ${target.typeName()}) is not a submodule of the ${model.typeName()}`);
  }
  throw new TypeError(`${FN}: options.targetLayer must be a module path or a Module, got ${describe(target)}`);
}

/**
 * The Grad-CAM heatmap of `input` for one class of `model` (a classifier such as
 * a {@link VGG}, in eval mode for a deterministic map).
 *
 * The activation A of the target layer is kept and dScore/dA computed by
 * libtorch's autograd: the backward pass stops at A (the layers under it are run
 * without a graph) and the parameters' `grad` are left as they were. The map is
 * `relu(sum_c mean_hw(dScore/dA)_c · A_c)`, resized to the input's height and
 * width (bilinear, `alignCorners: false`), minus its minimum, divided by its
 * maximum + 1e-8: the same numbers as that computation in PyTorch with a forward
 * hook and a tensor hook on the layer.
 *
 * @param model - a Module mapping 1×C×H×W to 1×K logits.
 * @param input - one image, 1×C×H×W (normalized as the model expects).
 * @example
 * ```ts
 * const model = vgg16({ weights: 'DEFAULT' }).eval();
 * const { heatmap, classIndex } = gradCam(model, batch); // heatmap: 224×224 in [0, 1]
 * ```
 */
export function gradCam(model: Module<[Tensor], Tensor>, input: Tensor, options: GradCamOptions = {}): GradCamResult {
  if (!(model instanceof Module)) throw new TypeError(`${FN}: argument 'model' must be a Module, got ${describe(model)}`);
  if (!(input instanceof Tensor)) throw new TypeError(`${FN}: argument 'input' must be a Tensor, got ${describe(input)}`);
  checkOptions(FN, options, ['targetLayer', 'classIndex']);
  if (input.dim() !== 4 || input.shape[0] !== 1) {
    throw new RangeError(`${FN}: argument 'input' must be one image, 1×C×H×W, got shape [${input.shape.join(', ')}]`);
  }
  if (!input.isFloatingPoint()) throw new TypeError(`${FN}: argument 'input' must be a floating-point tensor, got ${input.dtype}`);
  if (options.classIndex !== undefined) checkInt(FN, 'options.classIndex', options.classIndex, 0);
  if (isInferenceModeEnabled()) throw new Error(`${FN}: needs autograd, and cannot run inside inferenceMode()`);
  const layer = resolveTarget(model, options.targetLayer);

  let activation: Tensor | null = null;
  let runs = 0;
  // A becomes a leaf of its own: backward stops there, and A.grad is dScore/dA.
  // The next layer reads a clone, so that an in-place layer after the target
  // (Conv2d → ReLU(inplace)) changes neither A nor its gradient.
  const handle = layer.registerForwardHook((_m, _input, output: unknown) => {
    runs++;
    if (runs > 1) throw new Error(`${FN}: the target layer ran more than once in one forward; pick a layer that runs once`);
    if (!(output instanceof Tensor) || output.dim() !== 4) {
      throw new RangeError(
        `${FN}: the target layer's output must be an N×C×h×w tensor, got ${output instanceof Tensor ? `shape [${output.shape.join(', ')}]` : describe(output)}`,
      );
    }
    activation = keep(output.detach().requiresGrad_(true));
    return activation.clone();
  });
  // Only dScore/dA is wanted: the parameters need no gradient (and keep theirs).
  const params = [...model.parameters()];
  const flags = params.map((p) => p.requiresGrad);
  try {
    for (const p of params) p.requiresGrad_(false);
    return enableGrad(() =>
      tidy(() => {
        const logits = model(input);
        if (!(logits instanceof Tensor) || logits.dim() !== 2 || logits.shape[0] !== 1) {
          throw new RangeError(
            `${FN}: the model must return 1×K logits, got ${logits instanceof Tensor ? `shape [${logits.shape.join(', ')}]` : describe(logits)}`,
          );
        }
        if (runs === 0 || activation === null) throw new Error(`${FN}: the target layer did not run in the model's forward`);
        const a = activation as Tensor;
        const classes = logits.shape[1];
        const classIndex = options.classIndex ?? (logits.argmax(1).item() as number);
        if (classIndex >= classes) throw new RangeError(`${FN}: options.classIndex must be below the model's ${classes} classes, got ${classIndex}`);
        logits.select(0, 0).select(0, classIndex).backward();
        const weights = a.grad!.mean([2, 3], true);
        let cam = weights.mul(a.detach()).sum(1, true).relu();
        cam = interpolate(cam, { size: [input.shape[2], input.shape[3]], mode: 'bilinear', alignCorners: false });
        cam = cam.sub(cam.min());
        cam = cam.div(cam.max().add(1e-8));
        return { heatmap: cam.squeeze(0).squeeze(0), classIndex };
      }),
    );
  } finally {
    handle.remove();
    params.forEach((p, i) => p.requiresGrad_(flags[i]));
    (activation as Tensor | null)?.dispose(); // and its grad with it
  }
}
