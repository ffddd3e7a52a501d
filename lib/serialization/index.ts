// Checkpoints: torch.load / torch.save and safetensors.
export { load } from './load.js';
export type { LoadOptions, MapLocation } from './load.js';
export { save } from './save.js';
export type { SaveOptions } from './save.js';
export { loadSafetensors, loadSafetensorsMetadata, saveSafetensors } from './safetensors.js';
export { OrderedDict } from './types.js';
export type { Tuple } from './types.js';
export { FormatError } from './source.js';
export type { PathOrBuffer } from './source.js';
