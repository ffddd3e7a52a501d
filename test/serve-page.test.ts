// The web page of vgg-torch serve (GET /, lib/serve/page.ts) and its Grad-CAM
// endpoint (POST /explanations/<model>, lib/serve/explain.ts): the endpoint
// against the library's gradCam() on the same preprocessed image, its bad
// input answered as /predictions answers it, and the page in headless Chromium.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium, runBrowser } from './browser.js';
import {
  F,
  type Tensor,
  type VGG,
  VGG16_Weights,
  arange,
  cat,
  decodeImage,
  gradCam,
  jit,
  manualSeed,
  memory,
  nn,
  randn,
  saveImage,
  tidy,
  vgg11,
} from '../lib/index.js';
import { serve, type ServeHandle } from '../lib/serve/index.js';
import type { Explanation } from '../lib/serve/explain.js';

const CLASSES = ['tabby cat', 'golden retriever', 'barn owl', 'red fox', 'goldfish', 'tree frog'];

// Chromium as test/train-chart.test.ts runs it: skipped where it is missing (lane 2's
// chroot may have none), except in CI on this machine, where a missing browser fails.
if (!runBrowser) console.warn(`test/serve-page.test.ts: the Chromium tests are skipped: ${CHROMIUM} is missing`);

/** Where the screenshot goes: $VGG_TORCH_ARTIFACTS, or tmp/artifacts in the repository (git ignores /tmp/). */
const ARTIFACTS = process.env.VGG_TORCH_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'tmp', 'artifacts');

let server: ServeHandle;
let model: VGG;
let dir: string;
let png: string;
let pngBytes: Uint8Array<ArrayBuffer>;

const post = (route: string, body: BodyInit, type = 'image/png'): Promise<Response> =>
  fetch(`${server.url}${route}`, { method: 'POST', headers: { 'content-type': type }, body });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vgg-serve-page-'));
  // A 200×150 photo stand-in: colour ramps and a bright disc, so that the crop and the map have structure.
  png = join(dir, 'photo.png');
  const image = tidy(() => {
    const ys = arange(150).float().div(150).view(1, 150, 1).expand(1, 150, 200);
    const xs = arange(200).float().div(200).view(1, 1, 200).expand(1, 150, 200);
    const disc = xs.sub(0.6).mul(200).square().add(ys.sub(0.4).mul(150).square()).lt(900).float();
    return cat([xs, ys, disc.mul(0.8).add(xs.mul(ys).mul(0.2))], 0);
  });
  await saveImage(image, png);
  image.dispose();
  pngBytes = new Uint8Array(readFileSync(png));
  manualSeed(0);
  model = vgg11({ numClasses: CLASSES.length }).eval();
  server = await serve({ model, name: 'tiny', classes: CLASSES, port: 0 });
}, 120_000);

