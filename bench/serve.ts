// bench/serve: vgg16 behind HTTP under load, on loopback. Each server runs in its own child process
// (a server that blocks its event loop really blocks it, and the load generator is not in its
// loop); the load comes from autocannon in this process, at each concurrency in turn, all in one run.
//
// Servers (one at a time, the same vgg16 weights, the same threads):
//   vgg-torch fp32, batching     serve({ maxBatch: 8, maxDelayMs: 5 }): the dynamic batcher in front of forwardAsync
//   vgg-torch fp32, no batching  serve({ maxBatch: 1 }): one forwardAsync per request, one at a time
//   vgg-torch int8, batching / no batching: the same on quantization.quantize(model, 4 calibration images)
//   onnxruntime-node             Fastify 5 as serve(), the model exported by this package's onnx.export,
//                                one session.run per request (it runs on the event loop's thread)
// Every server decodes and preprocesses alike (lib/serve's imageFromBytes, then
// VGG16_Weights.IMAGENET1K_V1.transforms(): resize 256, crop 224, normalize, in libtorch) and
// answers the same JSON top-5 (softmax in libtorch): only the engine and how it is driven differ.
//
// Each (server, concurrency) is one autocannon run: warm-up until every connection has had an answer
// and WARMUP seconds have passed (this compiles each batch shape and fills the queue to its steady
// state), then a window of at least DURATION seconds and MIN_ANSWERS answers (and one answer per
// connection), from an answer to an answer (a batching server answers in bursts): images/s and
// latency from the answers inside it, and GET /ping p99 from a separate client at PING_HZ, one ping
// at a time, on its own connection. /ping on the idle server is printed too: a busy machine's own
// scheduling noise. The requests left in flight when a run stops are drained before the next
// concurrency; after the last, the server is killed.
// The weights are random (manualSeed(0)): pretrained weights are not downloaded here, and the
// speed does not depend on them.
//
// Run: npm run bench:serve   (no Python needed; about 10 minutes on a busy 2-core machine)
// Env: CONCURRENCY (1,8,32), DURATION (10 s measured), WARMUP (3 s at least), THREADS (2, at most the cores),
//      MAX_BATCH (8), MAX_DELAY_MS (5), SYSTEMS (all: fp32-batch,fp32-single,int8-batch,int8-single,ort),
//      PING_HZ (10), MIN_ANSWERS (10), JSON (a file to write the results to; they are printed too).
// A smoke run: QUICK=1 npm run bench:serve   (CONCURRENCY 1,4, DURATION 2, WARMUP 1, MIN_ANSWERS 2); not a test.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import {
  VGG16_Weights,
  dispose,
  fromBuffer,
  inferenceMode,
  load,
  manualSeed,
  onnx,
  quantization,
  randn,
  save,
  setNumThreads,
  tidy,
  vgg16,
} from '../lib/index.js';
import { imageFromBytes } from '../lib/serve/image.js';
import { serve } from '../lib/serve/index.js';
import type { Tensor } from '../lib/tensor/tensor.js';
import { machine } from './machine.js';

const QUICK = process.env.QUICK === '1';
const CONCURRENCY = (process.env.CONCURRENCY ?? (QUICK ? '1,4' : '1,8,32')).split(',').map(Number);
const DURATION = Number(process.env.DURATION ?? (QUICK ? 2 : 10));
const WARMUP = Number(process.env.WARMUP ?? (QUICK ? 1 : 3));
const THREADS = Number(process.env.THREADS ?? Math.min(2, availableParallelism()));
const MAX_BATCH = Number(process.env.MAX_BATCH ?? 8);
const MAX_DELAY_MS = Number(process.env.MAX_DELAY_MS ?? 5);
const PING_HZ = Number(process.env.PING_HZ ?? 10);
/** A request unanswered this long is an error (autocannon's default, 10 s, is shorter than a queue of 32 vgg16 images on 2 busy cores). */
const TIMEOUT_S = 300;
/** The longest warm-up before measuring anyway (said in the output). */
const WARMUP_MAX_S = 180;
/** The fewest answers a window counts (it grows past DURATION until it has them, or every connection has answered once). */
const MIN_ANSWERS = Number(process.env.MIN_ANSWERS ?? (QUICK ? 2 : 10));
/** The longest window. */
const WINDOW_MAX_S = 240;
/** Answers this close after the one a window starts or ends at belong to its burst (one batch's rows). */
const BURST_MS = 50;
/** Seconds of /ping on an idle server, before the load. */
const IDLE_PING_S = QUICK ? 1 : 3;
const MODEL = 'vgg16';

