// Raw tensor bytes out, and atomic file writes: shared by save() and saveSafetensors().
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native, op } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * The bytes of `t`'s elements in row-major order, exactly as stored (float16
 * and bfloat16 are not widened), copied to the host. Caller owns the memory.
 */
export function tensorBytes(t: Tensor): Uint8Array {
  let h = t._h;
  const half = t.dtype === 'float16' || t.dtype === 'bfloat16';
  // The addon widens half types when copying out; a same-size int16 view keeps their bits.
  if (half) h = native.call(op('aten::view', 'dtype'), h, dtypeCode('int16'));
  try {
    return new Uint8Array(native.toArrayBuffer(h));
  } finally {
    if (half) native.dispose(h);
  }
}

export function toPath(path: string | URL, fn: string): string {
  if (typeof path === 'string') return path;
  if (path instanceof URL) return fileURLToPath(path);
  throw new TypeError(`${fn}(): expected a path, got ${path === null ? 'null' : typeof path}`);
}

/**
 * Writes a file atomically: `body` writes to a temporary file next to `path`,
 * which is synced and renamed over `path` only when `body` succeeded, so a
 * crash or an error never leaves a half-written checkpoint behind.
 */
export function writeAtomically(path: string, body: (fd: number) => void): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o666);
  let open = true;
  try {
    body(fd);
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (e) {
    if (open) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to remove
    }
    throw e;
  }
}
