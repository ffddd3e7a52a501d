// Loader worker threads. Each worker loads its own instance of the addon (addon
// state is per thread and tensors cannot cross threads) and runs transform
// plans on batches whose bytes are transferred to it (no copy); the result
// comes back the same way and is wrapped without a copy. The main thread can
// wait for a result synchronously (a `for … of` loop, or a training step that
// never yields) — Atomics.wait on a counter the worker bumps after each
// postMessage, then receiveMessageOnPort — or asynchronously (`for await`).
//
// Workers are shared by all DataLoaders, created on first use, and unref'd: an
// idle pool never keeps the process alive.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { addonPath, native } from '../native.js';
import type { Plan } from '../transforms/plan.js';
import type { PoolWorkerData } from './poolWorker.js';

/** One input of a job: the bytes of a contiguous tensor. */
export interface JobInput {
  buffer: ArrayBuffer;
  shape: number[];
  dtype: number;
}
/** A job: run `plans[i]` on `inputs[i]`; with `stack`, stack the outputs along a new dim 0. */
export interface Job {
  inputs: JobInput[];
  plans: Plan[];
  stack: boolean;
}
/** A finished job: the output's bytes, or the error message. */
export type JobResult = { id: number; buffer: ArrayBuffer; shape: number[]; dtype: number; error?: undefined } | { id: number; error: string };

const here = import.meta.url;

/**
 * Starts one loader worker (poolWorker.ts). The published build runs
 * poolWorker.js beside this chunk; from the TypeScript sources (tests, tsx) the
 * worker registers tsx first, then imports poolWorker.ts. The main thread may be
 * blocked in Atomics.wait, where a worker's 'error' and 'exit' events (delivered
 * on the event loop) are never seen: so a worker that cannot load its entry, or
 * that stops, says so through the shared signal (and its reason on the port).
 */
function startWorker(workerData: PoolWorkerData, transferList: MessagePort[]): Worker {
  const options = { workerData, transferList, stdout: false, stderr: false };
  const fromSource = here.endsWith('.ts');
  const entry = JSON.stringify(new URL(fromSource ? './poolWorker.ts' : './poolWorker.js', here).href);
  // tsx's ESM API (its CommonJS twin cannot register hooks in a worker): the import condition of 'tsx/esm/api'.
  const tsx = fromSource
    ? JSON.stringify(
        pathToFileURL(
          createRequire(here)
            .resolve('tsx/esm/api')
            .replace(/\.cjs$/, '.mjs'),
        ).href,
      )
    : '';
  const boot = `import { workerData } from 'node:worker_threads';
const signal = new Int32Array(workerData.signal);
const stop = (error) => {
  if (Atomics.load(signal, 1) < 0) return;
  try { workerData.port.postMessage({ id: ${STOPPED}, error }); } catch {}
  Atomics.store(signal, 1, -1);
  Atomics.notify(signal, 1);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
};
process.on('exit', (code) => stop('it exited with code ' + code));
try {
  ${fromSource ? `(await import(${tsx})).register();` : ''}
  await import(${entry});
} catch (e) {
  stop(String((e && e.stack) || e));
}`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), options);
}

/** The id of the message a worker sends when it cannot start or stops. */
const STOPPED = 0;

interface Slot {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  /** Messages taken off the port so far. */
  received: number;
  /** Pending asynchronous waits (the port is ref'd while there are any). */
  asyncWaits: number;
  dead: Error | null;
}

const slots: Slot[] = [];
const results = new Map<number, JobResult>();
const waiters = new Map<number, (r: JobResult) => void>();
const discarded = new Set<number>();
let nextId = 1;

function deliver(r: JobResult): void {
  if (r.id === STOPPED || discarded.delete(r.id)) return;
  const w = waiters.get(r.id);
  if (w) {
    waiters.delete(r.id);
    w(r);
  } else {
    results.set(r.id, r);
  }
}

