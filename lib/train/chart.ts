// Training charts (the tutorial's visdom, without a visdom server): one
// self-contained HTML page with Chart.js inlined, so a chart file written next
// to a checkpoint opens anywhere, offline, years later. The same page, served
// by live.ts with `live: true`, follows a running training over Server-Sent
// Events.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { EvalRecord, MetricsRecord } from './metricsLog.js';
import { checkOptions } from '../utils/args.js';

/** Options of {@link renderChartHtml} and {@link writeChartHtml}. */
export interface ChartHtmlOptions {
  /** Page title and heading (escaped). Default `'vgg-torch training'`. */
  title?: string;
  /**
   * Follow a live server: fetch `records` once, then subscribe to `events`
   * (both relative to the page's URL). Only meaningful for a page served by
   * `startLiveServer()`; default false (a static page).
   */
  live?: boolean;
}

/** Confusion matrices with more classes than this are left out of the page (10 000 cells is still readable HTML). */
export const MAX_CONFUSION_CLASSES = 100;

// The functions below run in the page (live updates) and, evaluated once with
// `new Function`, in Node (the static HTML), so the static and the live
// renderings of the summary and the evaluation cannot drift apart. Kept as a
// string of plain ES2017: a TS function's `toString()` would carry whatever the
// transpiler injected (tsx adds `__name()` calls that do not exist in a page).
const SHARED_JS = String.raw`
var MAX_CONFUSION_CLASSES = ${MAX_CONFUSION_CLASSES};
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, function (c) {
    return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
  });
}
function isNum(x) { return typeof x === 'number' && isFinite(x); }
function fmt(x, digits) { return isNum(x) ? x.toFixed(digits) : '\u2013'; }
function newState() {
  return { count: 0, epochs: 0, step: 0, lastLoss: null, bestTest: null, bestTestWhere: '', lastEval: null };
}
function addToState(s, r) {
  s.count++;
  if (!r || typeof r !== 'object') return;
  if (r.kind === 'batch') {
    s.lastLoss = r.loss;
    if (isNum(r.step)) s.step = Math.max(s.step, r.step);
  } else if (r.kind === 'epoch') {
    if (isNum(r.epoch)) s.epochs = Math.max(s.epochs, r.epoch);
    if (isNum(r.step)) s.step = Math.max(s.step, r.step);
    if (isNum(r.testAccuracy) && (s.bestTest === null || r.testAccuracy > s.bestTest)) {
      s.bestTest = r.testAccuracy;
      s.bestTestWhere = 'epoch ' + r.epoch;
    }
  } else if (r.kind === 'eval') {
    s.lastEval = r;
    if (isNum(r.accuracy) && (s.bestTest === null || r.accuracy > s.bestTest)) {
      s.bestTest = r.accuracy;
      s.bestTestWhere = r.epoch > 0 ? 'evaluation after epoch ' + r.epoch : 'evaluation';
    }
  }
}
function summaryHtml(s) {
  if (s.count === 0) return 'No records yet.';
  var parts = [
    'Epochs done: <b>' + s.epochs + '</b>',
    'step <b>' + s.step + '</b>',
    'last loss <b>' + fmt(s.lastLoss, 4) + '</b>',
    'best test accuracy <b>' + (s.bestTest === null ? '\u2013' : fmt(s.bestTest, 2) + '%') + '</b>' +
      (s.bestTestWhere ? ' (' + escapeHtml(s.bestTestWhere) + ')' : ''),
  ];
  return parts.join(' \u00b7 ');
}
function evalHtml(r) {
  var classes = Array.isArray(r.classes) ? r.classes : [];
  var k = classes.length;
  var m = Array.isArray(r.confusion) ? r.confusion : [];
  function cell(i, j) { var v = (m[i] || [])[j]; return isNum(v) ? v : 0; }
  var rowSums = [], total = 0, correct = 0, max = 0;
  for (var i = 0; i < k; i++) {
    var sum = 0;
    for (var j = 0; j < k; j++) { sum += cell(i, j); max = Math.max(max, cell(i, j)); }
    rowSums.push(sum); total += sum; correct += cell(i, i);
  }
  var h = '<h2>Evaluation' + (r.epoch > 0 ? ' after epoch ' + escapeHtml(r.epoch) : '') + '</h2>';
  h += '<p class="eval-overall">Accuracy <b>' + fmt(r.accuracy, 2) + '%</b> (' + correct + ' / ' + total +
    ') \u00b7 loss <b>' + fmt(r.loss, 4) + '</b></p>';
  h += '<div class="eval-tables"><div class="card"><h3>Per-class accuracy</h3><table class="per-class">';
  h += '<thead><tr><th scope="col">class</th><th scope="col">accuracy</th><th scope="col">samples</th></tr></thead><tbody>';
  for (var c = 0; c < k; c++) {
    var acc = (r.perClass || [])[c];
    var bar = isNum(acc) ? Math.max(0, Math.min(100, acc)) : 0;
    h += '<tr><th scope="row">' + escapeHtml(classes[c]) + '</th>' +
      '<td class="num bar" style="background:linear-gradient(90deg,rgba(31,95,168,.18) ' + bar.toFixed(1) + '%,transparent ' +
      bar.toFixed(1) + '%)">' + (isNum(acc) ? acc.toFixed(1) + '%' : '\u2013') + '</td>' +
      '<td class="num">' + rowSums[c] + '</td></tr>';
  }
  h += '</tbody></table></div><div class="card"><h3>Confusion matrix</h3>';
  if (k > MAX_CONFUSION_CLASSES) {
    h += '<p class="note">Left out: ' + k + ' classes (more than ' + MAX_CONFUSION_CLASSES + ').</p>';
  } else {
    h += '<table class="confusion' + (k > 12 ? ' many' : '') + '"><thead><tr><th class="corner">true \u2193 \u00b7 predicted \u2192</th>';
    for (var p = 0; p < k; p++) h += '<th scope="col"><span>' + escapeHtml(classes[p]) + '</span></th>';
    h += '</tr></thead><tbody>';
    for (var t = 0; t < k; t++) {
      h += '<tr><th scope="row">' + escapeHtml(classes[t]) + '</th>';
      for (var q = 0; q < k; q++) {
        var v = cell(t, q);
        var a = max > 0 ? v / max : 0;
        h += '<td class="num' + (t === q ? ' diag' : '') + '" style="background-color:rgba(31,95,168,' + a.toFixed(3) + ');color:' +
          (a > 0.5 ? '#fff' : '#1d2330') + '">' + v + '</td>';
      }
      h += '</tr>';
    }
    h += '</tbody></table>';
  }
  h += '</div></div>';
  return h;
}
`;

