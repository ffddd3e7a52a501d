// download() and CIFAR10's download → MD5 → extraction, against servers this
// test starts on 127.0.0.1: a file server, a forward/CONNECT proxy, and (where
// openssl can make a certificate) an HTTPS server reached through the proxy.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create as tarCreate } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10, FashionMNIST, MNIST } from '../lib/data/index.js';
import * as hub from '../lib/hub/index.js';
import { bypassesProxy, download, downloadSync } from '../lib/utils/download.js';

const RECORD = 3073;
const work = mkdtempSync(join(tmpdir(), 'vgg-torch-download-'));

/** A small CIFAR-10 binary batch: label (i + offset) % 10, pseudo-random pixels (so gzip leaves it tens of KiB). */
function cifarBatch(n: number, offset: number): Buffer {
  const buf = Buffer.alloc(n * RECORD);
  let s = offset + 1;
  for (let i = 0; i < n; i++) {
    buf[i * RECORD] = (i + offset) % 10;
    for (let p = 0; p < 3072; p++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      buf[i * RECORD + 1 + p] = s >>> 24;
    }
  }
  return buf;
}

/** cifar-10-binary.tar.gz in the official layout, built with the tar package. */
async function buildArchive(): Promise<Buffer> {
  const src = join(work, 'src');
  const folder = join(src, 'cifar-10-batches-bin');
  mkdirSync(folder, { recursive: true });
  for (let b = 1; b <= 5; b++) writeFileSync(join(folder, `data_batch_${b}.bin`), cifarBatch(4, b * 100));
  writeFileSync(join(folder, 'test_batch.bin'), cifarBatch(3, 0));
  writeFileSync(join(folder, 'batches.meta.txt'), `${CIFAR10.CLASSES.join('\n')}\n`);
  writeFileSync(join(folder, 'readme.html'), '<html></html>\n');
  const file = join(work, 'cifar-10-binary.tar.gz');
  await tarCreate({ gzip: true, file, cwd: src, portable: true }, ['cifar-10-batches-bin']);
  return readFileSync(file);
}

let archive: Buffer;
let archiveMd5: string;
let server: http.Server;
let base: string;
const hits: Record<string, number> = {};

function listen(s: net.Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));
}
function close(s: net.Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  hits[path] = (hits[path] ?? 0) + 1;
  if (path === '/cifar-10-binary.tar.gz' || path === '/file.bin') {
    res.writeHead(200, { 'Content-Length': archive.length, 'Content-Type': 'application/gzip' });
    // In pieces, so progress is reported more than once.
    let o = 0;
    const step = (): void => {
      if (o >= archive.length) {
        res.end();
        return;
      }
      res.write(archive.subarray(o, o + 1024), step);
      o += 1024;
    };
    step();
  } else if (path === '/moved') {
    res.writeHead(302, { Location: '/hop' }).end();
  } else if (path === '/hop') {
    res.writeHead(301, { Location: `${base}/file.bin` }).end();
  } else if (path === '/truncated') {
    res.writeHead(200, { 'Content-Length': archive.length });
    res.write(archive.subarray(0, 1000), () => res.socket?.destroy());
  } else if (path === '/trickle') {
    // A byte every 50 ms: never silent for long, never done in time.
    res.writeHead(200, { 'Content-Length': 100_000 });
    const timer = setInterval(() => res.write('x'), 50);
    res.on('close', () => clearInterval(timer));
  } else if (path === '/silent') {
    // Headers, then nothing: the download must time out.
    res.writeHead(200, { 'Content-Length': 10 });
    res.flushHeaders();
  } else {
    res.writeHead(404).end('not here');
  }
}

// Proxy settings of the machine must not apply to these loopback servers; tests set their own.
const PROXY_ENV = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  for (const k of PROXY_ENV) {
    savedEnv[k] = process.env[k];
    delete process.env[k];
  }
  archive = await buildArchive();
  archiveMd5 = createHash('md5').update(archive).digest('hex');
  server = http.createServer(serve);
  base = `http://127.0.0.1:${await listen(server)}`;
});

