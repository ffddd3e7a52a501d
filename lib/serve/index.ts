// vgg-torch serve: a model behind TorchServe's inference API on Fastify, with a
// dynamic batcher in front of the compiled engine (forwardAsync, off the event
// loop), Prometheus metrics, backpressure and checked input.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { autocast } from '../amp/autocastMode.js';
import type { ScriptModule } from '../jit/scriptModule.js';
import { IMAGENET_CATEGORIES } from '../models/imagenetCategories.js';
import { VGG16_Weights } from '../models/weights.js';
import { Module } from '../nn/modules/module.js';
import { dispose, tidy } from '../tensor/scope.js';
import { zeros } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { type ClassificationPreset, ImageClassification } from '../transforms/presets.js';
import { checkBoolean, checkFunction, checkInt, checkOneOf, checkOptions, describe } from '../utils/args.js';
import { Batcher } from './batcher.js';
import { type ServeContext, type ServedModel, makeContext } from './context.js';
import { HttpError, fromFrameworkError, notFound } from './errors.js';
import { ServeMetrics } from './metrics.js';
import { registerRoutes } from './routes.js';

export { Batcher, QueueFullError } from './batcher.js';
export type { BatcherOptions } from './batcher.js';
export type { ServeContext, ServedModel } from './context.js';

/** {@link serve}'s options. */
export interface ServeOptions {
  /**
   * The model: an `nn.Module` (a VGG, an int8 model from `quantization.quantize`), run compiled by
   * its `forwardAsync`, or a `jit.ScriptModule` (`jit.load`, `jit.optimizeForInference`). It maps a
   * batch (N, C, H, W) to logits (N, classes). The server does not free it.
   */
  model: Module<any, Tensor> | ScriptModule;
  /** The name in `POST /predictions/<name>` (default `'model'`). */
  name?: string;
  /** The class of each output (default: the ImageNet categories, as torchvision's VGG weights). */
  classes?: readonly string[];
  /**
   * A decoded uint8 (3, H, W) RGB image to the model's input for one image (C, H, W) (default:
   * ImageNet's preprocessing, `VGG16_Weights.IMAGENET1K_V1.transforms()`: resize 256, crop 224, normalize).
   * A preset (`weights.transforms()`) also tells `/explanations` where the model's input lies in the image.
   */
  preprocess?: ((image: Tensor) => Tensor) | ImageClassification;
  /**
   * The nn.Module whose Grad-CAM `POST /explanations` answers (default: `model` when it is an
   * nn.Module): the float model that an int8 or TorchScript `model` was made from.
   */
  explainModel?: Module<[Tensor], Tensor>;
  /** Classes in each answer (default 5). */
  topk?: number;
  /** The most images in one batch (default 8; 1 turns batching off). */
  maxBatch?: number;
  /** How long the oldest waiting image waits for others to join its batch, in ms (default 5). */
  maxDelayMs?: number;
  /** Images that may wait for a batch; one more is answered 503 with Retry-After (default 64). */
  queueLimit?: number;
  /** The largest request body in bytes; a larger one is answered 413 (default 16 MiB). */
  bodyLimit?: number;
  /** The most pixels (width × height, read from the image's header) an image may have; more is a 400 (default 40,000,000). */
  maxPixels?: number;
  /** Where to listen (default `'127.0.0.1'`). */
  host?: string;
  /** The TCP port (default 8080, TorchServe's inference port; 0 picks a free one). */
  port?: number;
  /** Run the model under CPU autocast in this precision (mixed precision inference); default off. */
  amp?: 'bfloat16' | 'float16' | null;
  /** Run one image through the model before listening: compiles it and checks its output against `classes` (default true). */
  warmup?: boolean;
}

/** A running server: {@link serve}'s result. */
export interface ServeHandle {
  /** `http://host:port`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The Fastify instance (its routes in lib/serve/routes.ts). */
  readonly app: FastifyInstance;
  readonly context: ServeContext;
  /**
   * Stops accepting connections, answers every request already received (the queued images run),
   * then resolves. Calling it again gives the same promise.
   */
  close(): Promise<void>;
}

const OPTIONS = [
  'model',
  'name',
  'classes',
  'preprocess',
  'explainModel',
  'topk',
  'maxBatch',
  'maxDelayMs',
  'queueLimit',
  'bodyLimit',
  'maxPixels',
  'host',
  'port',
  'amp',
  'warmup',
];

