// torch.jit.save and torch.jit.load (torch/jit/_serialization.py): TorchScript
// files that Python's torch.jit.load reads, and that Python's torch.jit.save wrote.
import { resolve } from 'node:path';
import { native } from '../native.js';
import { ScriptModule } from './script.js';

/** Writes `module` as a TorchScript archive (`torch.jit.save`); Python loads it with `torch.jit.load`. */
export function save(module: ScriptModule, path: string): void {
  if (!(module instanceof ScriptModule)) throw new TypeError('jit.save(): argument \'module\' must be a ScriptModule');
  if (typeof path !== 'string') throw new TypeError('jit.save(): argument \'path\' must be a string');
  native.jitSave(module._handle(), resolve(path));
}

/**
 * Loads a TorchScript archive (from `torch.jit.save` of a scripted or traced
 * module, or {@link save}) onto the CPU, in eval mode. Its forward must take one tensor.
 */
export function load(path: string): ScriptModule {
  if (typeof path !== 'string') throw new TypeError('jit.load(): argument \'path\' must be a string');
  try {
    return new ScriptModule(native.jitLoad(resolve(path)), null, 'load');
  } catch (e) {
    throw new Error(`jit.load(): cannot load ${path} as TorchScript: ${(e as Error).message}`);
  }
}
