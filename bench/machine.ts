// The machine a bench ran on, printed first by every bench: figures from different CPUs do not
// compare (libtorch picks its kernels by CPU, and bf16 is native on some and emulated on others).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { getNumThreads, version } from '../lib/index.js';

/** The CPU's model name (Linux: /proc/cpuinfo), else 'unknown CPU'. */
function cpuName(): string {
  try {
    return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU';
  } catch {
    return 'unknown CPU';
  }
}

/** One line: CPU, cores, libtorch and its intra-op threads. */
export function machine(): string {
  return `machine: ${cpuName()}, ${availableParallelism()} cores; libtorch ${version.torch}, ${getNumThreads()} intra-op threads`;
}