afterAll(async () => {
  // Every request of this file has been answered. Under Node 20 (lane 2) five keep-alive
  // connections of fetch stay open that Fastify's forceCloseConnections: 'idle' does not close,
  // and close() waited for them past the hook's timeout: they are dropped here.
  const closing = server?.close();
  server?.app.server.closeAllConnections();
  await closing;
  model?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('POST /explanations/<model>', () => {
  it("answers the library's gradCam() of the preprocessed image, with the crop that maps it onto the photo", async () => {
    const res = await post('/explanations/tiny', pngBytes);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const ex = (await res.json()) as Explanation;
    // The same image through the same preprocessing (serve's default: VGG16's preset) and gradCam.
    const image = await decodeImage(png);
    const x = VGG16_Weights.IMAGENET1K_V1.transforms().forward(image);
    const batch = x.unsqueeze(0);
    const { heatmap, classIndex } = gradCam(model, batch);
    try {
      expect(ex.classIndex).toBe(classIndex);
      expect(ex.class).toBe(CLASSES[classIndex]);
      expect([ex.width, ex.height]).toEqual([224, 224]);
      expect(ex.crop).toEqual({ resizeSize: 256, cropSize: 224 });
      const values = heatmap.toTypedArray() as Float32Array;
      // JSON carries the float32 values rounded to 6 decimals: equal after the same rounding.
      expect(ex.heatmap.flat()).toEqual(Array.from(values, (v) => Math.round(v * 1e6) / 1e6));
      expect(Math.max(...ex.heatmap.flat())).toBeGreaterThan(0.99);
      // The top class of /predictions is the class explained.
      const pred = (await (await post('/predictions/tiny', pngBytes)).json()) as Record<string, number>;
      expect(Object.keys(pred)[0]).toBe(ex.class);
    } finally {
      for (const t of [image, x, batch, heatmap]) t.dispose();
    }
    // The parameters are as serve() got them: no gradient left behind.
    for (const p of model.parameters()) expect(p.grad).toBeNull();
  }, 60_000);

  it('holds no tensor after it answers: memory() is flat over repeated explanations', async () => {
    await post('/explanations/tiny', pngBytes); // any first-call caches
    const before = memory();
    for (let i = 0; i < 5; i++) expect((await post('/explanations/tiny', pngBytes)).status).toBe(200);
    expect((await post('/explanations/tiny', 'not an image')).status).toBe(400);
    expect(memory()).toEqual(before);
  }, 120_000);

  it('explains the class asked for with ?class=, and refuses one the model does not have', async () => {
    const other = CLASSES[4];
    const ex = (await (await post(`/explanations/tiny?class=${encodeURIComponent(other)}`, pngBytes)).json()) as Explanation;
    expect([ex.class, ex.classIndex]).toEqual([other, 4]);
    const bad = await post('/explanations/tiny?class=unicorn', pngBytes);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/\?class=unicorn is not a class of model tiny/);
  }, 60_000);

  it('answers bad input as /predictions does: same status, same message', async () => {
    const cases: [string, BodyInit, string][] = [
      ['not an image', 'hello', 'image/png'],
      ['truncated PNG', pngBytes.subarray(0, 200), 'image/png'],
      ['empty body', new Uint8Array(0), 'application/octet-stream'],
      ['wrong content type', '{"a":1}', 'application/json'],
    ];
    for (const [what, body, type] of cases) {
      const a = await post('/predictions/tiny', body, type);
      const b = await post('/explanations/tiny', body, type);
      const [ja, jb] = [await a.json(), await b.json()];
      expect(b.status, what).toBe(a.status);
      expect(a.status, what).toBeGreaterThanOrEqual(400);
      expect(jb, what).toEqual(ja);
    }
    const missing = await post('/explanations/nope', pngBytes);
    expect(missing.status).toBe(404);
  }, 60_000);
});

/** A small classifier with VGG's shape: a `features` Sequential (gradCam's default target: its last ReLU), then a head. */
class Tiny extends nn.Module<[Tensor], Tensor> {
  features = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU());
  head = new nn.Sequential(new nn.AdaptiveAvgPool2d(1), new nn.Flatten(), new nn.Linear(4, 3));
  forward(x: Tensor): Tensor {
    return this.head(this.features(x));
  }
}

describe('POST /explanations/<model> of other models', () => {
  it('a TorchScript module: 501 without explainModel, its nn.Module explained with it; a custom preprocess: the heatmap at its size, crop null', async () => {
    manualSeed(1);
    const tiny = new Tiny().eval();
    const probe = randn([1, 3, 16, 12]);
    const scripted = jit.trace(tiny, probe);
    const preprocess = (image: Tensor): Tensor =>
      tidy(() => F.interpolate(image.float().div(255).unsqueeze(0), { size: [16, 12], mode: 'bilinear', alignCorners: false }).squeeze(0));
    const classes = ['a', 'b', 'c'];
    const a = await serve({ model: scripted, name: 'scripted', classes, preprocess, port: 0 });
    // The TorchScript module answers /predictions, and its nn.Module /explanations (as `vgg-torch serve --int8` does).
    const b = await serve({ model: scripted, explainModel: tiny, name: 'eager', classes, preprocess, port: 0 });
    await expect(serve({ model: tiny, explainModel: scripted as never, port: 0 })).rejects.toThrow(
      /^serve\(\): option 'explainModel' must be an nn\.Module, got /,
    );
    const send = (url: string): Promise<Response> => fetch(url, { method: 'POST', headers: { 'content-type': 'image/png' }, body: pngBytes });
    try {
      const refused = await send(`${a.url}/explanations/scripted`);
      expect(refused.status).toBe(501);
      expect(await refused.json()).toEqual({
        code: 501,
        type: 'NotImplementedException',
        message: 'model scripted is a TorchScript module: Grad-CAM needs an nn.Module (autograd through its layers); serve it with the explainModel option',
      });
      const res = await send(`${b.url}/explanations/eager`);
      expect(res.status).toBe(200);
      const ex = (await res.json()) as Explanation;
      const image = await decodeImage(png);
      const x = preprocess(image);
      const batch = x.unsqueeze(0);
      const { heatmap, classIndex } = gradCam(tiny, batch);
      expect([ex.width, ex.height, ex.crop, ex.classIndex, ex.class]).toEqual([12, 16, null, classIndex, classes[classIndex]]);
      expect(ex.heatmap.flat()).toEqual(Array.from(heatmap.toTypedArray() as Float32Array, (v) => Math.round(v * 1e6) / 1e6));
      for (const t of [image, x, batch, heatmap]) t.dispose();
    } finally {
      await a.close();
      await b.close();
      probe.dispose();
      scripted.dispose();
      tiny.dispose();
    }
  }, 60_000);
});

