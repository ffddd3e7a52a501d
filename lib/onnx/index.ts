// ONNX export, like torch.onnx.
// torch.onnx.export's name: `export` is a keyword, so the function is declared as exportOnnx.
export { exportOnnx as export } from './export.js';
export type { ExportOptions } from './export.js';
export { graphToOnnx, OPSET_RANGE, DEFAULT_OPSET, BATCH_DIM } from './convert.js';
export type { ConvertOptions } from './convert.js';
export { checkModel } from './checker.js';
export { saveModel } from './save.js';
export type { SaveOptions, SaveResult } from './save.js';