const CLIENT_JS = String.raw`
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('vgg-torch-data').textContent);
  var state = newState();
  var COLORS = { running: '#8fb3d9', train: '#1f5fa8', test: '#e8702a' };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = '#3b4252';
  function num(v) { return isNum(v) ? v : null; }
  function dataset(label, color, running) {
    return {
      label: label, data: [], borderColor: color, backgroundColor: color,
      borderWidth: running ? 1.5 : 2.5,
      pointRadius: running ? function (ctx) { return ctx.dataset.data.length > 60 ? 0 : 2; } : 4,
      pointHoverRadius: 5, tension: 0,
    };
  }
  function makeChart(id, title, yTitle, yScale, datasets, format) {
    return new Chart(document.getElementById(id), {
      type: 'line',
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'nearest', intersect: false },
        plugins: {
          title: { display: true, text: title, font: { size: 15, weight: 'bold' } },
          legend: { position: 'top', labels: { usePointStyle: true, pointStyle: 'circle', boxWidth: 8, boxHeight: 8, padding: 16 } },
          tooltip: {
            callbacks: {
              title: function (items) {
                var raw = items[0].raw;
                return 'step ' + raw.x + ' \u00b7 epoch ' + raw.epoch + (raw.batch ? ', batch ' + raw.batch : ' (end)');
              },
              label: function (item) { return item.dataset.label + ': ' + format(item.parsed.y); },
            },
          },
        },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'mini-batch step' }, ticks: { precision: 0 } },
          y: Object.assign({ title: { display: true, text: yTitle } }, yScale),
        },
      },
    });
  }
  var loss = makeChart('loss-chart', 'Loss', 'cross-entropy loss', {}, [
    dataset('train (running, per log)', COLORS.running, true),
    dataset('train (epoch mean)', COLORS.train, false),
    dataset('test (epoch)', COLORS.test, false),
  ], function (y) { return y === null ? '\u2013' : y.toFixed(4); });
  var accuracy = makeChart('accuracy-chart', 'Accuracy', 'accuracy (%)', { min: 0, max: 100 }, [
    dataset('train (running, per log)', COLORS.running, true),
    dataset('train (epoch)', COLORS.train, false),
    dataset('test (epoch)', COLORS.test, false),
  ], function (y) { return y === null ? '\u2013' : y.toFixed(2) + '%'; });
  window.vggTorchCharts = { loss: loss, accuracy: accuracy };

  var summaryEl = document.getElementById('summary');
  var evalEl = document.getElementById('eval');
  var evalShown = null;
  function add(r) {
    addToState(state, r);
    if (!r || typeof r !== 'object') return;
    var L = loss.data.datasets, A = accuracy.data.datasets;
    if (r.kind === 'batch') {
      L[0].data.push({ x: r.step, y: num(r.loss), epoch: r.epoch, batch: r.batch });
      A[0].data.push({ x: r.step, y: num(r.accuracy), epoch: r.epoch, batch: r.batch });
    } else if (r.kind === 'epoch') {
      L[1].data.push({ x: r.step, y: num(r.trainLoss), epoch: r.epoch });
      A[1].data.push({ x: r.step, y: num(r.trainAccuracy), epoch: r.epoch });
      if (r.testLoss !== undefined) L[2].data.push({ x: r.step, y: num(r.testLoss), epoch: r.epoch });
      if (r.testAccuracy !== undefined) A[2].data.push({ x: r.step, y: num(r.testAccuracy), epoch: r.epoch });
    }
  }
  function refresh() {
    loss.update('none');
    accuracy.update('none');
    summaryEl.innerHTML = summaryHtml(state);
    if (state.lastEval !== evalShown) {
      evalShown = state.lastEval;
      evalEl.innerHTML = evalHtml(evalShown);
      evalEl.hidden = false;
    }
    document.body.dataset.records = String(state.count);
  }
  cfg.records.forEach(add);
  refresh();
  if (cfg.live) live();

  function live() {
    var statusEl = document.getElementById('live-status');
    function status(s, text) { document.body.dataset.live = s; statusEl.className = 'live ' + s; statusEl.textContent = text; }
    // The page already holds the records it was rendered with; /records catches
    // up on any logged since, and ?since= makes the stream start right after
    // them. SSE ids are record counts, so a reconnect (Last-Event-ID) resumes
    // without gaps and a replayed record is recognised and skipped.
    function subscribe() {
      var es = new EventSource('events?since=' + state.count);
      es.onopen = function () { status('open', 'live'); };
      es.onerror = function () {
        if (es.readyState === EventSource.CLOSED) status('closed', 'disconnected');
        else status('connecting', 'reconnecting\u2026');
      };
      es.onmessage = function (ev) {
        var id = Number(ev.lastEventId);
        if (id > 0 && id <= state.count) return;
        var r;
        try { r = JSON.parse(ev.data); } catch (e) { return; }
        add(r);
        refresh();
      };
    }
    status('connecting', 'connecting\u2026');
    fetch('records', { cache: 'no-store' })
      .then(function (res) { return res.ok ? res.json() : []; })
      .then(function (all) {
        if (!Array.isArray(all) || all.length <= state.count) return;
        all.slice(state.count).forEach(add);
        refresh();
      })
      .catch(function () {})
      .then(subscribe);
  }
})();
`;