interface SystemSpec {
  id: string;
  label: string;
  engine: 'vgg-torch' | 'ort';
  int8: boolean;
  maxBatch: number;
}
const ALL: SystemSpec[] = [
  { id: 'fp32-batch', label: `vgg-torch fp32, batching (≤${MAX_BATCH}, ${MAX_DELAY_MS} ms)`, engine: 'vgg-torch', int8: false, maxBatch: MAX_BATCH },
  { id: 'fp32-single', label: 'vgg-torch fp32, no batching', engine: 'vgg-torch', int8: false, maxBatch: 1 },
  { id: 'int8-batch', label: `vgg-torch int8, batching (≤${MAX_BATCH}, ${MAX_DELAY_MS} ms)`, engine: 'vgg-torch', int8: true, maxBatch: MAX_BATCH },
  { id: 'int8-single', label: 'vgg-torch int8, no batching', engine: 'vgg-torch', int8: true, maxBatch: 1 },
  { id: 'ort', label: 'onnxruntime-node fp32, session.run per request', engine: 'ort', int8: false, maxBatch: 1 },
];

/** What a server child is told (in its environment). */
interface ChildSpec extends SystemSpec {
  weights: string;
  onnx: string;
  images: string[];
  threads: number;
}
/** Child → parent messages. */
type FromChild = { ready: string } | { idle: boolean } | { error: string };

// ---------------------------------------------------------------- server children

/** The top k of one row of logits, as serve() answers: `{"class": probability, …}`, most probable first. */
function topkJson(logits: Tensor, k: number): string {
  const names = VGG16_Weights.IMAGENET1K_V1.meta.categories ?? [];
  return tidy(() =>
    inferenceMode(() => {
      const [p, i] = logits.softmax(0).topk(k);
      const probs = p.toTypedArray() as Float32Array;
      const idx = i.toTypedArray();
      return `{${Array.from(probs, (prob, j) => `${JSON.stringify(names[Number(idx[j])])}:${JSON.stringify(prob)}`).join(',')}}`;
    }),
  );
}

/** The same vgg16 (random weights from the parent's state dict), eval mode. */
function loadModel(weights: string) {
  const model = vgg16().eval();
  const sd = load(weights) as Map<string, Tensor>;
  model.loadStateDict(sd);
  dispose(sd); // the model holds its own copies
  return model;
}

/** A server in this child: its URL, and whether it has answered every request it received. */
interface ChildServer {
  url: string;
  idle: () => boolean;
}

async function vggTorchServer(spec: ChildSpec): Promise<ChildServer> {
  const model = loadModel(spec.weights);
  let served = model;
  if (spec.int8) {
    // Calibrated on the request images, preprocessed as the server does.
    const preset = VGG16_Weights.IMAGENET1K_V1.transforms();
    const calibration: Tensor[] = [];
    for (const file of spec.images) {
      const image = await imageFromBytes(readFileSync(file), Number.MAX_SAFE_INTEGER);
      calibration.push(tidy(() => preset.forward(image).unsqueeze(0)));
      image.dispose();
    }
    for (let i = 0; i < 2; i++) calibration.push(randn(1, 3, 224, 224));
    served = quantization.quantize(model, calibration) as unknown as typeof model;
    for (const c of calibration) c.dispose();
  }
  const handle = await serve({ model: served, name: MODEL, port: 0, maxBatch: spec.maxBatch, maxDelayMs: MAX_DELAY_MS, queueLimit: 1024 });
  const batcher = handle.context.modelOf(MODEL).batcher;
  return { url: handle.url, idle: () => batcher.depth === 0 && batcher.inFlight === 0 };
}

