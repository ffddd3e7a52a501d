// The training charts: the static HTML (chart.ts), the live server (live.ts)
// over plain HTTP, and both pages in headless Chromium.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { get, request, type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CHROMIUM, launchChromium, runBrowser } from './browser.js';
import { renderChartHtml, writeChartHtml } from '../lib/train/chart.js';
import { startLiveServer } from '../lib/train/live.js';
import { MetricsLog, type BatchRecord, type EpochRecord, type EvalRecord, type MetricsRecord } from '../lib/train/metricsLog.js';

const CLASSES = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

function batch(epoch: number, b: number, perEpoch: number): BatchRecord {
  const step = (epoch - 1) * perEpoch + b;
  const loss = 2.3 * Math.exp(-step / 8) + 0.8;
  return { kind: 'batch', epoch, batch: b, step, loss, accuracy: 100 - loss * 25, lr: 0.001, time: 1_700_000_000_000 + step };
}

function epochEnd(epoch: number, perEpoch: number): EpochRecord {
  const step = epoch * perEpoch;
  return {
    kind: 'epoch',
    epoch,
    step,
    trainLoss: 1.5 / epoch,
    trainAccuracy: 40 + 10 * epoch,
    testLoss: 1.6 / epoch,
    testAccuracy: 38 + 10 * epoch,
    lr: 0.001,
    seconds: 10,
    imagesPerSecond: 500,
    time: 1_700_000_000_000 + step,
  };
}

function evaluation(epoch: number, classes: string[] = CLASSES): EvalRecord {
  const confusion = classes.map((_, i) => classes.map((_, j) => (i === j ? 80 + i : (i + 2 * j) % 7)));
  const perClass: (number | null)[] = confusion.map((row, i) => (100 * row[i]) / row.reduce((a, b) => a + b, 0));
  const correct = confusion.reduce((a, row, i) => a + row[i], 0);
  const total = confusion.flat().reduce((a, b) => a + b, 0);
  return { kind: 'eval', epoch, classes, loss: 0.9, accuracy: (100 * correct) / total, perClass, confusion, time: 1_700_000_001_000 };
}

/** `epochs` epochs of `perEpoch` batch records, each followed by its epoch record. */
function run(epochs: number, perEpoch: number, fromEpoch = 1): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (let e = fromEpoch; e < fromEpoch + epochs; e++) {
    for (let b = 1; b <= perEpoch; b++) out.push(batch(e, b, perEpoch));
    out.push(epochEnd(e, perEpoch));
  }
  return out;
}

const countBatches = (rs: readonly MetricsRecord[]): number => rs.filter((r) => r.kind === 'batch').length;

/** The records a page embeds (its `<script type="application/json">`). */
function embedded(html: string): { live: boolean; records: unknown[] } {
  const m = /<script type="application\/json" id="vgg-torch-data">([^<]*)<\/script>/.exec(html);
  if (!m) throw new Error('no embedded data');
  return JSON.parse(m[1]) as { live: boolean; records: unknown[] };
}

/** The page's evaluation section as rendered in Node (the inlined client code holds the same markup as strings). */
function evalSection(html: string): string {
  const m = /<section id="eval"[^>]*>([\s\S]*?)<\/section>/.exec(html);
  if (!m) throw new Error('no eval section');
  return m[1];
}

