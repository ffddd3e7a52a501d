// torch.jit.save / torch.jit.load: TorchScript files, the format Python's
// torch.jit writes and reads (a zip of code, constants and tensors).
import { existsSync } from 'node:fs';
import { native } from '../native.js';
import { describe } from '../utils/args.js';
import { ScriptModule } from './scriptModule.js';

/** `torch.jit.save`: writes `module` as a TorchScript file that Python's `torch.jit.load` reads. */
export function save(module: ScriptModule, path: string): void {
  if (!(module instanceof ScriptModule)) throw new TypeError(`jit.save: expected a ScriptModule (from jit.trace or jit.load), got ${describe(module)}`);
  module.save(path);
}

/**
 * `torch.jit.load`: reads a TorchScript file (from Python's `torch.jit.save`
 * of a scripted or traced module, or from {@link save}) onto the CPU.
 */
export function load(path: string): ScriptModule {
  if (typeof path !== 'string' || path === '') throw new TypeError(`jit.load: path must be a non-empty string, got ${describe(path)}`);
  if (!existsSync(path)) throw new Error(`jit.load: no such file: ${path}`);
  try {
    return new ScriptModule(native.jitLoad(path), null);
  } catch (e) {
    throw new Error(`jit.load: ${path} is not a TorchScript file libtorch can read: ${(e as Error).message}`);
  }
}
