// Custom-class objects a module hands to operators (quantized packed weights,
// `__torch__.torch.classes.quantized.Conv2dPackedParamsBase`, …): jit.trace
// makes them attributes of the TorchScript module it records into, as
// PyTorch's quantized modules hold theirs (`_packed_params`), so the graph reads
// them with prim::GetAttr and the module can be frozen, saved and run off the
// event loop. Kept free of imports so that any layer can implement it.
import type { ObjectHandle } from '../native.js';

/** The method a module implements to name the custom-class objects its forward passes to operators. @internal */
export const scriptObjects: unique symbol = Symbol('vgg-torch.jit.scriptObjects');

/** A module holding custom-class objects. @internal */
export interface HasScriptObjects {
  /** `[name, object]` pairs, names unique within the module (identifiers). */
  [scriptObjects](): [string, ObjectHandle][];
}

/**
 * The custom-class objects of a module tree, each named after the module that
 * holds it (`_packed_params_features_0`: an identifier, as the saved code reads
 * `self.<name>`). @internal
 */
export function objectsOf(root: { namedModules(): Iterable<[string, object]> }): [string, ObjectHandle][] {
  const out: [string, ObjectHandle][] = [];
  for (const [path, m] of root.namedModules()) {
    if (!(scriptObjects in m)) continue;
    for (const [name, obj] of (m as HasScriptObjects)[scriptObjects]()) out.push([path ? `${name}_${path.replace(/\./g, '_')}` : name, obj]);
  }
  return out;
}