const CSS = `
:root { color-scheme: light; }
body { margin: 0 auto; padding: 16px 24px 40px; max-width: 1400px; background: #f5f6f8; color: #1d2330;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
h1 { font-size: 1.4rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 20px 0 4px; }
h3 { font-size: .95rem; margin: 0 0 8px; }
#summary { margin: 0 0 16px; color: #3b4252; }
.live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #e3e6eb; color: #3b4252; }
.live.open { background: #d8f0dd; color: #1e6b34; }
.live.closed { background: #f6dada; color: #8a1f1f; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 12px 14px; }
.chart-box { position: relative; height: 340px; }
.eval-overall { margin: 0 0 12px; }
.eval-tables { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { padding: 3px 8px; }
th { font-weight: 600; text-align: left; white-space: nowrap; }
td.num { text-align: right; }
table.per-class td.bar { min-width: 7em; }
table.per-class tbody tr { border-top: 1px solid #eef0f3; }
table.confusion td { min-width: 2.6em; border: 1px solid #e6e9ee; }
table.confusion td.diag { font-weight: 700; outline: 1px solid #1f5fa8; outline-offset: -1px; }
table.confusion thead th { text-align: center; vertical-align: bottom; }
table.confusion th.corner { font-weight: 400; color: #5c6370; font-size: 12px; text-align: left; }
table.confusion.many thead th span { writing-mode: vertical-rl; transform: rotate(180deg); }
.note { color: #5c6370; }
`;