async function ortServer(spec: ChildSpec): Promise<ChildServer> {
  const [{ default: Fastify }, ort] = await Promise.all([import('fastify'), import('onnxruntime-node')]);
  const session = await ort.InferenceSession.create(spec.onnx, { intraOpNumThreads: spec.threads, interOpNumThreads: 1, executionProviders: ['cpu'] });
  const [input, output] = [session.inputNames[0], session.outputNames[0]];
  const preset = VGG16_Weights.IMAGENET1K_V1.transforms();
  let pending = 0;
  const app = Fastify({ bodyLimit: 16 * 2 ** 20, logger: false });
  for (const type of [/^image\//i, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  }
  app.get('/ping', async () => ({ status: 'Healthy' }));
  app.post<{ Params: { model: string } }>('/predictions/:model', async (request, reply) => {
    pending++;
    try {
      const image = await imageFromBytes(request.body as Buffer, 40_000_000);
      const x = tidy(() => preset.forward(image).unsqueeze(0).contiguous());
      image.dispose();
      const feed = new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape);
      x.dispose();
      const out = await session.run({ [input]: feed });
      const data = out[output].data as Float32Array;
      const logits = fromBuffer(data, { dtype: 'float32', shape: [data.length] });
      try {
        reply.type('application/json; charset=utf-8');
        return topkJson(logits, 5);
      } finally {
        logits.dispose();
      }
    } finally {
      pending--;
    }
  });
  // The same check serve() makes before listening: one image through, which also warms ORT up.
  const warm = new ort.Tensor('float32', new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
  await session.run({ [input]: warm });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, idle: () => pending === 0 };
}

async function childMain(spec: ChildSpec): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  // The parent gone (killed, crashed): so is this server.
  process.on('disconnect', () => process.exit(0));
  try {
    setNumThreads(spec.threads);
    const server = spec.engine === 'ort' ? await ortServer(spec) : await vggTorchServer(spec);
    process.on('message', (m: { op: string }) => {
      if (m.op === 'idle') send({ idle: server.idle() });
    });
    send({ ready: server.url });
  } catch (e) {
    send({ error: (e as Error).stack ?? String(e) });
    process.exit(1);
  }
}

// ---------------------------------------------------------------- the load generator

type Autocannon = ((opts: Record<string, unknown>) => AutocannonInstance) & { track?: unknown };
interface AutocannonInstance {
  on(event: 'response', f: (client: object, status: number, bytes: number, ms: number) => void): void;
  on(event: 'done', f: (result: { errors: number; timeouts: number; non2xx: number; mismatches: number }) => void): void;
  on(event: 'error', f: (e: Error) => void): void;
  stop(): void;
}
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const children = new Set<ChildProcess>();
function killChildren(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
}
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killChildren();
    process.exit(130);
  });
}

