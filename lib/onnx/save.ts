// Writing a ModelProto: one protobuf file, or (past protobuf's 2 GB limit, or
// a smaller threshold when asked) the weights in an external data file beside
// it, as onnx.save_model(save_as_external_data=True, all_tensors_to_one_file=True).
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { type IModelProto, onnx } from './proto.js';

/** Protobuf messages cannot exceed 2 GiB. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** Initializers smaller than this stay in the model file (onnx's size_threshold). */
const EXTERNAL_MIN_BYTES = 1024;
/** Each external tensor starts on a page, so that runtimes can map it. */
const ALIGN = 4096;

export interface SaveOptions {
  /** Weights go to an external data file when the model would be larger than this many bytes (default: protobuf's 2 GiB limit). */
  externalDataThreshold?: number;
}

export interface SaveResult {
  /** The model file. */
  path: string;
  /** The external data file, or null when the weights are inside the model file. */
  dataPath: string | null;
  /** Bytes written, both files together. */
  bytes: number;
}

/** Writes `model` to `path`; its initializers hold raw_data, moved out to `<path>.data` when the model is too large. */
export function saveModel(model: IModelProto, path: string, opts: SaveOptions = {}): SaveResult {
  const threshold = opts.externalDataThreshold ?? PROTOBUF_LIMIT;
  if (!(typeof threshold === 'number' && threshold >= 0))
    throw new RangeError(`onnx.export(): externalDataThreshold must be a number of bytes >= 0, got ${String(threshold)}`);
  const inits = model.graph?.initializer ?? [];
  const weightBytes = inits.reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
  // The rest of the model (nodes, names) is small beside the weights: 1 MiB covers it.
  if (weightBytes + 2 ** 20 <= Math.min(threshold, PROTOBUF_LIMIT)) {
    const bytes = onnx.ModelProto.encode(model).finish();
    if (bytes.length <= threshold) {
      writeFileSync(path, bytes);
      return { path, dataPath: null, bytes: bytes.length };
    }
  }
  const location = `${basename(path)}.data`;
  const dataPath = `${path}.data`;
  const fd = openSync(dataPath, 'w');
  let offset = 0;
  const external = inits.map((t) => {
    const raw = t.rawData;
    if (!raw || raw.length < EXTERNAL_MIN_BYTES) return t;
    const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
    if (pad) writeSync(fd, new Uint8Array(pad));
    offset += pad;
    for (let done = 0; done < raw.length; ) done += writeSync(fd, raw, done, raw.length - done);
    const moved = {
      ...t,
      rawData: undefined,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ],
    };
    offset += raw.length;
    return moved;
  });
  closeSync(fd);
  const bytes = onnx.ModelProto.encode({ ...model, graph: { ...model.graph, initializer: external } }).finish();
  writeFileSync(path, bytes);
  return { path, dataPath, bytes: bytes.length + offset };
}
