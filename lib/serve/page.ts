// The page of GET /: drop or pick a photo, see the top classes as bars
// (POST /predictions/<model>) and the Grad-CAM heatmap over the photo
// (POST /explanations/<model>). One self-contained document: the CSS and the
// script are inline and it loads nothing else, since a server may run offline.

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

// JSON inside <script>: no '<' may close the element, and U+2028/9 are line ends to old parsers.
const scriptJson = (v: unknown): string =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

const CSS = `
:root { color-scheme: light; font: 15px/1.4 system-ui, sans-serif; color: #1d2733; }
body { margin: 0 auto; max-width: 1000px; padding: 16px 24px; }
h1 { font-size: 20px; margin: 0 0 12px; }
#drop { display: block; border: 2px dashed #8aa0b8; border-radius: 8px; padding: 18px; text-align: center; cursor: pointer; background: #f5f8fb; }
#drop.over { background: #e3eefa; border-color: #1f5fa8; }
#file { margin-top: 8px; }
main { display: flex; gap: 24px; flex-wrap: wrap; margin-top: 16px; }
#stage { width: 448px; max-width: 100%; margin: 0; }
#stage .layers { position: relative; }
#stage canvas { display: block; max-width: 100%; }
#explained { color: #58677a; margin-top: 6px; }
#heatmap { position: absolute; left: 0; top: 0; }
#results { flex: 1; min-width: 280px; }
.bar { display: grid; grid-template-columns: 11em 1fr 4.5em; gap: 8px; align-items: center; margin: 6px 0; }
.bar .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar .track { background: #e6ebf0; border-radius: 4px; height: 16px; }
.bar .fill { background: #1f5fa8; border-radius: 4px; height: 100%; }
.bar:first-child .fill { background: #e8702a; }
.bar .prob { text-align: right; font-variant-numeric: tabular-nums; }
#status { color: #58677a; min-height: 1.4em; }
#error { color: #b3261e; white-space: pre-wrap; }
`;

// The client: plain browser JS (no build step), reading the served names from #vgg-torch-serve.
const SCRIPT = `
(() => {
  const cfg = JSON.parse(document.getElementById('vgg-torch-serve').textContent);
  const $ = (id) => document.getElementById(id);
  const select = $('model');
  for (const name of cfg.models) select.add(new Option(name, name));
  const body = document.body;
  const setState = (state, text) => { body.dataset.state = state; $('status').textContent = text || ''; };

  async function post(route, file) {
    const res = await fetch(route + '/' + encodeURIComponent(select.value), {
      method: 'POST',
      headers: { 'Content-Type': file.type || 'application/octet-stream' },
      body: file,
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = null; }
    if (!res.ok) throw new Error(route + ': ' + res.status + ' ' + (json && json.message ? json.message : text));
    return json;
  }

  function loadImage(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file);
      const img = new Image();
      img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('the browser cannot show this file as an image')); };
      img.src = url;
    });
  }

  function drawPhoto(img) {
    const width = Math.min(448, img.naturalWidth * 4);
    const height = Math.round((width * img.naturalHeight) / img.naturalWidth);
    for (const c of [$('photo'), $('heatmap')]) { c.width = width; c.height = height; }
    const ctx = $('photo').getContext('2d');
    ctx.imageSmoothingEnabled = img.naturalWidth >= width;
    ctx.drawImage(img, 0, 0, width, height);
    $('heatmap').getContext('2d').clearRect(0, 0, width, height);
  }

  function drawBars(pred) {
    const bars = $('bars');
    bars.replaceChildren();
    for (const [name, p] of Object.entries(pred)) {
      const row = document.createElement('div');
      row.className = 'bar';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = name;
      label.title = name;
      const track = document.createElement('div');
      track.className = 'track';
      const fill = document.createElement('div');
      fill.className = 'fill';
      fill.style.width = (100 * p).toFixed(2) + '%';
      track.append(fill);
      const prob = document.createElement('span');
      prob.className = 'prob';
      prob.textContent = (100 * p).toFixed(1) + ' %';
      row.append(label, track, prob);
      bars.append(row);
    }
    body.dataset.top = Object.keys(pred)[0] || '';
  }

  // The part of the photo the model saw: torchvision's Resize(short side) then CenterCrop
  // (Python's round, half to even, as lib/transforms). Without a crop: the whole photo.
  const roundHalfEven = (v) => { const f = Math.floor(v), d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };
  function region(img, crop) {
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!crop) return { x: 0, y: 0, w: 1, h: 1 };
    const s = crop.resizeSize;
    const [rw, rh] = w <= h ? [s, Math.floor((s * h) / w)] : [Math.floor((s * w) / h), s];
    const left = roundHalfEven((rw - crop.cropSize) / 2), top = roundHalfEven((rh - crop.cropSize) / 2);
    return { x: left / rw, y: top / rh, w: crop.cropSize / rw, h: crop.cropSize / rh };
  }

  // The heatmap in a jet colour map (blue low, red high), half transparent over the photo.
  function drawHeatmap(img, ex) {
    const heat = document.createElement('canvas');
    heat.width = ex.width;
    heat.height = ex.height;
    const hctx = heat.getContext('2d');
    const data = hctx.createImageData(ex.width, ex.height);
    const ch = (v, center) => Math.max(0, Math.min(1, 1.5 - Math.abs(4 * v - center)));
    for (let y = 0; y < ex.height; y++) {
      for (let x = 0; x < ex.width; x++) {
        const v = ex.heatmap[y][x], i = 4 * (y * ex.width + x);
        data.data[i] = 255 * ch(v, 3);
        data.data[i + 1] = 255 * ch(v, 2);
        data.data[i + 2] = 255 * ch(v, 1);
        data.data[i + 3] = 128;
      }
    }
    hctx.putImageData(data, 0, 0);
    const c = $('heatmap'), ctx = c.getContext('2d'), r = region(img, ex.crop);
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.drawImage(heat, r.x * c.width, r.y * c.height, r.w * c.width, r.h * c.height);
    $('explained').textContent = 'Grad-CAM of ' + ex.class;
    body.dataset.heatmap = 'drawn';
  }

  async function run(file) {
    $('error').textContent = '';
    $('bars').replaceChildren();
    $('explained').textContent = '';
    delete body.dataset.top;
    delete body.dataset.heatmap;
    setState('busy', 'Classifying ' + file.name + '…');
    try {
      const img = await loadImage(file);
      drawPhoto(img);
      const pred = await post('/predictions', file);
      drawBars(pred);
      setState('busy', 'Computing Grad-CAM…');
      drawHeatmap(img, await post('/explanations', file));
      setState('done', '');
    } catch (e) {
      $('error').textContent = e.message;
      setState('error', '');
    }
  }

  $('file').addEventListener('change', () => { if ($('file').files[0]) run($('file').files[0]); });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) run(file);
  });
  setState('idle', '');
})();
`;

/** The HTML of GET /: a page to try the served models (`names`) from a browser. */
export function renderPage(names: readonly string[], title = 'vgg-torch serve'): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<label id="drop">Drop a photo here, or pick one:<br><input type="file" id="file" accept="image/*"></label>
<p>Model: <select id="model"></select> <span id="status"></span></p>
<div id="error" role="alert"></div>
<main>
<figure id="stage"><div class="layers"><canvas id="photo" width="448" height="0"></canvas><canvas id="heatmap" width="448" height="0"></canvas></div><figcaption id="explained"></figcaption></figure>
<section id="results"><div id="bars"></div></section>
</main>
<script type="application/json" id="vgg-torch-serve">${scriptJson({ models: names })}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