/**
 * Serves an image classifier over HTTP, TorchServe's inference API on Fastify:
 *
 * - `POST /predictions/<name>`: the image's bytes (`Content-Type: image/*` or
 *   `application/octet-stream`) or a multipart/form-data file field; answers the top k as
 *   `{"class": probability, …}`, most probable first (TorchServe's image classifier).
 * - `GET /ping`: `{"status": "Healthy"}`. `GET /metrics`: Prometheus text (requests by status,
 *   latency, queue wait, batch sizes and durations, queue depth).
 * - `POST /explanations/<name>` (TorchServe's explanations endpoint), the same bodies: the
 *   Grad-CAM heatmap of the image from `gradCam()`, `{class, classIndex, width, height, crop,
 *   heatmap}` (`?class=<name>` explains another class). It runs the eager module on the event
 *   loop, not through the batcher, and needs an `nn.Module` (501 for a ScriptModule).
 * - `GET /`: a page to try it from a browser: drop a photo, see the top k as bars and the
 *   Grad-CAM heatmap over the photo (self-contained: it loads nothing from elsewhere).
 *
 * Requests that arrive within `maxDelayMs` are stacked into one batch of up to `maxBatch` and run
 * through the compiled model off the event loop (`forwardAsync`: compiled once, its graph serves
 * every batch size); each gets its own row back. Errors are JSON `{code, type, message}`: 400 for
 * a body that is not a decodable image of at most `maxPixels` pixels, 404 for another model name,
 * 413 over `bodyLimit`, 503 with Retry-After when `queueLimit` images wait.
 *
 * ```ts
 * const model = vgg16({ weights: 'DEFAULT' }).eval();
 * const server = await serve({ model, name: 'vgg16', port: 8080 });
 * // curl --data-binary @kitten.jpg -H 'Content-Type: image/jpeg' localhost:8080/predictions/vgg16
 * await server.close();   // drains: every request received is answered
 * ```
 */