/** A server child, started and ready; `ask` sends one op and resolves with the child's next message. */
async function startServer(spec: ChildSpec): Promise<{ url: string; ask: (op: string) => Promise<FromChild>; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, VGG_TORCH_SERVE_BENCH_CHILD: JSON.stringify(spec) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const next = () =>
    new Promise<FromChild>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${spec.label}: the server exited (${code}) before answering`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as FromChild);
      });
    });
  const first = await next();
  if ('error' in first) throw new Error(`${spec.label}: the server did not start:\n${first.error}`);
  if (!('ready' in first)) throw new Error(`${spec.label}: unexpected message ${JSON.stringify(first)}`);
  return {
    url: first.ready,
    child,
    ask: (op) => {
      const answer = next();
      child.send({ op });
      return answer;
    },
  };
}

/** Kills a server child (the requests it still holds are of no interest) and waits for it to exit. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Until the server has answered everything it received (the requests a stopped run left behind). */
async function drain(server: { ask: (op: string) => Promise<FromChild> }): Promise<void> {
  const until = performance.now() + 600_000;
  for (let quiet = 0; quiet < 3 && performance.now() < until; ) {
    const m = await server.ask('idle');
    quiet = 'idle' in m && m.idle ? quiet + 1 : 0;
    await sleep(quiet > 0 ? 50 : 200);
  }
}

/** One GET /ping at a time, PING_HZ times a second, on its own connection: [time answered, ms]. */
function pinger(url: string): { stop: () => Promise<[number, number][]> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples: [number, number][] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      await new Promise<void>((resolve) => {
        const req = http.get(`${url}/ping`, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) samples.push([performance.now(), performance.now() - t]);
            resolve();
          });
        });
        req.on('error', () => resolve());
      });
      await sleep(Math.max(0, 1000 / PING_HZ - (performance.now() - t)));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      return samples;
    },
  };
}

const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

interface Run {
  system: string;
  label: string;
  concurrency: number;
  images_per_s: number;
  p50_ms: number;
  p99_ms: number;
  answers: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  bad_answers: number;
  ping_p99_ms: number;
  pings: number;
  warmup_s: number;
  warmup_capped: boolean;
  window_s: number;
  load_avg_1m: number;
}

/** Load at `concurrency` connections: warm-up, then DURATION seconds measured. */
async function measure(spec: SystemSpec, url: string, concurrency: number, bodies: { jpeg: Buffer; png: Buffer }): Promise<Run> {
  const answered: [number, number, number][] = []; // [time, ms, status]
  const clients = new Set<object>();
  let badAnswers = 0;
  const check = (status: number, body: string) => {
    if (status !== 200) return;
    try {
      if (Object.keys(JSON.parse(body)).length !== 5) badAnswers++;
    } catch {
      badAnswers++;
    }
  };
  const path = `/predictions/${MODEL}`;
  const started = performance.now();
  const instance = autocannon({
    url: `${url}${path}`,
    connections: concurrency,
    duration: 24 * 3600,
    timeout: TIMEOUT_S,
    requests: [
      { method: 'POST', path, headers: { 'content-type': 'image/jpeg' }, body: bodies.jpeg, onResponse: check },
      { method: 'POST', path, headers: { 'content-type': 'image/png' }, body: bodies.png, onResponse: check },
    ],
  });
  const done = new Promise<{ errors: number; timeouts: number; non2xx: number }>((resolve, reject) => {
    instance.on('done', resolve);
    instance.on('error', reject);
  });
  // Windows start and end just after an answer: a batching server answers in bursts (a batch's
  // rows together), and a window cut between bursts would count a burst or not by chance.
  const waiters: ((t: number) => void)[] = [];
  const nextAnswer = () => new Promise<number>((r) => waiters.push(r));
  let allAnswered: () => void = () => {};
  const everyClient = new Promise<void>((r) => {
    allAnswered = r;
  });
  instance.on('response', (client, status, _bytes, ms) => {
    const t = performance.now();
    answered.push([t, ms, status]);
    if (status >= 200 && status < 300) for (const w of waiters.splice(0)) w(t);
    if (status === 200 && !clients.has(client)) {
      clients.add(client);
      if (clients.size === concurrency) allAnswered();
    }
  });
  const ping = pinger(url);
  let capped = false;
  await Promise.race([
    Promise.all([everyClient, sleep(WARMUP * 1000)]),
    sleep(WARMUP_MAX_S * 1000).then(() => {
      capped = true;
    }),
  ]);
  const start = await Promise.race([nextAnswer(), sleep(WARMUP_MAX_S * 1000).then(() => performance.now())]);
  // At least DURATION seconds and MIN_ANSWERS answers (or every connection answered once more), at most WINDOW_MAX_S.
  const minAnswers = Math.max(MIN_ANSWERS, concurrency);
  const counted = () => answered.filter(([t, , s]) => t > start + BURST_MS && s >= 200 && s < 300).length;
  let end = start;
  while (performance.now() - start < WINDOW_MAX_S * 1000) {
    end = await Promise.race([nextAnswer(), sleep(WINDOW_MAX_S * 1000 - (performance.now() - start)).then(() => performance.now())]);
    if (end - start >= DURATION * 1000 && counted() >= minAnswers) break;
  }
  await sleep(BURST_MS);
  instance.stop();
  const result = await done;
  const pings = (await ping.stop()).filter(([t]) => t >= start && t <= end).map(([, ms]) => ms);
  const inWindow = answered.filter(([t]) => t > start + BURST_MS && t <= end + BURST_MS);
  const ok = inWindow.filter(([, , s]) => s >= 200 && s < 300).map(([, ms]) => ms);
  return {
    system: spec.id,
    label: spec.label,
    concurrency,
    images_per_s: ok.length / ((end - start) / 1000),
    window_s: (end - start) / 1000,
    p50_ms: percentile(ok, 50),
    p99_ms: percentile(ok, 99),
    answers: ok.length,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    bad_answers: badAnswers,
    ping_p99_ms: percentile(pings, 99),
    pings: pings.length,
    warmup_s: (start - started) / 1000,
    warmup_capped: capped,
    load_avg_1m: loadavg()[0],
  };
}

/** A 224×224 picture (smooth colours and seeded grain, like a photo's spectrum more than noise's) as JPEG and PNG. */
async function makeBodies(): Promise<{ jpeg: Buffer; png: Buffer }> {
  const [w, h] = [224, 224];
  const px = Buffer.alloc(w * h * 3);
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const grain = (rand() - 0.5) * 24;
      px[i] = Math.max(0, Math.min(255, 128 + 100 * Math.sin(x / 23) + grain));
      px[i + 1] = Math.max(0, Math.min(255, 128 + 100 * Math.cos(y / 31) + grain));
      px[i + 2] = Math.max(0, Math.min(255, 128 + 90 * Math.sin((x + y) / 41) + grain));
    }
  }
  const image = () => sharp(px, { raw: { width: w, height: h, channels: 3 } });
  return { jpeg: await image().jpeg({ quality: 90 }).toBuffer(), png: await image().png().toBuffer() };
}

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');

async function main(): Promise<void> {
  const ids = (process.env.SYSTEMS ?? ALL.map((s) => s.id).join(',')).split(',');
  const systems = ids.map((id) => {
    const s = ALL.find((a) => a.id === id);
    if (!s) throw new Error(`bench/serve: unknown system '${id}' (${ALL.map((a) => a.id).join(', ')})`);
    return s;
  });
  console.log(machine());
  const load0 = loadavg();
  console.log(`load average at start: ${load0.map((l) => l.toFixed(2)).join(', ')} (1, 5, 15 min) on ${availableParallelism()} cores`);
  console.log(
    `vgg16 with random weights (manualSeed(0)): pretrained weights cannot be downloaded here; the speed does not depend on them.\n` +
      `each server: its own process, ${THREADS} intra-op thread(s) (libtorch; onnxruntime intraOpNumThreads ${THREADS}, interOpNumThreads 1); ` +
      `concurrency ${CONCURRENCY.join(', ')}; ${DURATION} s measured after a warm-up of at least ${WARMUP} s (until every connection has had an answer); ` +
      `/ping at ${PING_HZ} Hz on its own connection`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-bench-serve-'));
  const runs: Run[] = [];
  const idlePing: Record<string, number> = {};
  try {
    const bodies = await makeBodies();
    const images = [join(dir, 'image.jpg'), join(dir, 'image.png')];
    writeFileSync(images[0], bodies.jpeg);
    writeFileSync(images[1], bodies.png);
    console.log(`request bodies: 224×224 JPEG (${bodies.jpeg.length} bytes) and PNG (${bodies.png.length} bytes), alternating`);
    const weights = join(dir, 'vgg16.pth');
    const onnxFile = join(dir, 'vgg16.onnx');
    if (systems.some((s) => s.engine === 'vgg-torch') || systems.some((s) => s.engine === 'ort')) {
      manualSeed(0);
      const model = vgg16().eval();
      tidy(() => save(model.stateDict(), weights));
      if (systems.some((s) => s.engine === 'ort')) {
        const x = randn(1, 3, 224, 224);
        onnx.export(model, x, onnxFile, { dynamicBatch: false });
        x.dispose();
      }
      model.dispose();
    }

    for (const spec of systems) {
      const t = performance.now();
      const server = await startServer({ ...spec, weights, onnx: onnxFile, images, threads: THREADS });
      console.error(`${spec.label}: ready in ${((performance.now() - t) / 1000).toFixed(1)} s at ${server.url}`);
      try {
        // /ping with no load: the machine's own scheduling noise, the floor under the loaded figures.
        const idle = pinger(server.url);
        await sleep(IDLE_PING_S * 1000);
        idlePing[spec.id] = percentile(
          (await idle.stop()).map(([, ms]) => ms),
          99,
        );
        for (const [i, c] of CONCURRENCY.entries()) {
          const run = await measure(spec, server.url, c, bodies);
          runs.push(run);
          console.error(
            `  c=${c}: ${fmt(run.images_per_s, 2)} img/s, p50 ${fmt(run.p50_ms, 0)} ms, p99 ${fmt(run.p99_ms, 0)} ms, /ping p99 ${fmt(run.ping_p99_ms)} ms ` +
              `(${run.answers} answers in ${run.window_s.toFixed(1)} s, warm-up ${run.warmup_s.toFixed(1)} s, load ${run.load_avg_1m.toFixed(1)})`,
          );
          // The requests a run left behind are answered before the next one; after the last, the server is killed with them.
          if (i < CONCURRENCY.length - 1) await drain(server);
        }
      } finally {
        await stopServer(server.child);
      }
    }
  } finally {
    killChildren();
    rmSync(dir, { recursive: true, force: true });
  }

  // ---- the table and the targets
  const find = (id: string, c: number) => runs.find((r) => r.system === id && r.concurrency === c);
  console.log(
    `\n| server | conc. | images/s | × ORT | p50 ms | p99 ms | answers | errors | non-2xx | /ping p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
  );
  for (const r of runs) {
    const ort = find('ort', r.concurrency);
    const vsOrt = ort && ort.images_per_s > 0 ? fmt(r.images_per_s / ort.images_per_s, 2) : '–';
    const warm = r.warmup_capped ? ' (warm-up capped)' : '';
    console.log(
      `| ${r.label}${warm} | ${r.concurrency} | ${fmt(r.images_per_s, 2)} | ${vsOrt} | ${fmt(r.p50_ms, 0)} | ${fmt(r.p99_ms, 0)} | ${r.answers} | ` +
        `${r.errors} (${r.timeouts} timeouts) | ${r.non2xx}${r.bad_answers ? ` (+${r.bad_answers} bad bodies)` : ''} | ${fmt(r.ping_p99_ms)} |`,
    );
  }

  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : Number.NaN);
  const c8 = CONCURRENCY.includes(8) ? 8 : CONCURRENCY[Math.min(1, CONCURRENCY.length - 1)];
  const cMax = Math.max(...CONCURRENCY);
  const c1 = Math.min(...CONCURRENCY);
  const targets: Record<string, { value: number; target: string; met: boolean | null }> = {};
  const target = (name: string, value: number, text: string, ok: (v: number) => boolean) => {
    targets[name] = { value: +value.toFixed(3), target: text, met: Number.isFinite(value) ? ok(value) : null };
  };
  for (const p of ['fp32', 'int8']) {
    const on = find(`${p}-batch`, c8);
    const off = find(`${p}-single`, c8);
    const single = find(`${p}-single`, c1);
    target(`${p} batching on / off throughput at c=${c8}`, ratio(on?.images_per_s, off?.images_per_s), '≥ 1.5', (v) => v >= 1.5);
    target(`${p} batching p99 at c=${c8} / single-request latency (no batching, c=${c1}, p50)`, ratio(on?.p99_ms, single?.p50_ms), '≤ 2.5', (v) => v <= 2.5);
  }
  const best = (p: string, c: number) => Math.max(find(`${p}-batch`, c)?.images_per_s ?? Number.NaN, find(`${p}-single`, c)?.images_per_s ?? Number.NaN);
  const ortC8 = find('ort', c8)?.images_per_s;
  target(`vgg-torch fp32 (batching) / onnxruntime-node throughput at c=${c8}`, ratio(find('fp32-batch', c8)?.images_per_s, ortC8), '≥ 1.0', (v) => v >= 1);
  target(`vgg-torch int8 (batching) / onnxruntime-node throughput at c=${c8}`, ratio(find('int8-batch', c8)?.images_per_s, ortC8), '≥ 3', (v) => v >= 3);
  target(`vgg-torch fp32 (best) / onnxruntime-node throughput at c=${c8}`, ratio(best('fp32', c8), ortC8), '≥ 1.0', (v) => v >= 1);
  for (const id of ['fp32-batch', 'int8-batch', 'ort']) {
    const r = find(id, cMax);
    if (r) target(`/ping p99 ms at c=${cMax}, ${r.label}`, r.ping_p99_ms, '< 20', (v) => v < 20);
  }
  console.log(`\ntargets (c=${c8} is the target's concurrency 8${c8 === 8 ? '' : ', not measured: the closest'}):`);
  for (const [name, t] of Object.entries(targets)) {
    console.log(`  ${name}: ${fmt(t.value, 2)} (target ${t.target}) ${t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met'}`);
  }
  console.log(`/ping p99 ms on the idle server (the machine's own noise): ${systems.map((s) => `${s.label} ${fmt(idlePing[s.id] ?? Number.NaN)}`).join('; ')}`);
  const load1 = loadavg();
  console.log(`load average at the end: ${load1.map((l) => l.toFixed(2)).join(', ')}`);

  const json = {
    machine: machine(),
    cores: availableParallelism(),
    load_average_start: load0,
    load_average_end: load1,
    weights: 'random (manualSeed(0)); pretrained weights not downloadable here',
    threads: THREADS,
    max_batch: MAX_BATCH,
    max_delay_ms: MAX_DELAY_MS,
    duration_s: DURATION,
    runs: runs.map((r) => ({ ...r, images_per_s: +r.images_per_s.toFixed(3), ping_p99_ms: +r.ping_p99_ms.toFixed(2) })),
    idle_ping_p99_ms: idlePing,
    targets,
  };
  console.log(`\n${JSON.stringify(json)}`);
  if (process.env.JSON) writeFileSync(process.env.JSON, `${JSON.stringify(json, null, 2)}\n`);
}

const childSpec = process.env.VGG_TORCH_SERVE_BENCH_CHILD;
if (childSpec) await childMain(JSON.parse(childSpec) as ChildSpec);
else await main();
