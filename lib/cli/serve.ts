// `vgg-torch serve`: a model behind TorchServe's inference API (lib/serve), with
// dynamic batching; SIGTERM (or Ctrl-C) drains the requests received, then exits.
import { resolve } from 'node:path';
import { quantize } from '../ao/quantization/quantize.js';
import type { Sequential } from '../nn/modules/container.js';
import { getNumThreads, setNumThreads } from '../runtime.js';
import { serve } from '../serve/index.js';
import { type Command, type Values, UsageError, bool, int, noPositionals, str } from './args.js';
import { ampDtype, calibration, imagesIn, inferenceModel } from './inference.js';

export const serveCommand: Command = {
  synopsis: ['serve', 'serve a model over HTTP (TorchServe API, dynamic batching)'],
  help: `Usage: vgg-torch serve [options]

Serves a model over HTTP with TorchServe's inference API:
  POST /predictions/<name>  an image (raw bytes with Content-Type image/* or
                            application/octet-stream, or a multipart/form-data
                            file field) → {"class": probability, …}, the top k
  GET  /ping                {"status": "Healthy"}
  GET  /metrics             Prometheus text: requests by status, latency, batch
                            sizes, queue depth

Options:
  --arch <name>          vgg11 … vgg19_bn (default vgg16), with ImageNet weights
  --weights <w>          DEFAULT or IMAGENET1K_V1 (downloaded once into torch.hub's cache),
                         or a .pth state dict file or URL for the same architecture
  --checkpoint <file>    a checkpoint written by 'vgg-torch train' instead (its classes)
  --name <name>          the model's name in /predictions/<name> (default: the architecture)
  --int8                 quantize to int8 first (quantization.quantize, libtorch's int8 kernels)
  --calibrate <dir>      images to calibrate the int8 activation ranges on (needed with --int8)
  --amp <p>              auto, bf16, fp16 or off (default off): run under autocast in that
                         precision (auto: bf16 on a CPU with native bf16, else fp32); not with --int8
  --host <address>       the address to listen on (default 127.0.0.1)
  --port <n>             the TCP port (default 8080; 0 picks a free one)
  --max-batch <n>        the most images in one batch (default 8; 1 turns batching off)
  --max-delay-ms <ms>    how long the oldest waiting image waits for others (default 5)
  --queue-limit <n>      images that may wait; more are answered 503 with Retry-After (default 64)
  --topk <k>             classes in each answer (default 5)
  --threads <n>          intra-op threads (default: libtorch's)
  -h, --help

Requests that arrive within --max-delay-ms are stacked into one batch of up to
--max-batch and run through the compiled model (jit.trace, then
jit.optimizeForInference; int8: the frozen graph) on a worker thread, off the
event loop; one compiled graph serves every batch size. Errors are JSON
{code, type, message}: 400 for a body that is not a decodable image, 404 for
another model name, 413 over 16 MiB, 503 when the queue is full. SIGTERM or
Ctrl-C stops accepting connections, answers every request received, then exits
(0 after SIGTERM, 130 after Ctrl-C).`,
  options: {
    arch: str,
    weights: str,
    checkpoint: str,
    name: str,
    int8: bool,
    calibrate: str,
    amp: str,
    host: str,
    port: str,
    'max-batch': str,
    'max-delay-ms': str,
    'queue-limit': str,
    topk: str,
    threads: str,
  },
  run: runServe,
};

async function runServe(v: Values, positionals: string[]): Promise<number> {
  noPositionals('serve', positionals);
  if (v.threads !== undefined) setNumThreads(int(v, 'threads', 1, 1, 1024));
  if (v.calibrate !== undefined && !v.int8) throw new UsageError('--calibrate goes with --int8');
  if (v.int8 && v.calibrate === undefined) throw new UsageError('--int8 needs --calibrate <dir>: images to calibrate the int8 activation ranges on');
  const amp = ampDtype(v, 'cpu');
  if (amp && v.int8) throw new UsageError("--amp and --int8 exclude each other: libtorch's int8 kernels are not on autocast's lists");
  const port = int(v, 'port', 8080, 0, 65535);
  const maxBatch = int(v, 'max-batch', 8, 1, 1024);
  const maxDelayMs = int(v, 'max-delay-ms', 5, 0, 60_000);
  const queueLimit = int(v, 'queue-limit', 64, 1);
  const topk = int(v, 'topk', 5);
  const host = (v.host as string | undefined) ?? '127.0.0.1';
  const name = v.name as string | undefined;
  if (name !== undefined && !/^[\w.-]+$/.test(name)) throw new UsageError(`--name must be letters, digits, '_', '.' or '-', got '${name}'`);
  const { model, arch, classes, preprocess } = inferenceModel(v);
  let int8: Sequential | null = null;
  try {
    model.eval();
    if (v.int8) {
      const images = await calibration(imagesIn(resolve(v.calibrate as string)), preprocess);
      try {
        int8 = quantize(model, images);
      } finally {
        for (const c of images) c.dispose();
      }
    }
    const served = name ?? arch;
    const server = await serve({ model: int8 ?? model, name: served, classes, preprocess, topk, maxBatch, maxDelayMs, queueLimit, host, port, amp });
    const precision = int8 ? 'int8' : amp ? `${amp} autocast` : 'fp32';
    console.log(
      `Serving ${served} (${precision}, ${getNumThreads()} threads, batches of up to ${maxBatch} within ${maxDelayMs} ms) at ${server.url}\n` +
        `  POST ${server.url}/predictions/${served}   GET ${server.url}/ping   GET ${server.url}/metrics`,
    );
    const signal = await new Promise<NodeJS.Signals>((res) => {
      const stop = (s: NodeJS.Signals) => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        res(s);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    const { batcher } = server.context.models.get(served)!;
    console.log(`${signal}: no new connections; answering the requests received (${batcher.depth} queued), then stopping`);
    await server.close();
    console.log('Stopped.');
    return signal === 'SIGINT' ? 130 : 0;
  } finally {
    int8?.dispose();
    model.dispose();
  }
}
