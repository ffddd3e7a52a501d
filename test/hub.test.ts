// torch.hub cache and pretrained weights against a loopback HTTP server, with
// files written by real PyTorch. The server runs in a child process because the
// blocking download (used by vgg16({ weights })) blocks this process's event loop.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hub, manualSeed, noGrad, randn, tidy, vgg11 } from '../lib/index.js';
import { type EncodedTensor, bitwiseDiff, hasTorchPython, python, requireLiveOracle, runNodeChild, PYTHON } from './helpers.js';

const live = hasTorchPython || requireLiveOracle;

// Serves every file of a folder; `/cut/NAME` sends half of NAME and then drops the connection.
const SERVER = `
const http = require('node:http'); const fs = require('node:fs'); const path = require('node:path');
const root = process.argv[1]; let hits = 0;
http.createServer((req, res) => {
  if (req.url === '/hits') return res.end(String(hits));
  hits++;
  const cut = req.url.startsWith('/cut/');
  const file = path.join(root, path.basename(req.url));
  if (!fs.existsSync(file)) { res.statusCode = 404; return res.end('not found'); }
  const body = fs.readFileSync(file);
  res.setHeader('Content-Length', body.length);
  if (cut) { res.write(body.subarray(0, body.length >> 1)); return setTimeout(() => res.socket.destroy(), 50); }
  res.end(body);
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });
`;

let server: ChildProcess;
let base = '';
let work = '';
let served = '';
let fileName = '';

async function hits(): Promise<number> {
  return Number(await (await fetch(`${base}/hits`)).text());
}

