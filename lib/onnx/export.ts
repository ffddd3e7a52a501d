// onnx.export, as torch.onnx.export: the model in eval mode is traced by
// libtorch's tracer (jit.trace) on the example input, each node of that graph
// converted by its symbolic, the result checked and written (weights as
// initializers, external data past 2 GB).
import { trace } from '../jit/index.js';
import { Module } from '../nn/modules/module.js';
import { tidy } from '../tensor/scope.js';
import { type Tensor, handleOf } from '../tensor/tensor.js';
import { checkOptions, describe } from '../utils/args.js';
import { checkModel } from './checker.js';
import { type ConvertOptions, graphToOnnx } from './convert.js';
import type { IModelProto } from './proto.js';
import { type SaveOptions, type SaveResult, saveModel } from './save.js';

export interface ExportOptions extends Omit<ConvertOptions, 'constantName'>, SaveOptions {}

const EXPORT_OPTIONS = ['opset', 'dynamicBatch', 'inputNames', 'outputNames', 'producerName', 'metadata', 'externalDataThreshold'];

/**
 * Exports `model` to an ONNX file at `path`, like `torch.onnx.export(model,
 * exampleInput, path, opset_version=13, dynamic_axes={…: {0: 'batch'}})`.
 *
 * The model is exported in eval mode (Dropout dropped, BatchNorm with its
 * running statistics) and its training mode restored afterwards. Its weights
 * become initializers named as in its state dict; past protobuf's 2 GB limit
 * (or `externalDataThreshold` bytes) they go to `<path>.data` beside it.
 * `dynamicBatch` (default true) makes dim 0 of the input and output the
 * symbolic `'batch'`; `opset` is 13 by default, from 11 to 17.
 * An operator without an ONNX equivalent is an Error naming it.
 *
 * Public as `onnx.export` (`export` cannot name a function declaration).
 */
export function exportOnnx(model: Module<any, any>, exampleInput: Tensor, path: string, opts: ExportOptions = {}): SaveResult {
  checkOptions('onnx.export()', opts, EXPORT_OPTIONS);
  if (!(model instanceof Module)) throw new TypeError(`onnx.export(): argument 'model' must be an nn.Module, got ${describe(model)}`);
  handleOf(exampleInput, 'exampleInput');
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`onnx.export(): path must be a file name, got ${String(path)}`);
  const wasTraining = model.training;
  model.eval();
  let proto: IModelProto;
  try {
    const engine = trace(model, exampleInput);
    try {
      // The graph's weight constants are new handles on the model's storage: tidy frees them once their bytes are copied.
      proto = tidy(() => {
        const named = [...model.namedParameters(), ...model.namedBuffers()];
        return graphToOnnx(engine.graph(), [{ shape: exampleInput.shape, dtype: exampleInput.dtype }], {
          ...opts,
          constantName: (t) => named.find(([, p]) => sameView(t, p))?.[0],
        });
      });
    } finally {
      engine.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  checkModel(proto);
  return saveModel(proto, path, opts);
}

/** The same elements of the same storage: a traced constant and the parameter it was taken from. */
function sameView(a: Tensor, b: Tensor): boolean {
  return a.sharesStorageWith(b) && a.storageOffset() === b.storageOffset() && a.shape.join() === b.shape.join() && a.stride().join() === b.stride().join();
}