function slot(k: number): Slot {
  let s = slots[k];
  if (s && !s.dead) return s;
  const signal = new Int32Array(new SharedArrayBuffer(8));
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker({ addon: addonPath, threads: 1, signal: signal.buffer as SharedArrayBuffer, port: port2 }, [port2]);
  // Wait for the worker's thread setting, then give the process-wide default back
  // to this thread's value (see poolWorker.ts). Once per worker, a few ms.
  const threads = native.getNumThreads();
  for (let t = 0; Atomics.load(signal, 1) === 0 && worker.threadId !== -1 && t < 100; t++) Atomics.wait(signal, 1, 0, 100);
  native.setNumThreads(threads);
  if (Atomics.load(signal, 1) < 0) {
    const m = receiveMessageOnPort(port1)?.message as JobResult | undefined;
    port1.close();
    void worker.terminate();
    throw new Error(`DataLoader: the loader worker did not start: ${m?.error ?? 'it stopped'}`);
  }
  s = { worker, port: port1, signal, received: 0, asyncWaits: 0, dead: null };
  const me = s;
  port1.on('message', (m: JobResult) => {
    me.received++;
    deliver(m);
  });
  port1.unref();
  worker.unref();
  worker.on('error', (e) => {
    me.dead = e;
  });
  worker.on('exit', (code) => {
    me.dead ??= new Error(`the loader worker exited with code ${code}`);
    // Fail whoever waits on this worker's jobs.
    for (const [id, w] of [...waiters]) {
      if (jobSlot.get(id) === me) {
        waiters.delete(id);
        w({ id, error: me.dead.message });
      }
    }
  });
  slots[k] = s;
  return s;
}

const jobSlot = new Map<number, Slot>();

/** Sends `job` to worker `k` (transferring the input buffers); returns the job id. */
export function submit(k: number, job: Job): number {
  const s = slot(k);
  const id = nextId++;
  jobSlot.set(id, s);
  s.worker.postMessage(
    { id, ...job },
    job.inputs.map((i) => i.buffer),
  );
  return id;
}

function take(id: number): JobResult | undefined {
  const r = results.get(id);
  if (r) {
    results.delete(id);
    jobSlot.delete(id);
  }
  return r;
}

/** Blocks this thread until job `id` is done. */
export function waitSync(id: number): JobResult {
  const s = jobSlot.get(id);
  if (!s) throw new Error(`DataLoader: unknown loader job ${id}`);
  for (;;) {
    const r = take(id);
    if (r) return r;
    const m = receiveMessageOnPort(s.port);
    if (m) {
      s.received++;
      const r = m.message as JobResult;
      if (r.id === STOPPED) s.dead ??= new Error(r.error ?? 'it stopped');
      deliver(r);
      continue;
    }
    if (s.dead || s.worker.threadId === -1 || Atomics.load(s.signal, 1) < 0) {
      jobSlot.delete(id);
      throw new Error(`DataLoader: the loader worker stopped: ${s.dead?.message ?? 'it exited'}`);
    }
    // The worker bumps the counter after each postMessage: wait until it passes what we took.
    Atomics.wait(s.signal, 0, s.received, 1000);
  }
}

/** Resolves when job `id` is done, without blocking the event loop. */
export function wait(id: number): Promise<JobResult> {
  const r = take(id);
  if (r) return Promise.resolve(r);
  const s = jobSlot.get(id);
  if (!s) return Promise.reject(new Error(`DataLoader: unknown loader job ${id}`));
  if (s.dead) return Promise.reject(new Error(`DataLoader: the loader worker stopped: ${s.dead.message}`));
  return new Promise((resolve) => {
    if (s.asyncWaits++ === 0) s.port.ref();
    waiters.set(id, (res) => {
      jobSlot.delete(id);
      if (--s.asyncWaits === 0) s.port.unref();
      resolve(res);
    });
  });
}

/** Drops job `id`'s result, now or when it arrives. */
export function discard(id: number): void {
  if (!take(id)) {
    discarded.add(id);
    jobSlot.delete(id);
  }
}

/** Stops every loader worker (they restart on demand). */
export async function closeLoaderWorkers(): Promise<void> {
  const all = slots.splice(0);
  await Promise.all(all.map((s) => s.worker.terminate()));
}