beforeAll(async () => {
  if (!live) return;
  work = mkdtempSync(join(tmpdir(), 'vgg-torch-hub-'));
  served = join(work, 'served');
  // A small state dict written by PyTorch; its name carries its SHA-256 prefix, as hub files do.
  const script = `
import torch, sys, collections
torch.manual_seed(0)
sd = collections.OrderedDict([('fc.weight', torch.randn(4, 3)), ('fc.bias', torch.randn(4)), ('bn.num_batches_tracked', torch.tensor(7))])
torch.save(sd, sys.argv[1])
`;
  spawnSync('mkdir', ['-p', served]);
  const raw = join(served, 'raw.pth');
  const r = spawnSync(PYTHON, ['-c', script, raw], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const bytes = readFileSync(raw);
  const sha = createHash('sha256').update(bytes).digest('hex');
  fileName = `tiny-${sha.slice(0, 8)}.pth`;
  writeFileSync(join(served, fileName), bytes);
  writeFileSync(join(served, 'tiny-00000000.pth'), bytes); // a name whose hash prefix is wrong
  server = spawn(process.execPath, ['-e', SERVER, served], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => server.stdout!.once('data', (d) => resolve(String(d).trim())));
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => {
  server?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!live)('torch.hub cache', () => {
  it('follows torch.hub: TORCH_HOME, then XDG_CACHE_HOME, then ~/.cache', () => {
    const saved = { t: process.env.TORCH_HOME, x: process.env.XDG_CACHE_HOME };
    try {
      process.env.TORCH_HOME = '/data/th';
      expect(hub.getDir()).toBe('/data/th/hub');
      delete process.env.TORCH_HOME;
      process.env.XDG_CACHE_HOME = '/data/xdg';
      expect(hub.getDir()).toBe('/data/xdg/torch/hub');
      expect(hub.cachedFile('https://download.pytorch.org/models/vgg16-397923af.pth')).toBe('/data/xdg/torch/hub/checkpoints/vgg16-397923af.pth');
    } finally {
      if (saved.t === undefined) delete process.env.TORCH_HOME;
      else process.env.TORCH_HOME = saved.t;
      if (saved.x === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved.x;
    }
  });

  it('setDir takes a folder (with ~ expanded) and refuses anything else', async () => {
    // In a child: the folder set stays for the life of the process, as in PyTorch.
    const r = await runNodeChild(`
import { homedir } from 'node:os';
const { hub } = await import(LIB);
const out = [];
hub.setDir('~/models'); out.push(hub.getDir() === homedir() + '/models');
hub.setDir('/srv/hub'); out.push(hub.getDir());
for (const bad of [5, '']) { try { hub.setDir(bad); out.push('accepted'); } catch (e) { out.push(e.constructor.name + ': ' + e.message); } }
out.push(hub.getDir());
console.log(JSON.stringify(out));`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      true,
      '/srv/hub',
      'TypeError: hub.setDir: dir must be a non-empty string, got 5',
      "TypeError: hub.setDir: dir must be a non-empty string, got '' (string)",
      '/srv/hub',
    ]);
  });

  it('downloads once with the hash checked, then reuses the cache', async () => {
    const modelDir = join(work, 'cache1');
    const before = await hits();
    const sd = await hub.loadStateDictFromUrl(`${base}/${fileName}`, { modelDir, checkHash: true, progress: false });
    expect([...sd.keys()]).toEqual(['fc.weight', 'fc.bias', 'bn.num_batches_tracked']);
    expect(sd.get('bn.num_batches_tracked')!.item()).toBe(7);
    const again = await hub.loadStateDictFromUrl(`${base}/${fileName}`, { modelDir, checkHash: true, progress: false });
    expect(await hits()).toBe(before + 1);
    expect(again.get('fc.weight')!.equal(sd.get('fc.weight')!)).toBe(true);
    for (const t of [...sd.values(), ...again.values()]) t.dispose();
  });

  it('rejects a wrong hash and leaves no file', async () => {
    const modelDir = join(work, 'cache2');
    await expect(hub.loadStateDictFromUrl(`${base}/tiny-00000000.pth`, { modelDir, checkHash: true, progress: false })).rejects.toThrow(/hash|SHA-256|sha256/i);
    expect(existsSync(modelDir) ? readdirSync(modelDir) : []).toEqual([]);
  });

  it('an interrupted download leaves no partial file, and the error names the URL and the cache path', async () => {
    const modelDir = join(work, 'cache3');
    const url = `${base}/cut/${fileName}`;
    const err = await hub.loadStateDictFromUrl(url, { modelDir, progress: false }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(url);
    expect((err as Error).message).toContain(join(modelDir, fileName));
    expect(existsSync(modelDir) ? readdirSync(modelDir) : []).toEqual([]);
  });

  it('the blocking variant downloads through a child process', () => {
    const modelDir = join(work, 'cache4');
    const sd = hub.loadStateDictFromUrlSync(`${base}/${fileName}`, { modelDir, checkHash: true, progress: false });
    expect(sd.get('fc.bias')!.shape).toEqual([4]);
    for (const t of sd.values()) t.dispose();
    expect(readdirSync(modelDir)).toEqual([fileName]);
  });

  it('vgg11({ weights }) loads a checkpoint PyTorch put in the cache, the 2017 legacy format, and computes as PyTorch does', async () => {
    const torchHome = join(work, 'torch-home');
    const outJson = join(work, 'vgg11-out.json');
    // What torch.hub would have left: the file under its official name (trusted once cached, as in torch.hub).
    const script = `
import torch, torchvision, sys, os, json, base64
torch.set_num_threads(2)
torch.manual_seed(5)
m = torchvision.models.vgg11().eval()
path = os.path.join(sys.argv[1], 'hub', 'checkpoints', 'vgg11-8a719046.pth')
os.makedirs(os.path.dirname(path), exist_ok=True)
torch.save(m.state_dict(), path, _use_new_zipfile_serialization=False)
torch.manual_seed(1)
x = torch.randn(1, 3, 224, 224)
with torch.no_grad(): y = m(x).contiguous()
json.dump({'dtype': 'float32', 'shape': list(y.shape), 'data': base64.b64encode(y.numpy().tobytes()).decode()}, open(sys.argv[2], 'w'))
`;
    const r = await python(['-c', script, torchHome, outJson]);
    if (r.status !== 0) throw new Error(r.stderr);
    const expected = JSON.parse(readFileSync(outJson, 'utf8')) as EncodedTensor;
    const saved = process.env.TORCH_HOME;
    process.env.TORCH_HOME = torchHome;
    try {
      manualSeed(123); // pretrained weights skip initialisation: the seed must not matter
      const model = vgg11({ weights: 'DEFAULT', progress: false }).eval();
      tidy(() => {
        manualSeed(1);
        const y = noGrad(() => model(randn(1, 3, 224, 224)));
        expect(bitwiseDiff(y, expected)).toBeNull();
      });
      model.dispose();
    } finally {
      if (saved === undefined) delete process.env.TORCH_HOME;
      else process.env.TORCH_HOME = saved;
    }
  });
});