afterAll(async () => {
  for (const k of PROXY_ENV) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  server.closeAllConnections();
  await close(server);
  rmSync(work, { recursive: true, force: true });
});

/** Files in `dir`, hidden temporaries included. */
const listing = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);

function freshDir(name: string): string {
  const d = join(work, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  return d;
}

describe('download()', () => {
  it('streams to the destination, verifies the MD5 and reports progress', async () => {
    const dir = freshDir('ok');
    const seen: [number, number | null][] = [];
    const r = await download(`${base}/file.bin`, join(dir, 'a.tar.gz'), { md5: archiveMd5, progress: (got, total) => seen.push([got, total]), proxy: null });
    expect(r.bytes).toBe(archive.length);
    expect(r.md5).toBe(archiveMd5);
    expect(readFileSync(join(dir, 'a.tar.gz')).equals(archive)).toBe(true);
    expect(listing(dir)).toEqual(['a.tar.gz']);
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toEqual([archive.length, archive.length]);
    expect(seen.every(([, t]) => t === archive.length)).toBe(true);
  });

  it('prints plain progress lines when stderr is not a TTY', async () => {
    const dir = freshDir('lines');
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const isTTY = process.stderr.isTTY;
    process.stderr.isTTY = false;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await download(`${base}/file.bin`, join(dir, 'b.bin'), { proxy: null });
    } finally {
      process.stderr.write = write;
      process.stderr.isTTY = isTTY;
    }
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^b\.bin: 100% \(/);
  });

  it('follows redirects (relative and absolute)', async () => {
    const dir = freshDir('redirect');
    const before = hits['/file.bin'] ?? 0;
    await download(`${base}/moved`, join(dir, 'c.bin'), { md5: archiveMd5, progress: false, proxy: null });
    expect(hits['/hop']).toBeGreaterThan(0);
    expect(hits['/file.bin']).toBe(before + 1);
    expect(readFileSync(join(dir, 'c.bin')).equals(archive)).toBe(true);
  });

  it('rejects a wrong MD5 and leaves no file', async () => {
    const dir = freshDir('badmd5');
    const dest = join(dir, 'd.bin');
    await expect(download(`${base}/file.bin`, dest, { md5: '0'.repeat(32), progress: false, proxy: null })).rejects.toThrow(
      /MD5 mismatch for http:\/\/127\.0\.0\.1:\d+\/file\.bin: expected 0{32}, got [0-9a-f]{32}; the file was not kept/,
    );
    expect(listing(dir)).toEqual([]);
  });

  it('checks a SHA-256 prefix as torch.hub names files', async () => {
    const dir = freshDir('sha');
    const sha = createHash('sha256').update(archive).digest('hex');
    await download(`${base}/file.bin`, join(dir, `w-${sha.slice(0, 8)}.pth`), { sha256Prefix: sha.slice(0, 8), progress: false, proxy: null });
    await expect(
      download(`${base}/file.bin`, join(dir, 'x.pth'), { sha256Prefix: 'ffffffff'.replace(/^./, sha[0] === 'f' ? '0' : 'f'), progress: false, proxy: null }),
    ).rejects.toThrow(/SHA-256 mismatch/);
    expect(listing(dir)).toEqual([`w-${sha.slice(0, 8)}.pth`]);
  });

  it('a cut connection throws, naming the URL and where to put the file, and leaves nothing', async () => {
    const dir = freshDir('cut');
    const dest = join(dir, 'e.bin');
    const err = await download(`${base}/truncated`, dest, { progress: false, proxy: null }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`${base}/truncated`);
    expect((err as Error).message).toContain(`save it as ${dest}`);
    expect(listing(dir)).toEqual([]);
  });

  it('a refused connection, an HTTP error and a stalled server all throw with the URL and the path', async () => {
    const dir = freshDir('fail');
    const dead = net.createServer();
    const port = await listen(dead);
    await close(dead); // nothing listens there now
    const dest = join(dir, 'f.bin');
    await expect(download(`http://127.0.0.1:${port}/x.bin`, dest, { progress: false, proxy: null })).rejects.toThrow(
      new RegExp(`could not fetch http://127\\.0\\.0\\.1:${port}/x\\.bin: .*ECONNREFUSED.*save it as ${dest.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
    );
    await expect(download(`${base}/nothing`, dest, { progress: false, proxy: null })).rejects.toThrow(/answered HTTP 404 Not Found; download it by hand/);
    await expect(download(`${base}/silent`, dest, { progress: false, proxy: null, timeoutMs: 300 })).rejects.toThrow(/no data for 300 ms/);
    expect(listing(dir)).toEqual([]);
  });

  it('totalTimeoutMs stops a server that trickles a byte at a time, which the inactivity timeout never does; nothing is left', async () => {
    const dir = freshDir('trickle');
    const dest = join(dir, 'f.bin');
    const started = Date.now();
    await expect(download(`${base}/trickle`, dest, { progress: false, proxy: null, timeoutMs: 400, totalTimeoutMs: 1000 })).rejects.toThrow(
      /failed after \d+ B: the download took longer than 1000 ms in all \(totalTimeoutMs\); download it by hand/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(listing(dir)).toEqual([]);
    // The blocking paths (a child process) take the limit too: torch.hub's cache and the datasets. The parent
    // blocks meanwhile, so this trickling server runs in a thread of its own.
    const w = new Worker(
      `
      const { parentPort } = require('node:worker_threads');
      const s = require('node:http').createServer((req, res) => {
        res.writeHead(200, { 'Content-Length': 100000 });
        const timer = setInterval(() => res.write('x'), 50);
        res.on('close', () => clearInterval(timer));
      });
      s.listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
    `,
      { eval: true },
    );
    try {
      const trickle = `http://127.0.0.1:${await new Promise<number>((r) => w.once('message', r))}/trickle`;
      expect(() => hub.downloadToCacheSync(trickle, { modelDir: dir, fileName: 'w.pth', progress: false, timeoutMs: 400, totalTimeoutMs: 1000 })).toThrow(
        /took longer than 1000 ms in all/,
      );
      expect(() => new CIFAR10({ root: dir, download: true, url: trickle, progress: false, timeoutMs: 400, totalTimeoutMs: 1000 })).toThrow(
        /CIFAR10: .*took longer than 1000 ms in all/,
      );
    } finally {
      await w.terminate();
    }
    await expect(CIFAR10.load({ root: dir, download: true, url: `${base}/trickle`, progress: false, totalTimeoutMs: 1000 })).rejects.toThrow(
      /CIFAR10: .*took longer than 1000 ms in all/,
    );
    expect(listing(dir)).toEqual([]);
    await expect(download(`${base}/file.bin`, dest, { progress: false, totalTimeoutMs: -1 })).rejects.toThrow(
      /totalTimeoutMs must be a positive number of milliseconds or null, got -1/,
    );
    await expect(download(`${base}/file.bin`, dest, { progress: false, totalTimout: 5 } as never)).rejects.toThrow(
      /download: unknown option 'totalTimout'.*totalTimeoutMs/,
    );
    expect(() => hub.downloadToCacheSync(`${base}/file.bin`, { dir } as never)).toThrow(/hub\.downloadToCacheSync: unknown option 'dir'/);
    expect(() => new CIFAR10({ root: dir, totalTimout: 5 } as never)).toThrow(/CIFAR10: unknown option 'totalTimout'.*totalTimeoutMs/);
    await expect(CIFAR10.load({ root: dir, dowload: true } as never)).rejects.toThrow(/CIFAR10\.load: unknown option 'dowload'.*'download'/);
    expect(() => new FashionMNIST({ root: dir, trian: false } as never)).toThrow(/FashionMNIST: unknown option 'trian'.*'train'/);
  });

  it('removes .part files a killed process left over a day ago, and keeps younger ones (a download in progress)', async () => {
    const dir = freshDir('stale');
    const old = join(dir, '.f.bin.4242.0123abcd.part');
    const young = join(dir, '.f.bin.4343.89abcdef.part');
    const foreign = join(dir, 'notes.part');
    for (const f of [old, young, foreign]) writeFileSync(f, 'partial');
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    utimesSync(old, twoDaysAgo, twoDaysAgo);
    utimesSync(foreign, twoDaysAgo, twoDaysAgo);
    await download(`${base}/file.bin`, join(dir, 'f.bin'), { progress: false, proxy: null });
    expect(listing(dir)).toEqual(['.f.bin.4343.89abcdef.part', 'f.bin', 'notes.part']);
  });

  it('reads NO_PROXY as curl does', () => {
    const u = new URL('http://data.example.com:8080/x');
    expect(bypassesProxy(u, 'example.com')).toBe(true);
    expect(bypassesProxy(u, '.example.com')).toBe(true);
    expect(bypassesProxy(u, '*.example.com')).toBe(true);
    expect(bypassesProxy(u, 'other.com, example.com:8080')).toBe(true);
    expect(bypassesProxy(u, 'example.com:9090')).toBe(false);
    expect(bypassesProxy(u, 'ample.com')).toBe(false);
    expect(bypassesProxy(u, '*')).toBe(true);
    expect(bypassesProxy(new URL('http://127.0.0.1/x'), 'localhost,127.0.0.1')).toBe(true);
  });
});

describe('download() through a proxy', () => {
  let proxy: http.Server;
  let proxyUrl: string;
  const seen: string[] = [];
  const tunnels: net.Socket[] = [];

  beforeAll(async () => {
    // A forward proxy (absolute-form GETs) that also tunnels CONNECT.
    proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const target = new URL(req.url ?? '');
      const up = http.request(
        { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    });
    proxy.on('connect', (req, client, head) => {
      seen.push(`CONNECT ${req.url}`);
      tunnels.push(client as net.Socket);
      const [host, port] = (req.url ?? '').split(':');
      const up = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    proxyUrl = `http://127.0.0.1:${await listen(proxy)}`;
  });

  afterAll(async () => {
    for (const t of tunnels) t.destroy(); // CONNECT sockets leave the server's bookkeeping
    proxy.closeAllConnections();
    await close(proxy);
  });

  it('sends http:// requests through HTTP_PROXY, unless NO_PROXY names the host', async () => {
    const dir = freshDir('proxied');
    process.env.HTTP_PROXY = proxyUrl;
    try {
      seen.length = 0;
      await download(`${base}/file.bin`, join(dir, 'g.bin'), { md5: archiveMd5, progress: false });
      expect(seen).toEqual([`GET ${base}/file.bin`]);
      process.env.NO_PROXY = '127.0.0.1';
      await download(`${base}/file.bin`, join(dir, 'h.bin'), { md5: archiveMd5, progress: false });
      expect(seen).toHaveLength(1);
    } finally {
      delete process.env.HTTP_PROXY;
      delete process.env.NO_PROXY;
    }
    expect(listing(dir)).toEqual(['g.bin', 'h.bin']);
  });

  it('a dead proxy is a network failure naming the URL', async () => {
    const dir = freshDir('deadproxy');
    const dead = net.createServer();
    const port = await listen(dead);
    await close(dead);
    process.env.HTTP_PROXY = `http://127.0.0.1:${port}`;
    try {
      await expect(download(`${base}/file.bin`, join(dir, 'i.bin'), { progress: false })).rejects.toThrow(
        /could not fetch http:\/\/127\.0\.0\.1:\d+\/file\.bin.*ECONNREFUSED/,
      );
    } finally {
      delete process.env.HTTP_PROXY;
    }
    expect(listing(dir)).toEqual([]);
  });

  // HTTPS through a CONNECT tunnel needs a certificate: made with openssl where it is installed.
  const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasOpenssl && process.env.CI !== 'true')('tunnels https:// through HTTPS_PROXY with CONNECT', { timeout: 20_000 }, async () => {
    const dir = freshDir('tls');
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    expect(r.status).toBe(0);
    const cert = readFileSync(join(dir, 'cert.pem'));
    const tlsServer = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, serve);
    const port = await listen(tlsServer);
    process.env.HTTPS_PROXY = proxyUrl;
    try {
      seen.length = 0;
      await download(`https://127.0.0.1:${port}/file.bin`, join(dir, 'j.bin'), { md5: archiveMd5, progress: false, ca: cert });
      expect(seen).toEqual([`CONNECT 127.0.0.1:${port}`]);
      // Without the CA the certificate is refused: TLS really runs inside the tunnel.
      await expect(download(`https://127.0.0.1:${port}/file.bin`, join(dir, 'k.bin'), { progress: false })).rejects.toThrow(
        /could not fetch https:.*(self[- ]signed|certificate)/i,
      );
    } finally {
      delete process.env.HTTPS_PROXY;
      tlsServer.closeAllConnections();
      await close(tlsServer);
    }
    expect(readFileSync(join(dir, 'j.bin')).equals(archive)).toBe(true);
    expect(existsSync(join(dir, 'k.bin'))).toBe(false);
  });
});

describe('CIFAR10 download', () => {
  it('downloads once, checks the MD5, extracts cifar-10-batches-bin/ and parses it', async () => {
    const root = freshDir('cifar');
    const url = `${base}/cifar-10-binary.tar.gz`;
    const before = hits['/cifar-10-binary.tar.gz'] ?? 0;
    const train = await CIFAR10.load({ root, train: true, download: true, url, md5: archiveMd5, progress: false });
    expect(hits['/cifar-10-binary.tar.gz']).toBe(before + 1);
    expect(listing(root)).toEqual(['cifar-10-batches-bin', 'cifar-10-binary.tar.gz']);
    expect(listing(join(root, 'cifar-10-batches-bin'))).toEqual([
      'batches.meta.txt',
      'data_batch_1.bin',
      'data_batch_2.bin',
      'data_batch_3.bin',
      'data_batch_4.bin',
      'data_batch_5.bin',
      'readme.html',
      'test_batch.bin',
    ]);
    expect(train.length).toBe(20);
    expect(train.data.shape).toEqual([20, 3, 32, 32]);
    expect(Array.from({ length: 20 }, (_, i) => train.target(i))).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    // Present now: no second download, for either split.
    const test = await CIFAR10.load({ root, train: false, download: true, url, md5: archiveMd5, progress: false });
    expect(test.length).toBe(3);
    expect(hits['/cifar-10-binary.tar.gz']).toBe(before + 1);
    // A removed folder is re-extracted from the kept archive, still without downloading.
    rmSync(join(root, 'cifar-10-batches-bin'), { recursive: true });
    const again = await CIFAR10.load({ root, download: true, url, md5: archiveMd5, progress: false });
    expect(again.data.equal(train.data)).toBe(true);
    expect(hits['/cifar-10-binary.tar.gz']).toBe(before + 1);
    for (const d of [train, test, again]) d.dispose();
  });

  it('keeps the official MD5 as the default, and a mismatch leaves neither archive nor folder', async () => {
    const root = freshDir('cifar-bad');
    expect(CIFAR10.MD5).toBe('c32a1d4ab5d03f1284b67883e8d87530');
    expect(CIFAR10.URL).toBe('https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
    // The served archive is not the real one, so the default MD5 rejects it.
    await expect(CIFAR10.load({ root, download: true, url: `${base}/cifar-10-binary.tar.gz`, progress: false })).rejects.toThrow(
      /^CIFAR10: MD5 mismatch for .*expected c32a1d4ab5d03f1284b67883e8d87530/,
    );
    expect(listing(root)).toEqual([]);
  });

  it('without the files and without download, says where to put what', async () => {
    const root = freshDir('cifar-missing');
    expect(() => new CIFAR10({ root })).toThrow(
      /^CIFAR10: .*data_batch_1\.bin not found\. Pass download: true, or download https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10-binary\.tar\.gz \(the binary version, MD5 c32a1d4ab5d03f1284b67883e8d87530\) and extract it in .*cifar-missing, so that .*cifar-10-batches-bin holds data_batch_1\.bin … data_batch_5\.bin and test_batch\.bin/,
    );
    await expect(CIFAR10.load({ root, train: false })).rejects.toThrow(/test_batch\.bin not found/);
  });

  it('new CIFAR10({ download: true }) downloads synchronously (a child process), checking the MD5', async () => {
    // The parent blocks while the child downloads, so the server runs in a thread of its own.
    const file = join(work, 'cifar-10-binary.tar.gz');
    const w = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const http = require('node:http');
      const fs = require('node:fs');
      const s = http.createServer((req, res) => {
        const body = fs.readFileSync(workerData.file);
        res.writeHead(200, { 'Content-Length': body.length });
        res.end(body);
      });
      s.listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
    `,
      { eval: true, workerData: { file } },
    );
    const port = await new Promise<number>((r) => w.once('message', r));
    const url = `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`;
    try {
      const root = freshDir('cifar-sync');
      const ds = new CIFAR10({ root, train: false, download: true, url, md5: archiveMd5, progress: false });
      expect(ds.length).toBe(3);
      expect(listing(root)).toEqual(['cifar-10-batches-bin', 'cifar-10-binary.tar.gz']);
      ds.dispose();
      const bad = freshDir('cifar-sync-bad');
      expect(() => new CIFAR10({ root: bad, download: true, url, md5: 'f'.repeat(32), progress: false })).toThrow(
        /^CIFAR10: MD5 mismatch for http:\/\/127\.0\.0\.1:\d+\/cifar-10-binary\.tar\.gz: expected f{32}, got [0-9a-f]{32}; the file was not kept/,
      );
      expect(listing(bad)).toEqual([]);
    } finally {
      await w.terminate();
    }
  }, 60_000);
});

/** A gzipped IDX file of unsigned bytes. */
function idxGz(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x00000800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, data]));
}

describe('MNIST download and downloadSync()', () => {
  it('MNIST fetches its four files from the first mirror that has them, MD5-checked, blocking or not; downloadSync() as download()', async () => {
    // Served by a thread of its own, since the blocking paths block this one; '/gone/' answers 404 (a dead mirror).
    const served = freshDir('mnist-served');
    const files: [string, Buffer][] = [
      [
        'train-images-idx3-ubyte.gz',
        idxGz(
          [5, 28, 28],
          Uint8Array.from({ length: 5 * 784 }, (_, i) => i % 251),
        ),
      ],
      ['train-labels-idx1-ubyte.gz', idxGz([5], Uint8Array.from([3, 1, 4, 1, 5]))],
      ['t10k-images-idx3-ubyte.gz', idxGz([2, 28, 28], new Uint8Array(2 * 784).fill(7))],
      ['t10k-labels-idx1-ubyte.gz', idxGz([2], Uint8Array.from([9, 2]))],
    ];
    for (const [name, body] of files) writeFileSync(join(served, name), body);
    const w = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs'), path = require('node:path');
      const s = require('node:http').createServer((req, res) => {
        const file = path.join(workerData.dir, path.basename(req.url));
        if (req.url.startsWith('/gone/') || !fs.existsSync(file)) return res.writeHead(404).end();
        const body = fs.readFileSync(file);
        res.writeHead(200, { 'Content-Length': body.length }).end(body);
      });
      s.listen(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));
    `,
      { eval: true, workerData: { dir: served } },
    );
    try {
      const local = `http://127.0.0.1:${await new Promise<number>((r) => w.once('message', r))}`;
      const md5s = files.map(([name, body]) => [name, createHash('md5').update(body).digest('hex')] as const);
      class LocalMNIST extends MNIST {
        static override readonly MIRRORS = [`${local}/gone/`, `${local}/mnist/`];
        static override readonly RESOURCES = md5s;
      }
      const root = freshDir('mnist');
      const train = await LocalMNIST.load({ root, download: true, progress: false });
      expect(train.length).toBe(5);
      expect(train.target(2)).toBe(4);
      expect(listing(join(root, 'LocalMNIST', 'raw'))).toEqual(files.map(([n]) => n).sort());
      train.dispose();
      const blocking = freshDir('mnist-sync');
      const test = new LocalMNIST({ root: blocking, train: false, download: true, progress: false });
      expect(test.length).toBe(2);
      expect(test.target(0)).toBe(9);
      expect(listing(join(blocking, 'LocalMNIST', 'raw'))).toEqual(files.map(([n]) => n).sort());
      test.dispose();
      // A wrong MD5 on every mirror: each mirror's failure is named, and nothing is kept.
      class BadMNIST extends LocalMNIST {
        static override readonly RESOURCES = md5s.map(([n]) => [n, '0'.repeat(32)] as const);
      }
      const bad = freshDir('mnist-bad');
      expect(() => new BadMNIST({ root: bad, download: true, progress: false })).toThrow(
        /^BadMNIST: could not download train-images-idx3-ubyte\.gz from any mirror:\n {2}download: .*gone\/train-images-idx3-ubyte\.gz answered HTTP 404.*\n {2}download: MD5 mismatch for .*mnist\/train-images-idx3-ubyte\.gz: expected 0{32}, got [0-9a-f]{32}; the file was not kept/,
      );
      await expect(BadMNIST.load({ root: bad, download: true, progress: false })).rejects.toThrow(/^BadMNIST: could not download .*\n.*404.*\n.*MD5 mismatch/);
      expect(listing(join(bad, 'BadMNIST', 'raw'))).toEqual([]);
      // downloadSync() itself: download()'s result, and its SHA-256 check (torch.hub's check_hash).
      const [name, body] = files[1];
      const sha = createHash('sha256').update(body).digest('hex');
      const dest = join(bad, `w-${sha.slice(0, 8)}.gz`);
      expect(downloadSync(`${local}/mnist/${name}`, dest, { sha256Prefix: sha.slice(0, 8), progress: false, proxy: null })).toEqual({
        path: dest,
        bytes: body.length,
        md5: md5s[1][1],
        sha256: sha,
      });
      expect(() =>
        downloadSync(`${local}/mnist/${name}`, join(bad, 'x.gz'), { sha256Prefix: sha[0] === 'f' ? '0' : 'f', progress: false, proxy: null }),
      ).toThrow(/^download: SHA-256 mismatch for http:.*: expected a digest starting with [0f], got [0-9a-f]{64}; the file was not kept$/);
      expect(listing(bad)).toEqual(['BadMNIST', `w-${sha.slice(0, 8)}.gz`]);
    } finally {
      await w.terminate();
    }
  }, 60_000);

  it("downloadSync() takes download()'s options and checks, throws its errors, and refuses a progress callback", async () => {
    const dir = freshDir('dlsync');
    expect(() => downloadSync(`${base}/file.bin`, join(dir, 'a.bin'), { progress: () => {} })).toThrow(/downloadSync: progress must be a boolean/);
    expect(() => downloadSync(`${base}/file.bin`, join(dir, 'a.bin'), { md6: 'x' } as never)).toThrow(
      /downloadSync: unknown option 'md6' \(did you mean 'md5'\?\)/,
    );
    expect(() => downloadSync(`${base}/file.bin`, join(dir, 'a.bin'), { timeoutMs: 0 })).toThrow(
      /downloadSync: timeoutMs must be a positive number of milliseconds, got 0/,
    );
    // Nothing listens on a closed port: the child's error comes back as it is.
    const dead = net.createServer();
    const port = await listen(dead);
    await close(dead);
    const dest = join(dir, 'b.bin');
    expect(() => downloadSync(`http://127.0.0.1:${port}/b.bin`, dest, { progress: false, proxy: null })).toThrow(
      new RegExp(
        `^download: could not fetch http://127\\.0\\.0\\.1:${port}/b\\.bin: .*ECONNREFUSED.*save it as ${dest.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`,
      ),
    );
    expect(listing(dir)).toEqual([]);
  });
});