export async function serve(options: ServeOptions): Promise<ServeHandle> {
  const FN = 'serve()';
  checkOptions(FN, options, OPTIONS, { required: ['model'] });
  const o = options;
  const model = o.model;
  if (typeof (model as { forwardAsync?: unknown } | undefined)?.forwardAsync !== 'function') {
    throw new TypeError(`${FN}: option 'model' must be an nn.Module or a jit.ScriptModule, got ${describe(model)}`);
  }
  const name = o.name ?? 'model';
  if (typeof name !== 'string' || !/^[\w.-]+$/.test(name))
    throw new TypeError(`${FN}: option 'name' must be letters, digits, '_', '.' or '-', got ${describe(name)}`);
  const classes = o.classes ?? IMAGENET_CATEGORIES;
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((c) => typeof c === 'string')) {
    throw new TypeError(`${FN}: option 'classes' must be a non-empty array of strings, got ${describe(classes)}`);
  }
  let preprocess = o.preprocess ?? VGG16_Weights.IMAGENET1K_V1.transforms();
  let preset: ClassificationPreset | undefined;
  if (preprocess instanceof ImageClassification) {
    const transform = preprocess;
    preset = transform.preset;
    preprocess = (image) => transform.forward(image);
  }
  checkFunction(FN, 'preprocess', preprocess);
  const explainer = o.explainModel ?? (model instanceof Module ? model : null);
  if (!(explainer === null || explainer instanceof Module))
    throw new TypeError(`${FN}: option 'explainModel' must be an nn.Module, got ${describe(explainer)}`);
  const int = (what: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = (o as unknown as Record<string, unknown>)[what] ?? dflt;
    checkInt(FN, `option '${what}'`, v, min);
    if (v > max) throw new RangeError(`${FN}: option '${what}' must be at most ${max}, got ${v}`);
    return v;
  };
  const topk = int('topk', 5, 1);
  const maxBatch = int('maxBatch', 8, 1, 1024);
  const maxDelayMs = int('maxDelayMs', 5, 0, 60_000);
  const queueLimit = int('queueLimit', 64, 1);
  const bodyLimit = int('bodyLimit', 16 * 2 ** 20, 1);
  const maxPixels = int('maxPixels', 40_000_000, 1);
  const port = int('port', 8080, 0, 65535);
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new TypeError(`${FN}: option 'host' must be a host name or address, got ${describe(host)}`);
  const amp = o.amp ?? null;
  checkOneOf(FN, "option 'amp'", amp, ['bfloat16', 'float16', null]);
  checkBoolean(FN, "option 'warmup'", o.warmup);

  const run = forward(model, amp);
  if (o.warmup !== false) await warmUp(run, preprocess, classes.length);

  let batcher: Batcher | null = null;
  const metrics = new ServeMetrics(
    maxBatch,
    () => batcher?.depth ?? 0,
    () => batcher?.inFlight ?? 0,
  );
  batcher = new Batcher(run, { maxBatch, maxDelayMs, queueLimit }, metrics);
  const served: ServedModel = { name, model, explainer, classes, preprocess, preset, topk, batcher };
  const context = makeContext(new Map([[name, served]]), metrics, bodyLimit, maxPixels);

  // return503OnClosing: a request on a kept-alive connection during close() is refused, not queued.
  const app = Fastify({ bodyLimit, logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  await app.register(multipart, { limits: { fileSize: bodyLimit, files: 1 } });
  for (const type of [/^image\//i, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
  }
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    context.metrics.requests.inc({ route, status: String(reply.statusCode) });
    if (route === '/predictions/:model') context.metrics.latency.observe(reply.elapsedTime / 1000);
  });
  // While closing, every answer closes its connection: a kept-alive connection would otherwise hold
  // close() until its keep-alive timeout (Fastify closes only the connections idle when it starts).
  let stopping = false;
  app.addHook('onSend', async (_request, reply) => {
    if (stopping) reply.header('connection', 'close');
  });
  app.setErrorHandler((e, request, reply) => {
    const h = fromFrameworkError(e, bodyLimit, request.headers['content-type']);
    if (h.code >= 500 && !(e instanceof HttpError)) process.emitWarning(`vgg-torch serve: ${(e as Error).message}`);
    return reply.code(h.code).headers(h.headers).send(h.body);
  });
  app.setNotFoundHandler((_request, reply) => {
    const h = notFound();
    return reply.code(h.code).send(h.body);
  });
  registerRoutes(app, context);
  try {
    await app.listen({ host, port });
  } catch (e) {
    await app.close();
    throw new Error(`${FN}: cannot listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
  }
  const address = app.server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shown}:${address.port}`,
    host: address.address,
    port: address.port,
    app,
    context,
    close() {
      closing ??= (async () => {
        stopping = true;
        // The queued images run now, without waiting for their batches to fill; Fastify's close
        // waits for the requests in flight, which wait for their batches.
        const drained = batcher.drain();
        // Fastify closes the connections idle when close() starts; one kept alive that goes idle
        // later (a browser's, a fetch pool's) would hold close() until its keep-alive timeout.
        const idle = setInterval(() => app.server.closeIdleConnections(), 100);
        try {
          await app.close();
          await drained;
        } finally {
          clearInterval(idle);
        }
      })();
      return closing;
    },
  };
}

/**
 * The model on a batch, off the event loop. Under `amp` the autocast region only spans the call
 * that starts the run: forwardAsync reads the state when called (and the worker runs under it),
 * while a region held open until the promise settles would put the preprocessing of the requests
 * that arrive meanwhile under autocast too.
 */
function forward(model: ServeOptions['model'], amp: 'bfloat16' | 'float16' | null): (x: Tensor) => Promise<Tensor> {
  return async (x) => {
    const out = amp ? autocast('cpu', { dtype: amp }, () => ({ started: model.forwardAsync(x) })).started : model.forwardAsync(x);
    const y = await out;
    if (Array.isArray(y)) {
      dispose(y);
      throw new Error('the model gave several outputs: serve needs one tensor of logits (N, classes)');
    }
    return y as Tensor;
  };
}

/** One black 256×256 image through preprocess and the model: compiles the model, and checks its output has one score per class. */
async function warmUp(run: (x: Tensor) => Promise<Tensor>, preprocess: (image: Tensor) => Tensor, classes: number): Promise<void> {
  const batch = tidy(() => preprocess(zeros([3, 256, 256], { dtype: 'uint8' })).unsqueeze(0));
  let y: Tensor;
  try {
    y = await run(batch);
  } finally {
    batch.dispose();
  }
  const shape = y.shape;
  y.dispose();
  if (shape.length !== 2 || shape[1] !== classes) {
    throw new Error(
      `serve(): the model gives outputs of shape [${shape.join(', ')}] for one image, but there are ${classes} classes: expected [1, ${classes}]`,
    );
  }
}
