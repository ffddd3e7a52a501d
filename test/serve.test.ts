// serve(): TorchServe's inference API over a real model on loopback. Concurrent
// requests are batched and each answer equals the same image run alone (int8
// bit for bit, float32 within a stated bound); the model is compiled once for
// every batch size; bad bodies get 400/413 with a clear message, an unknown
// model 404, a full queue 503 with Retry-After; close() answers every request
// received before it resolves; /metrics counts what happened.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tensor, autocast, makeLayers, manualSeed, memory, nn, quantization, serve, stack, tidy, transforms as T } from '../lib/index.js';
import type { ServeHandle, ServeOptions } from '../lib/serve/index.js';
import { type ChildResult, type CliRun, bytesOf } from './helpers.js';

const CLASSES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const tf = new T.Compose([new T.Resize(32), new T.CenterCrop(32), new T.ToTensor(), new T.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])]);
const preprocess = (image: Tensor): Tensor => tf.forward(image);

/** A small VGG for 32×32 RGB images (BatchNorm, dropout: what the compiled graph folds and drops), counting its traces. */
class Counted extends nn.Module<[Tensor], Tensor> {
  traces = 0;
  constructor(readonly net: nn.Sequential) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.traces++; // compiled runs do not call forward: only tracing (and its check) does
    return this.net(x);
  }
}

function smallVgg(): nn.Sequential {
  return new nn.Sequential(
    ...makeLayers([16, 'M', 32, 'M'], { batchNorm: true, inChannels: 3 }).children(),
    new nn.Flatten(),
    new nn.Linear(32 * 8 * 8, 64),
    new nn.ReLU(true),
    new nn.Dropout(),
    new nn.Linear(64, 10),
  ).eval();
}

/** Deterministic noise images (a seeded LCG), encoded as PNG. */
async function noisePng(seed: number, width = 40, height = 36): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < px.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    px[i] = s >>> 24;
  }
  return sharp(px, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

const post = async (url: string, body: BodyInit | Uint8Array, type?: string): Promise<Answer> => {
  const r = await fetch(url, { method: 'POST', body: body as BodyInit, headers: type ? { 'content-type': type } : {} });
  return { status: r.status, headers: r.headers, text: await r.text() };
};

/** The top-k entries of an answer in the order of the JSON text (JSON.parse would reorder integer-like keys). */
const entries = (text: string): [string, number][] => [...text.matchAll(/"((?:[^"\\]|\\.)*)":(-?[\d.e+-]+)/g)].map((m) => [m[1], Number(m[2])]);

/** A model whose batches wait for `open()`: lets a test fill the queue or close the server while a batch runs. */
function gated(model: nn.Module<any, Tensor>) {
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => (release = r));
  let started = 0;
  const engine = {
    async forwardAsync(x: Tensor) {
      started++;
      await gate;
      return model.forwardAsync(x);
    },
  };
  return {
    engine: engine as unknown as ServeOptions['model'],
    started: () => started,
    open: () => release(),
    close: () => {
      gate = new Promise<void>((r) => (release = r));
    },
  };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

/** Polls /metrics until its text matches. */
async function metricReaches(url: string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (pattern.test(await (await fetch(`${url}/metrics`)).text())) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`/metrics never matched ${pattern}`);
}

/** Runs `node <args>` to its end without blocking the event loop. */
function runNodeArgs(args: string[]): Promise<ChildResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (status, signal) => res({ status, signal, stdout, stderr }));
  });
}

