// A DataLoader worker thread (started by pool.ts): it loads its own instance of
// the addon (the very file the main thread loaded: addon state is per thread
// and tensors cannot cross threads), runs transform plans on the batches whose
// bytes it is sent, and sends the result back the same way. After each reply it
// bumps a shared counter, so the main thread can wait synchronously.
import { createRequire } from 'node:module';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { Handle, NativeAddon, OpHandle } from '../native.js';
import { runPlanWith } from '../transforms/planRunner.js';
import type { Job, JobResult } from './pool.js';

/** What pool.ts hands each worker. */
export interface PoolWorkerData {
  /** The addon file to load. */
  addon: string;
  /** Intra-op threads of this worker. */
  threads: number;
  /** [0]: replies sent; [1]: 1 once the thread setting is done, -1 once the worker could not start or stopped (pool.ts's boot code). */
  signal: SharedArrayBuffer;
  /** Where replies go. */
  port: MessagePort;
}

const data = workerData as PoolWorkerData;
const native = createRequire(import.meta.url)(data.addon) as NativeAddon;
// One intra-op thread: the training step on the main thread has the cores.
// at::set_num_threads also sets the process-wide default that new threads start
// from; getNumThreads() settles this thread's own setting, then the main thread
// restores the default once this thread says it is ready (signal[1]).
native.setNumThreads(data.threads);
native.getNumThreads();

const ops = new Map<string, OpHandle>();
function op(name: string, overload: string): OpHandle {
  const key = `${name}.${overload}`;
  let h = ops.get(key);
  if (h === undefined) {
    h = native.op(name, overload);
    ops.set(key, h);
  }
  return h;
}

const signal = new Int32Array(data.signal);
Atomics.store(signal, 1, 1);
Atomics.notify(signal, 1);

function reply(msg: JobResult, transfer: ArrayBuffer[] = []): void {
  data.port.postMessage(msg, transfer);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

parentPort!.on('message', (job: Job & { id: number }) => {
  const handles: Handle[] = [];
  try {
    const outs: Handle[] = [];
    for (let i = 0; i < job.inputs.length; i++) {
      const inp = job.inputs[i];
      const h = native.fromBuffer(inp.buffer, 0, inp.shape, inp.dtype, false);
      handles.push(h);
      const o = runPlanWith(native, op, h, job.plans[i]);
      if (o !== h) handles.push(o);
      outs.push(o);
    }
    let out = outs[0];
    if (job.stack) {
      out = native.call(op('aten::stack', ''), outs, 0) as Handle;
      handles.push(out);
    }
    const [shape, dtype] = native.meta(out);
    const buffer = native.toArrayBuffer(out);
    reply({ id: job.id, buffer, shape, dtype }, [buffer]);
  } catch (e) {
    reply({ id: job.id, error: (e as Error)?.message || String(e) });
  } finally {
    for (const h of handles) native.dispose(h);
  }
});