describe('renderChartHtml', () => {
  const chartJsFile = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
  const chartJs = readFileSync(chartJsFile, 'utf8');

  it('inlines Chart.js, escapes the title and renders the last evaluation', () => {
    const records = [...run(2, 4), evaluation(1, ['x', 'y']), evaluation(2)];
    const html = renderChartHtml(records, { title: '<b>"VGG" & co</b>' });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(chartJs.slice(1000, 3000));
    expect(html).toContain(chartJs.slice(-3000, -100));
    expect(html).not.toContain('sourceMappingURL');
    expect(html).toContain('<title>&lt;b&gt;&quot;VGG&quot; &amp; co&lt;/b&gt;</title>');
    expect(html).not.toContain('<b>"VGG"');
    // The last evaluation, with the class names as headers.
    const section = evalSection(html);
    expect(section).toContain('<table class="confusion">');
    for (const c of CLASSES) expect(section).toContain(`<th scope="col"><span>${c}</span></th>`);
    expect(section).toContain('<h2>Evaluation after epoch 2</h2>');
    expect(section).toMatch(/<td class="num diag" style="background-color:rgba\(31,95,168,[0-9.]+\);color:#fff">89<\/td>/);
    expect(html).toContain('Epochs done: <b>2</b>');
    expect(html).toContain('data-records="12"');
    expect(embedded(html)).toEqual({ live: false, records: JSON.parse(JSON.stringify(records)) });
    expect(html).not.toContain('id="live-status"');
  });

  it('escapes </script> and markup in class names', () => {
    const evil = ['cat</script><script>alert(1)</script>', 'dog<!--', 'a&b\u2028'];
    const ev = evaluation(0, evil);
    ev.perClass[2] = Number.NaN; // written as null
    const html = renderChartHtml([ev], { live: true });
    // Only the three script elements of the page end.
    expect(html.match(/<\/script/gi)).toHaveLength(3);
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('dog<!--');
    expect(evalSection(html)).toContain('<th scope="row">cat&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</th>');
    const data = embedded(html);
    expect(data.live).toBe(true);
    expect(data.records).toEqual([{ ...ev, perClass: [ev.perClass[0], ev.perClass[1], null] }]);
    expect(html).toContain('id="live-status"');
  });

  it('renders an empty page and leaves out huge confusion matrices', () => {
    const empty = renderChartHtml([]);
    expect(empty).toContain('No records yet.');
    expect(empty).toContain('<section id="eval" hidden></section>');
    const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
    const ev: EvalRecord = {
      kind: 'eval',
      epoch: 0,
      classes: many,
      loss: 1,
      accuracy: 1,
      perClass: many.map(() => 1),
      confusion: many.map(() => many.map(() => 1)),
      time: 0,
    };
    const section = evalSection(renderChartHtml([ev]));
    expect(section).toContain('<table class="per-class">');
    expect(section).not.toContain('<table class="confusion');
    expect(section).toContain('Left out: 101 classes');
    expect(section).toContain('<th scope="row">c100</th>');
  });

  it('writeChartHtml writes atomically into a new directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-chart-'));
    try {
      const file = join(dir, 'a', 'b', 'chart.html');
      writeChartHtml(file, run(1, 3), { title: 't' });
      writeChartHtml(file, run(2, 3), { title: 't' });
      expect(readdirSync(dirname(file))).toEqual(['chart.html']);
      expect(embedded(readFileSync(file, 'utf8')).records).toHaveLength(8);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function fetchText(url: string, method = 'GET'): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An SSE client: the messages received so far, parsed. */
async function openEvents(url: string, headers: Record<string, string> = {}) {
  const messages: { id: number; record: MetricsRecord }[] = [];
  let buf = '';
  const { req, res } = await new Promise<{ req: ReturnType<typeof get>; res: import('node:http').IncomingMessage }>((resolve, reject) => {
    const req = get(url, { headers }, (res) => resolve({ req, res }));
    req.on('error', reject);
  });
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buf += chunk;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i).split('\n');
      buf = buf.slice(i + 2);
      const id = block.find((l) => l.startsWith('id: '));
      const data = block.find((l) => l.startsWith('data: '));
      if (data) messages.push({ id: Number(id?.slice(4)), record: JSON.parse(data.slice(6)) as MetricsRecord });
    }
  });
  return { res, messages, close: () => req.destroy() };
}