const metricValue = (text: string, line: string): number => {
  const m = new RegExp(`^${line.replace(/[{}()[\]".+*?^$|\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

describe('serve()', () => {
  let pngs: Buffer[];
  let inputs: Tensor[];
  beforeAll(async () => {
    pngs = await Promise.all(Array.from({ length: 8 }, (_, i) => noisePng(i + 1)));
    // The model's input for each image, as the server prepares it.
    const { decodeImage } = await import('../lib/io/image.js');
    inputs = [];
    for (const p of pngs) {
      const img = await decodeImage(p);
      inputs.push(tidy(() => preprocess(img)));
      img.dispose();
    }
  });
  afterAll(() => {
    for (const x of inputs) x.dispose();
  });

  it('batches concurrent requests, compiles once for every batch size, and each answer equals the image alone (fp32 within 1e-5 of the largest logit, int8 bit for bit)', async () => {
    const before = memory().tensors;
    manualSeed(0);
    const model = new Counted(smallVgg());
    const calibration = stack(inputs);
    const int8 = quantization.quantize(model.net, [calibration]);
    // The engine's own rows: a batch of 8 against each image alone.
    // fp32: oneDNN may block a batch's GEMMs differently from a single image's, summing the same
    // products in another order: each float32 dot product then rounds differently, by a few ulps
    // of the logits (measured: identical up to batch 5, 4.8e-7 of the largest logit at batch 8 on
    // the Zen 4 development machine, libtorch 1.13). Bound: 1e-5 of the largest logit, about 300
    // ulps of it (the worst-case reordering error of a 2,048-term sum is larger, ~2·2048·2^-24
    // of its absolute sum, but oneDNN's blockings differ only in their partial-sum splits).
    // int8: integer accumulation is exact and requantization is per element, so any blocking
    // gives the same bits.
    const measured: Record<string, number> = {};
    for (const [name, m] of [
      ['fp32', model],
      ['int8', int8],
    ] as const) {
      const alone: Tensor[] = [];
      for (const x of inputs) {
        const one = x.unsqueeze(0);
        alone.push(await m.forwardAsync(one));
        one.dispose();
      }
      // Compiled (traced, then checked) on the first call.
      if (m === model) expect(model.traces).toBeGreaterThan(0);
      const traces = model.traces;
      const batch = await m.forwardAsync(calibration);
      let worst = 0;
      let scale = 0;
      let bitwise = true;
      tidy(() => {
        for (let i = 0; i < inputs.length; i++) {
          const row = batch.narrow(0, i, 1);
          bitwise &&= bytesOf(row).equals(bytesOf(alone[i]));
          worst = Math.max(worst, row.sub(alone[i]).abs().max().item() as number);
          scale = Math.max(scale, alone[i].abs().max().item() as number);
        }
      });
      // A batch of 8: the same compiled graph.
      expect(model.traces).toBe(traces);
      measured[name] = worst / scale;
      if (name === 'int8') expect(bitwise).toBe(true);
      else expect(worst / scale).toBeLessThan(1e-5);
      batch.dispose();
      for (const a of alone) a.dispose();
    }
    console.log(`batch of 8 against each image alone, max |diff| / max |logit|: fp32 ${measured.fp32}, int8 ${measured.int8}`);

    // The same through HTTP: 8 concurrent requests (one batch: maxBatch arrived before the long
    // maxDelayMs), against a server with batching off.
    const traces = model.traces;
    const on = await serve({ model, name: 'small', classes: CLASSES, preprocess, port: 0, maxBatch: 8, maxDelayMs: 5000, topk: 10 });
    const off = await serve({ model, name: 'small', classes: CLASSES, preprocess, port: 0, maxBatch: 1, topk: 10 });
    const q8on = await serve({ model: int8, name: 'small', classes: CLASSES, preprocess, port: 0, maxBatch: 8, maxDelayMs: 5000, topk: 10 });
    const q8off = await serve({ model: int8, name: 'small', classes: CLASSES, preprocess, port: 0, maxBatch: 1, topk: 10 });
    try {
      for (const [batched, single, exact] of [
        [on, off, false],
        [q8on, q8off, true],
      ] as const) {
        const together = await Promise.all(pngs.map((p) => post(`${batched.url}/predictions/small`, p, 'image/png')));
        const alone: Answer[] = [];
        for (const p of pngs) alone.push(await post(`${single.url}/predictions/small`, p, 'image/png'));
        for (let i = 0; i < pngs.length; i++) {
          expect(together[i].status).toBe(200);
          expect(alone[i].status).toBe(200);
          const [a, b] = [entries(together[i].text), entries(alone[i].text)];
          expect(a).toHaveLength(10);
          // Most probable first.
          expect(a.map(([, p]) => p)).toEqual([...a.map(([, p]) => p)].sort((x, y) => y - x));
          if (exact) expect(together[i].text).toBe(alone[i].text);
          else {
            // Softmax moves no probability by more than the largest change of a logit.
            const pa = Object.fromEntries(a);
            for (const [k, p] of b) expect(Math.abs(pa[k] - p)).toBeLessThan(1e-5 * 0.31);
          }
        }
        const metrics = await (await fetch(`${batched.url}/metrics`)).text();
        expect(metricValue(metrics, 'vggtorch_batch_size_bucket{le="8"}') - metricValue(metrics, 'vggtorch_batch_size_bucket{le="4"}')).toBe(1);
        expect(metricValue(metrics, 'vggtorch_requests_total{route="/predictions/:model",status="200"}')).toBe(8);
        const offMetrics = await (await fetch(`${single.url}/metrics`)).text();
        expect(metricValue(offMetrics, 'vggtorch_batch_size_count')).toBe(8);
        expect(metricValue(offMetrics, 'vggtorch_batch_size_bucket{le="1"}')).toBe(8);
      }
      // Warm-ups and batches of 8 and of 1 ran: no new trace.
      expect(model.traces).toBe(traces);
    } finally {
      await Promise.all([on.close(), off.close(), q8on.close(), q8off.close()]);
    }
    int8.dispose();
    model.dispose();
    calibration.dispose();
    // Every tensor of the requests, batches and compiled graphs is freed.
    expect(memory().tensors).toBe(before);
  });

  it('answers under autocast what the bfloat16 graph gives the image alone', async () => {
    manualSeed(1);
    const model = smallVgg();
    const server = await serve({ model, name: 'amp', classes: CLASSES, preprocess, port: 0, amp: 'bfloat16', topk: 3 });
    try {
      const r = await post(`${server.url}/predictions/amp`, pngs[0], 'image/png');
      expect(r.status).toBe(200);
      const want = tidy(() => {
        const logits = autocast('cpu', { dtype: 'bfloat16' }, () => model.predict(inputs[0].unsqueeze(0)));
        expect(logits.dtype).toBe('bfloat16');
        const [p, i] = logits.float().softmax(1).topk(3);
        return Array.from(p.toTypedArray() as Float32Array, (prob, j) => [CLASSES[Number(i.toTypedArray()[j])], prob]);
      });
      expect(entries(r.text)).toEqual(want);
    } finally {
      await server.close();
    }
    model.dispose();
  });

  it('writes the top k most probable first, also for classes named by numbers (JSON.parse would reorder them)', async () => {
    manualSeed(4);
    const model = smallVgg();
    const numbers = CLASSES.map((_, i) => String(9 - i));
    const server = await serve({ model, name: 'numbers', classes: numbers, preprocess, port: 0, topk: 10 });
    try {
      const r = await post(`${server.url}/predictions/numbers`, pngs[3], 'image/png');
      const got = entries(r.text);
      expect(got).toHaveLength(10);
      expect(got.map(([, p]) => p)).toEqual(got.map(([, p]) => p).sort((a, b) => b - a));
      // The same pairs as JSON.parse gives, in another order than its numeric one.
      expect(Object.fromEntries(got)).toEqual(JSON.parse(r.text));
      expect(got.map(([k]) => k)).not.toEqual(Object.keys(JSON.parse(r.text)));
    } finally {
      await server.close();
    }
    model.dispose();
  });

  describe('input, errors and backpressure', () => {
    let model: nn.Sequential;
    let server: ServeHandle;
    beforeAll(async () => {
      manualSeed(2);
      model = smallVgg();
      server = await serve({ model, name: 'small', classes: CLASSES, preprocess, port: 0, bodyLimit: 200_000, maxPixels: 10_000_000 });
    });
    afterAll(async () => {
      await server.close();
      model.dispose();
    });

    it('takes raw bytes and multipart files alike; refuses bad bodies with 400, big ones with 413, unknown names with 404', async () => {
      const url = `${server.url}/predictions/small`;
      const good = await post(url, pngs[1], 'image/png');
      expect(good.status).toBe(200);
      expect(good.headers.get('content-type')).toMatch(/^application\/json/);
      expect((await post(url, pngs[1], 'application/octet-stream')).text).toBe(good.text);
      const form = new FormData();
      form.append('data', new Blob([new Uint8Array(pngs[1])]), 'photo.png');
      expect((await post(url, form)).text).toBe(good.text);

      const jpeg = await sharp(pngs[2]).resize(256, 256).jpeg().toBuffer();
      const truncated = jpeg.subarray(0, Math.floor(jpeg.length * 0.6));
      // A 1×1 PNG whose header claims 100,000 × 100,000 pixels (its CRC made right).
      const absurd = Buffer.from(
        await sharp({ create: { width: 1, height: 1, channels: 3, background: 'white' } })
          .png()
          .toBuffer(),
      );
      absurd.writeUInt32BE(100_000, 16);
      absurd.writeUInt32BE(100_000, 20);
      absurd.writeUInt32BE(crc32(absurd.subarray(12, 29)), 29);
      const noFile = new FormData();
      noFile.append('data', 'not a file');
      const bigForm = new FormData();
      bigForm.append('data', new Blob([new Uint8Array(300_000)]), 'big.png');
      const cases: [string, Promise<Answer>, number, string, RegExp][] = [
        ['empty body', post(url, new Uint8Array(0), 'image/png'), 400, 'BadRequestException', /the body is empty/],
        ['text/plain', post(url, 'a cat', 'text/plain'), 400, 'BadRequestException', /^Content-Type text\/plain: send the image as its bytes/],
        ['an unknown type', post(url, pngs[1], 'foo/bar'), 400, 'BadRequestException', /^Content-Type foo\/bar: send the image/],
        ['no type', post(url, pngs[1]), 400, 'BadRequestException', /send the image/],
        ['not an image', post(url, Buffer.from('GIF89a but not really'), 'image/gif'), 400, 'BadRequestException', /not an image this server can decode/],
        ['a truncated JPEG', post(url, truncated, 'image/jpeg'), 400, 'BadRequestException', /the image does not decode \(truncated or corrupt\?\)/],
        [
          'absurd dimensions',
          post(url, absurd, 'image/png'),
          400,
          'BadRequestException',
          /100000×100000 = 10000000000 pixels, over this server's limit of 10000000/,
        ],
        ['multipart without a file', post(url, noFile), 400, 'BadRequestException', /has no file field/],
        ['raw body over bodyLimit', post(url, Buffer.alloc(300_000), 'image/png'), 413, 'RequestEntityTooLargeException', /over the limit of 200000 bytes/],
        ['multipart file over bodyLimit', post(url, bigForm), 413, 'RequestEntityTooLargeException', /over the limit of 200000 bytes/],
        ['an unknown model', post(`${server.url}/predictions/other`, pngs[1], 'image/png'), 404, 'ModelNotFoundException', /^Model not found: other$/],
        ['an unknown route', post(`${server.url}/models`, pngs[1], 'image/png'), 404, 'ResourceNotFoundException', /POST \/predictions\/<model>/],
      ];
      for (const [what, answer, code, type, message] of cases) {
        const r = await answer;
        const body = JSON.parse(r.text) as { code: number; type: string; message: string };
        expect({ what, status: r.status, code: body.code, type: body.type }).toEqual({ what, status: code, code, type });
        expect(body.message, what).toMatch(message);
      }
      // Still serving.
      expect((await post(url, pngs[1], 'image/png')).text).toBe(good.text);
      expect(await (await fetch(`${server.url}/ping`)).json()).toEqual({ status: 'Healthy' });
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/^# TYPE vggtorch_requests_total counter$/m);
      expect(metrics).toMatch(/^# TYPE vggtorch_request_duration_seconds histogram$/m);
      expect(metrics).toMatch(/^vggtorch_queue_depth 0$/m);
      expect(metricValue(metrics, 'vggtorch_requests_total{route="/predictions/:model",status="200"}')).toBe(4);
      expect(metricValue(metrics, 'vggtorch_requests_total{route="/predictions/:model",status="400"}')).toBe(8);
      expect(metricValue(metrics, 'vggtorch_requests_total{route="/predictions/:model",status="413"}')).toBe(2);
      expect(metricValue(metrics, 'vggtorch_requests_total{route="/predictions/:model",status="404"}')).toBe(1);
      expect(metricValue(metrics, 'vggtorch_requests_total{route="unmatched",status="404"}')).toBe(1);
      expect(metricValue(metrics, 'vggtorch_request_duration_seconds_count')).toBe(15);
    });

    it('checks its options', async () => {
      await expect(serve({} as ServeOptions)).rejects.toThrow(/^serve\(\): option 'model' is required$/);
      await expect(serve({ model: {} as ServeOptions['model'] })).rejects.toThrow(/^serve\(\): option 'model' must be an nn\.Module or a jit\.ScriptModule/);
      await expect(serve({ model, maxBatch: 0 })).rejects.toThrow(/^serve\(\): option 'maxBatch' must be a positive integer, got 0/);
      await expect(serve({ model, port: 70000 })).rejects.toThrow(/^serve\(\): option 'port' must be at most 65535, got 70000/);
      await expect(serve({ model, maxBatchSize: 4 } as ServeOptions)).rejects.toThrow(
        /^serve\(\): unknown option 'maxBatchSize' \(did you mean 'maxBatch'\?\)/,
      );
      // The ImageNet categories by default: a 10-class model is caught before it listens.
      await expect(serve({ model, preprocess, port: 0 })).rejects.toThrow(/gives outputs of shape \[1, 10\] for one image, but there are 1000 classes/);
      await expect(serve({ model, classes: CLASSES, preprocess, port: Number(new URL(server.url).port) })).rejects.toThrow(
        /^serve\(\): cannot listen on 127\.0\.0\.1:\d+: /,
      );
    });
  });

  it('a full queue answers 503 with Retry-After; close() answers every request received, then stops listening', async () => {
    manualSeed(3);
    const model = smallVgg();
    const g = gated(model);
    const server = await serve({
      model: g.engine,
      name: 'small',
      classes: CLASSES,
      preprocess,
      port: 0,
      maxBatch: 2,
      maxDelayMs: 0,
      queueLimit: 3,
      warmup: false,
    });
    const url = `${server.url}/predictions/small`;
    const metrics = () => fetch(`${server.url}/metrics`).then((r) => r.text());
    // One batch runs (held at the gate), three images wait: the queue is full.
    const first = post(url, pngs[0], 'image/png');
    await until(() => g.started() === 1, 'the first batch');
    const waiting = [1, 2, 3].map((i) => post(url, pngs[i], 'image/png'));
    await until(() => server.context.models.get('small')!.batcher.depth === 3, 'three queued images');
    expect(await metrics()).toMatch(/^vggtorch_queue_depth 3$/m);
    const refused = await post(url, pngs[4], 'image/png');
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 503, type: 'ServiceUnavailableException', message: expect.stringMatching(/queue holds 3 images/) });
    // /ping answers while the model is busy.
    expect((await fetch(`${server.url}/ping`)).status).toBe(200);
    // close() now: it waits for the four requests received, which finish once the gate opens.
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    g.open();
    const answers = await Promise.all([first, ...waiting]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    await closing;
    // Batches of 1 (the first), then 2 and 1 from the queue.
    await expect(fetch(`${server.url}/ping`)).rejects.toThrow();
    model.dispose();
  });
});

describe('vgg-torch serve (the built bin, dist/cli.js)', () => {
  const bin = resolve('dist/cli.js');
  const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-serve-'));
  const checkpoint = join(dir, 'run', 'checkpoint.pth');
  let shoe: string;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts `node dist/cli.js serve …`; resolves with the child and its URL once it listens. */
  const start = async (args: string[]): Promise<{ child: ChildProcess; url: string; done: Promise<CliRun> }> => {
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const done = new Promise<CliRun>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
    const url = await new Promise<string>((res, rej) => {
      child.stdout!.on('data', (d) => {
        stdout += d;
        const m = /at (http:\/\/[\d.]+:\d+)/.exec(stdout);
        if (m) res(m[1]);
      });
      void done.then((r) => rej(new Error(`serve exited with ${r.code}: ${r.stderr}`)));
    });
    return { child, url, done };
  };

  beforeAll(async () => {
    // A checkpoint of a tiny Fashion-MNIST run, written by the built bin's train.
    const train = await runNodeArgs([
      bin,
      'train',
      '--dataset',
      'fashion-mnist',
      '--arch',
      'tutorial',
      '--epochs',
      '1',
      '--limit',
      '64',
      '--test-limit',
      '32',
      '--batch-size',
      '32',
      '--amp',
      'off',
      '--out',
      join(dir, 'run'),
    ]);
    expect(train.stderr).toBe('');
    expect(train.status).toBe(0);
    shoe = join(dir, 'shoe.png');
    await sharp(await noisePng(7, 28, 28)).toFile(shoe);
    mkdirSync(join(dir, 'calibration'));
    for (let i = 0; i < 4; i++) await sharp(await noisePng(20 + i, 28, 28)).toFile(join(dir, 'calibration', `${i}.png`));
  });

  it('prints its help and refuses bad flags with one line', async () => {
    const help = await runNodeArgs([bin, 'serve', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: vgg-torch serve \[options\]/);
    expect(help.stdout).toMatch(/^ {2}--max-delay-ms <ms> +how long the oldest waiting image waits/m);
    const top = await runNodeArgs([bin, '--help']);
    expect(top.stdout).toMatch(/^ {2}serve +serve a model over HTTP/m);
    for (const [args, code, message] of [
      [['--int8'], 2, /^vgg-torch: --int8 needs --calibrate <dir>/],
      [['--calibrate', dir], 2, /^vgg-torch: --calibrate goes with --int8/],
      [['--port', '70000'], 2, /^vgg-torch: --port must be an integer from 0 to 65535, got '70000'/],
      [['--max-batch', '0'], 2, /^vgg-torch: --max-batch must be an integer from 1 to 1024, got '0'/],
      [['--checkpoint', join(dir, 'none.pth')], 1, /^vgg-torch: no such checkpoint: /],
      [['extra'], 2, /^vgg-torch: unexpected argument 'extra'/],
    ] as [string[], number, RegExp][]) {
      const r = await runNodeArgs([bin, 'serve', ...args]);
      expect({ args, code: r.status }).toEqual({ args, code });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it("answers what 'vgg-torch predict' prints for the checkpoint, and SIGTERM drains the requests received, then exits 0", async () => {
    const predicted = await runNodeArgs([bin, 'predict', shoe, '--checkpoint', checkpoint, '--topk', '3']);
    expect(predicted.status).toBe(0);
    const lines = [...predicted.stdout.matchAll(/^ +([\d.]+) % {2}(.+)$/gm)].map((m) => [m[2], m[1]]);
    expect(lines).toHaveLength(3);
    // A long delay: three requests wait in the queue for their batch when SIGTERM comes.
    const server = await start(['--checkpoint', checkpoint, '--topk', '3', '--max-batch', '8', '--max-delay-ms', '3000']);
    const png = readFileSync(shoe);
    const answers = [0, 1, 2].map(() => post(`${server.url}/predictions/tutorial`, png, 'image/png'));
    await metricReaches(server.url, /^vggtorch_queue_depth 3$/m);
    server.child.kill('SIGTERM');
    const results = await Promise.all(answers);
    const run = await server.done;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^SIGTERM: no new connections; answering the requests received \(3 queued\), then stopping\nStopped\.$/m);
    for (const r of results) {
      expect(r.status).toBe(200);
      // predict's percentages, to their two decimals.
      expect(entries(r.text).map(([k, p]) => [k, (p * 100).toFixed(2)])).toEqual(lines);
    }
  });

  it('--int8 quantizes with the calibration images and serves the int8 model', async () => {
    const server = await start(['--checkpoint', checkpoint, '--int8', '--calibrate', join(dir, 'calibration'), '--name', 'shoes']);
    try {
      const r = await post(`${server.url}/predictions/shoes`, readFileSync(shoe), 'image/png');
      expect(r.status).toBe(200);
      expect(entries(r.text)).toHaveLength(5);
      expect((await post(`${server.url}/predictions/tutorial`, readFileSync(shoe), 'image/png')).status).toBe(404);
    } finally {
      server.child.kill('SIGINT');
    }
    const run = await server.done;
    expect(run.stdout).toMatch(/^Serving shoes \(int8, /m);
    expect(run.code).toBe(130);
  });
});