describe('GET /', () => {
  it('is one self-contained HTML document', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//); // nothing to fetch from elsewhere: the server may be offline
    expect(html).not.toMatch(/<(img|iframe)\b|<script[^>]+src=|<link(?![^>]*href="data:)/i); // the icon is data:, (no /favicon.ico)
    expect(html).toContain('"models":["tiny"]');
  });
});

describe.skipIf(!runBrowser)('the page in headless Chromium', () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  }, 60_000);

  it("shows the top classes as bars, the API's top class first, and draws the Grad-CAM heatmap over the photo", async () => {
    const pred = (await (await post('/predictions/tiny', pngBytes)).json()) as Record<string, number>;
    const page = await browser!.newPage({ viewport: { width: 1000, height: 700 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    try {
      await page.goto(`${server.url}/`);
      await page.setInputFiles('#file', png);
      await page.waitForFunction(() => document.body.dataset.state === 'done' || document.body.dataset.state === 'error', undefined, { timeout: 30_000 });
      expect(await page.textContent('#error')).toBe('');
      // The bars: the API's classes in its order, the widths its probabilities.
      const labels = await page.locator('#bars .bar .label').allTextContents();
      expect(labels).toEqual(Object.keys(pred));
      expect(labels).toHaveLength(5);
      expect(await page.evaluate(() => document.body.dataset.top)).toBe(Object.keys(pred)[0]);
      const widths = await page.locator('#bars .bar .fill').evaluateAll((els) => els.map((e) => Number.parseFloat((e as HTMLElement).style.width)));
      expect(widths).toEqual(Object.values(pred).map((p) => Number((100 * p).toFixed(2))));
      expect(await page.textContent('#explained')).toBe(`Grad-CAM of ${Object.keys(pred)[0]}`);
      // The heatmap canvas: painted over the center crop (224 of the short side's 256), blank outside it.
      const paint = await page.evaluate(() => {
        const c = document.getElementById('heatmap') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set<number>();
        let painted = 0;
        let paintedLeftEdge = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i + 3] === 0) continue;
          painted++;
          colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          if ((i / 4) % c.width < 2) paintedLeftEdge++;
        }
        return { painted, total: d.length / 4, colours: colours.size, paintedLeftEdge, width: c.width, height: c.height };
      });
      expect(paint.width).toBe(448);
      expect(paint.height).toBe(336);
      // The crop covers 224/341 of the width and 224/256 of the height: about 57 % of the canvas.
      expect(paint.painted / paint.total).toBeGreaterThan(0.5);
      expect(paint.painted / paint.total).toBeLessThan(0.65);
      expect(paint.paintedLeftEdge).toBe(0);
      expect(paint.colours).toBeGreaterThan(20);
      expect(await page.evaluate(() => document.body.dataset.heatmap)).toBe('drawn');
      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = join(ARTIFACTS, 'serve-page.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`test/serve-page.test.ts: screenshot ${shot}`);
      expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
      // Nothing but the server and the photo's own blob: URL.
      expect(requests.filter((u) => !u.startsWith(server.url) && !u.startsWith(`blob:${server.url}`))).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});