interface Shared {
  escapeHtml(s: unknown): string;
  newState(): unknown;
  addToState(state: unknown, r: MetricsRecord): void;
  summaryHtml(state: unknown): string;
  evalHtml(r: EvalRecord): string;
}

let shared: Shared | null = null;
function sharedFns(): Shared {
  shared ??= new Function(`${SHARED_JS}\nreturn { escapeHtml, newState, addToState, summaryHtml, evalHtml };`)() as Shared;
  return shared;
}

let chartJs: string | null = null;
/** The Chart.js UMD bundle, read once. Resolved through the package name (its exports map hides `dist/`), so it works from lib/ and from a bundle in dist/. */
function chartJsSource(): string {
  if (chartJs === null) {
    const main = createRequire(import.meta.url).resolve('chart.js'); // .../chart.js/dist/chart.cjs
    const file = join(dirname(main), 'chart.umd.min.js');
    // The source map is not shipped with the page; drop the reference to it.
    chartJs = readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  }
  return chartJs;
}

/** Makes script text safe inside an HTML <script> element (the parser ends it at any `</script`). */
function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** JSON for a `<script type="application/json">`: `<`, `>`, `&` and the JS line separators as \u escapes. */
function inlineJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One self-contained HTML page of training charts: the loss (running batch
 * loss and epoch train/test loss against the mini-batch step), the accuracy
 * (same axes), a summary line and, when `records` holds an evaluation, the last
 * one's overall and per-class accuracy and confusion matrix. Chart.js and the
 * records are inlined, so the page needs no network. The page exposes
 * `window.vggTorchCharts = { loss, accuracy }` (the Chart instances) and keeps
 * `document.body.dataset.records` at the number of records shown.
 */
export function renderChartHtml(records: readonly MetricsRecord[], opts: ChartHtmlOptions = {}): string {
  checkOptions('renderChartHtml()', opts, ['title', 'live']);
  const fns = sharedFns();
  const title = fns.escapeHtml(opts.title ?? 'vgg-torch training');
  const live = opts.live === true;
  const state = fns.newState();
  let lastEval: EvalRecord | null = null;
  for (const r of records) {
    fns.addToState(state, r);
    if (r.kind === 'eval') lastEval = r;
  }
  const data = inlineJson({ live, records });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vgg-torch">
<link rel="icon" href="data:,">
<title>${title}</title>
<style>${CSS}</style>
</head>
<body data-records="${records.length}"${live ? ' data-live="connecting"' : ''}>
<header><h1>${title}</h1>${live ? '<span id="live-status" class="live">connecting…</span>' : ''}</header>
<p id="summary">${fns.summaryHtml(state)}</p>
<div class="charts">
<div class="card"><div class="chart-box"><canvas id="loss-chart" role="img" aria-label="Loss against mini-batch step"></canvas></div></div>
<div class="card"><div class="chart-box"><canvas id="accuracy-chart" role="img" aria-label="Accuracy against mini-batch step"></canvas></div></div>
</div>
<section id="eval"${lastEval ? '' : ' hidden'}>${lastEval ? fns.evalHtml(lastEval) : ''}</section>
<script type="application/json" id="vgg-torch-data">${data}</script>
<script>${inlineScript(chartJsSource())}</script>
<script>${inlineScript(SHARED_JS + CLIENT_JS)}</script>
</body>
</html>
`;
}

/**
 * Writes {@link renderChartHtml}'s page to `file` (parent directories created).
 * Atomic (a temporary file renamed over it), so a browser reloading the chart
 * while training rewrites it never sees half a page.
 */
export function writeChartHtml(file: string, records: readonly MetricsRecord[], opts: ChartHtmlOptions = {}): void {
  checkOptions('writeChartHtml()', opts, ['title', 'live']);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, renderChartHtml(records, opts));
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