describe('startLiveServer over HTTP', () => {
  it('serves the page, the records and 404', async () => {
    const records = run(1, 3);
    const server = await startLiveServer({ records, title: 'live <run>' });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
      expect(server.port).toBeGreaterThan(0);
      const page = await fetchText(server.url);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.body).toContain('<title>live &lt;run&gt;</title>');
      expect(embedded(page.body)).toEqual({ live: true, records });
      server.push(batch(2, 1, 3));
      const json = await fetchText(`${server.url}records`);
      expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(json.body)).toEqual([...records, batch(2, 1, 3)]);
      expect((await fetchText(`${server.url}nope`)).status).toBe(404);
      expect((await fetchText(`${server.url}records`, 'POST')).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  it('streams records as Server-Sent Events, resuming after ?since= or Last-Event-ID', async () => {
    const records = run(1, 3); // 4 records
    const server = await startLiveServer({ records });
    try {
      const fresh = await openEvents(`${server.url}events`);
      const since = await openEvents(`${server.url}events?since=2`);
      const resumed = await openEvents(`${server.url}events?since=0`, { 'Last-Event-ID': '3' });
      expect(fresh.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(fresh.res.headers['cache-control']).toBe('no-cache');
      await vi.waitFor(() => expect(since.messages).toHaveLength(2));
      await vi.waitFor(() => expect(resumed.messages).toHaveLength(1));
      expect(since.messages).toEqual([
        { id: 3, record: records[2] },
        { id: 4, record: records[3] },
      ]);
      expect(resumed.messages).toEqual([{ id: 4, record: records[3] }]);
      const next = batch(2, 1, 3);
      server.push(next);
      for (const c of [fresh, since, resumed]) await vi.waitFor(() => expect(c.messages.at(-1)).toEqual({ id: 5, record: next }));
      expect(fresh.messages).toHaveLength(1);
      const ended = new Promise<void>((resolve) => fresh.res.on('end', () => resolve()));
      await server.close();
      await ended; // close() ends the streams
      server.push(batch(2, 2, 3)); // ignored, no throw
      for (const c of [fresh, since, resumed]) c.close();
    } finally {
      await server.close();
    }
  });

  it('follows a MetricsLog', async () => {
    const log = new MetricsLog(null, run(1, 2));
    const server = await startLiveServer({ log });
    try {
      const events = await openEvents(`${server.url}events?since=1`);
      await vi.waitFor(() => expect(events.messages).toHaveLength(2));
      log.append(evaluation(1));
      await vi.waitFor(() => expect(events.messages).toHaveLength(3));
      expect(events.messages[2]).toEqual({ id: 4, record: evaluation(1) });
      expect(JSON.parse((await fetchText(`${server.url}records`)).body)).toHaveLength(4);
      events.close();
    } finally {
      await server.close();
    }
    await expect(startLiveServer({ log, records: [] })).rejects.toThrow(/not both/);
  });

  it('rejects when the port is taken', async () => {
    const server = await startLiveServer();
    try {
      await expect(startLiveServer({ port: server.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await server.close();
    }
  });

  it('never keeps the process alive, even with a client connected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-live-'));
    try {
      const script = join(dir, 'child.mts');
      const live = pathToFileURL(fileURLToPath(new URL('../lib/train/live.ts', import.meta.url))).href;
      // Starts a server, never closes it; a timer gives the parent time to connect.
      writeFileSync(
        script,
        `
        import { startLiveServer } from ${JSON.stringify(live)};
        const server = await startLiveServer();
        console.log(server.url);
        setTimeout(() => server.push({ kind: 'batch', epoch: 1, batch: 1, step: 1, loss: 1, accuracy: 1, lr: 1, time: 1 }), 1500);
      `,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (c: string) => {
          out += c;
          if (out.includes('\n')) resolve(out.trim());
        });
        child.on('exit', () => reject(new Error(`child exited before printing its URL: ${out}`)));
      });
      const events = await openEvents(`${url}events`);
      await vi.waitFor(() => expect(events.messages).toHaveLength(1), { timeout: 10_000 });
      const timeout = setTimeout(() => child.kill(), 15_000);
      expect(await exited).toBe(0);
      clearTimeout(timeout);
      events.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

// Chromium: skipped where it is missing, except in CI, where a missing browser fails.

// A failed beforeAll fails the file but counts no failed test; this names the cause.
it.runIf(process.env.CI === 'true')('Chromium is installed (CI)', () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/setup.sh installs it`).toBe(true);
});

declare global {
  interface Window {
    vggTorchCharts?: {
      loss: { data: { datasets: { data: unknown[] }[] } };
      accuracy: { data: { datasets: { data: unknown[] }[] } };
    };
  }
}

/** Whether the chart canvas is painted: how many pixels, how many colours, and whether the series colours are among them. */
function canvasPaint(page: Page, id: string) {
  return page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId) as HTMLCanvasElement;
    const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set<number>();
    let painted = 0;
    let blue = 0;
    let orange = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      painted++;
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (d[i + 3] > 240 && Math.abs(d[i] - 0x1f) + Math.abs(d[i + 1] - 0x5f) + Math.abs(d[i + 2] - 0xa8) < 24) blue++;
      if (d[i + 3] > 240 && Math.abs(d[i] - 0xe8) + Math.abs(d[i + 1] - 0x70) + Math.abs(d[i + 2] - 0x2a) < 24) orange++;
    }
    return { painted, total: d.length / 4, colours: colours.size, blue, orange, png: canvas.toDataURL() };
  }, id);
}

const pointCount = (page: Page, chart: 'loss' | 'accuracy', dataset: number): Promise<number> =>
  page.evaluate(([c, i]) => window.vggTorchCharts![c as 'loss' | 'accuracy'].data.datasets[i as number].data.length, [chart, dataset] as const);

/** Page errors and failed console messages, to assert none. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return problems;
}

describe.skipIf(!runBrowser)('chart pages in headless Chromium', () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  }, 60_000);

  it('the live page draws the records, follows pushes and resumes after a server restart', async () => {
    const records = run(2, 5); // 10 batch records, 2 epoch records
    let server = await startLiveServer({ records, title: 'live test' });
    const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
    const problems = watch(page);
    try {
      await page.goto(server.url);
      await page.waitForFunction(() => document.body.dataset.live === 'open');
      expect(await pointCount(page, 'loss', 0)).toBe(10);
      expect(await pointCount(page, 'loss', 2)).toBe(2);
      expect(await pointCount(page, 'accuracy', 2)).toBe(2);
      expect(await page.evaluate(() => document.body.dataset.records)).toBe('12');
      const before = await canvasPaint(page, 'loss-chart');
      expect(before.painted).toBeGreaterThan(before.total * 0.02);
      expect(before.colours).toBeGreaterThan(10);
      expect(before.blue).toBeGreaterThan(20);
      expect(before.orange).toBeGreaterThan(20);
      expect(await page.isVisible('#eval')).toBe(false);

      const more = run(1, 5, 3);
      for (const r of more) server.push(r);
      server.push(evaluation(3));
      await page.waitForFunction(() => window.vggTorchCharts!.loss.data.datasets[0].data.length === 15);
      await page.waitForFunction(() => document.body.dataset.records === '19');
      await page.waitForSelector('#eval table.confusion');
      const after = await canvasPaint(page, 'loss-chart');
      expect(after.png).not.toBe(before.png);
      expect(await page.locator('#eval table.confusion thead th').allTextContents()).toEqual(['true ↓ · predicted →', ...CLASSES]);
      expect(await page.locator('#eval table.confusion td.diag').allTextContents()).toEqual(CLASSES.map((_, i) => String(80 + i)));
      expect(await page.textContent('#summary')).toContain('Epochs done: 3');
      expect(await page.isVisible('#eval')).toBe(true);

      // A restarted server with more records: the EventSource reconnects and
      // resumes after its Last-Event-ID, without duplicates.
      const all = [...records, ...more, evaluation(3)];
      const port = server.port;
      await server.close();
      await page.waitForFunction(() => document.body.dataset.live !== 'open');
      const later = run(1, 4, 4);
      server = await startLiveServer({ port, records: [...all, ...later] });
      await page.waitForFunction(() => document.body.dataset.records === '24', undefined, { timeout: 20_000 });
      expect(await pointCount(page, 'loss', 0)).toBe(19);
      expect(await page.evaluate(() => document.body.dataset.live)).toBe('open');
      expect(problems.filter((p) => !p.includes('ERR_CONNECTION_REFUSED'))).toEqual([]);
    } finally {
      await page.close();
      await server.close();
    }
  }, 60_000);

  it('the static file written by writeChartHtml shows the points without any network', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-chart-'));
    const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
    const problems = watch(page);
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    try {
      const records = [...run(3, 4), evaluation(3)];
      const file = join(dir, 'chart.html');
      writeChartHtml(file, records, { title: 'static' });
      const url = pathToFileURL(file).href;
      await page.goto(url);
      await page.waitForFunction(() => window.vggTorchCharts !== undefined);
      expect(await pointCount(page, 'loss', 0)).toBe(countBatches(records));
      expect(await pointCount(page, 'accuracy', 1)).toBe(3);
      expect(await page.evaluate(() => document.body.dataset.records)).toBe(String(records.length));
      expect(await page.evaluate(() => document.body.dataset.live)).toBeUndefined();
      const paint = await canvasPaint(page, 'accuracy-chart');
      expect(paint.painted).toBeGreaterThan(paint.total * 0.02);
      expect(paint.blue).toBeGreaterThan(20);
      expect(await page.locator('#eval table.confusion tbody tr').count()).toBe(CLASSES.length);
      expect(await page.locator('#eval table.per-class tbody tr').count()).toBe(CLASSES.length);
      expect(requests).toEqual([url]);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
