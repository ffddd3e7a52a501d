// Every route of the server, in one place: TorchServe's inference API
// (POST /predictions/<model>, GET /ping) and GET /metrics. A route takes what
// it needs from the ServeContext (the model by name, the request's image, the
// batcher, the metrics).
import type { FastifyInstance } from 'fastify';
import type { Tensor } from '../tensor/tensor.js';
import { QueueFullError } from './batcher.js';
import type { ServeContext } from './context.js';
import { internal, unavailable } from './errors.js';

export function registerRoutes(app: FastifyInstance, ctx: ServeContext): void {
  // TorchServe's health check.
  app.get('/ping', async () => ({ status: 'Healthy' }));

  app.get('/metrics', async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.text();
  });

  // TorchServe's image classifier: {className: probability}, the top k by probability.
  app.post<{ Params: { model: string } }>('/predictions/:model', async (request, reply) => {
    const served = ctx.modelOf(request.params.model);
    // Refused before the image is decoded and preprocessed: under overload a refusal stays cheap.
    if (served.batcher.full) throw queueFull(served.batcher.depth, served.batcher.retryAfterS());
    const x = await ctx.inputOf(request, served);
    let row: Tensor;
    try {
      row = await served.batcher.submit(x);
    } catch (e) {
      if (e instanceof QueueFullError) throw unavailable(e.message, e.retryAfterS);
      throw internal(`the model failed on this batch: ${(e as Error).message}`);
    }
    reply.type('application/json; charset=utf-8');
    return orderedObject(ctx.topk(served, row));
  });

  // Further routes (the page at GET /, POST /explanations/:model) are registered here, on the same context.
}

const queueFull = (depth: number, retryAfterS: number) =>
  unavailable(`the queue holds ${depth} images, its limit (queueLimit); try again in ${retryAfterS} s`, retryAfterS);

/**
 * `{"name": p, …}` in the order given. JSON.stringify of an object would put
 * integer-like keys (classes named "0", "1", … by their folders) first, in numeric
 * order, not by probability.
 */
function orderedObject(entries: [string, number][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}
