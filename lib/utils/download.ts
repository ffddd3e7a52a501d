// One downloader for datasets and (later) the torch.hub weight cache: streams to
// a temporary file beside the destination, hashes while writing, and renames into
// place only once the hash matches, so a destination path either holds the whole,
// verified file or nothing. Proxies (HTTP(S)_PROXY, NO_PROXY) are honoured with
// node:http/https alone: absolute-form requests for http://, CONNECT tunnels for https://.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, type WriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { basename, dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import net, { type Socket } from 'node:net';
import { checkOptions, describe } from './args.js';

/** Called as bytes arrive; `total` is null when the server sends no Content-Length. */
export type ProgressCallback = (received: number, total: number | null) => void;

export interface DownloadOptions {
  /**
   * `true` (default): a progress bar on a TTY stderr, a few plain lines otherwise;
   * `false`: silent; a function: called with the byte counts instead.
   */
  progress?: boolean | ProgressCallback;
  /** Expected MD5 (hex) of the whole file; a mismatch deletes the download and throws. */
  md5?: string;
  /** Expected leading hex digits of the SHA-256 (torch.hub's `name-<sha256 prefix>.pth` check). */
  sha256Prefix?: string;
  /** Give up when no byte arrives for this long (default 30 000 ms). */
  timeoutMs?: number;
  /**
   * Give up when the whole download, redirects included, takes longer than this
   * (default `null`: no limit, as torch.hub). `timeoutMs` alone lets a server
   * that sends a byte now and then hold a download for ever.
   */
  totalTimeoutMs?: number | null;
  /**
   * Proxy URL (`http://host:port`) to use; `null` for none. Default: from the
   * environment: HTTPS_PROXY / HTTP_PROXY (or lower case) and NO_PROXY.
   */
  proxy?: string | null;
  /** Extra trusted CA certificate(s) in PEM, for TLS-inspecting proxies and tests. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Redirects to follow (default 10). */
  maxRedirects?: number;
}

/** What {@link download} found: the final path, its size and digests. */
export interface DownloadResult {
  path: string;
  bytes: number;
  md5: string;
  sha256: string;
}

/** MD5 (or another node:crypto digest) of a file, streamed. */
export async function fileDigest(path: string, algorithm: 'md5' | 'sha256' = 'md5'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function proxyEnv(name: string): string | undefined {
  const v = process.env[name] ?? process.env[name.toLowerCase()];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** Whether NO_PROXY (comma/space separated hosts, `.suffix`, `host:port`, `*`) exempts `url`. */
export function bypassesProxy(url: URL, noProxy = proxyEnv('NO_PROXY')): boolean {
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    // host:port, [v6]:port, or a bare host / .suffix / *.suffix
    const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (withPort) {
      if (withPort[2] !== port) continue;
      entry = withPort[1];
    }
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*\./, '.');
    const bare = entry.replace(/^\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** The proxy for `url` from the environment, as curl and Python's urllib read it. */
export function proxyFor(url: URL): URL | null {
  if (bypassesProxy(url)) return null;
  const raw = url.protocol === 'https:' ? proxyEnv('HTTPS_PROXY') ?? proxyEnv('ALL_PROXY') : proxyEnv('HTTP_PROXY') ?? proxyEnv('ALL_PROXY');
  if (!raw) return null;
  return new URL(raw.includes('://') ? raw : `http://${raw}`);
}

function proxyAuthHeader(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const creds = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'Proxy-Authorization': `Basic ${Buffer.from(creds).toString('base64')}` };
}

/** Opens a CONNECT tunnel through `proxy` to `host:port`. */
function connectTunnel(proxy: URL, host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolvePromise, reject) => {
    const lib = proxy.protocol === 'https:' ? https : http;
    const req = lib.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80)),
      method: 'CONNECT',
      path: `${host.includes(':') ? `[${host}]` : host}:${port}`,
      headers: { Host: `${host}:${port}`, ...proxyAuthHeader(proxy) },
      agent: false,
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`proxy ${proxy.host} did not answer CONNECT within ${timeoutMs} ms`)));
    req.once('connect', (res, socket) => {
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} refused CONNECT ${host}:${port} (HTTP ${res.statusCode})`));
        return;
      }
      resolvePromise(socket);
    });
    req.once('error', reject);
    req.end();
  });
}

interface Fetched {
  res: http.IncomingMessage;
  req: http.ClientRequest;
  /** The first error the request reported (a timeout, a reset), kept for the message. */
  failure: () => Error | undefined;
}

/** One GET, through a proxy where one applies; no redirect handling. */
async function get(url: URL, opts: DownloadOptions, timeoutMs: number, onRequest: (req: http.ClientRequest) => void): Promise<Fetched> {
  const proxy = opts.proxy === undefined ? proxyFor(url) : opts.proxy === null ? null : new URL(opts.proxy);
  const headers: Record<string, string> = { 'User-Agent': 'vgg-torch', Accept: '*/*' };
  const isHttps = url.protocol === 'https:';
  if (!isHttps && url.protocol !== 'http:') throw new Error(`unsupported protocol ${url.protocol}`);
  const port = Number(url.port || (isHttps ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  let options: https.RequestOptions;
  if (proxy && !isHttps) {
    // Forward proxy: the request line carries the absolute URL.
    options = {
      host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 80), path: url.href,
      headers: { ...headers, Host: url.host, ...proxyAuthHeader(proxy) }, agent: false,
    };
  } else if (proxy && isHttps) {
    // TLS to the origin inside a CONNECT tunnel; with createConnection and no agent, the request uses this socket.
    const socket = await connectTunnel(proxy, hostname, port, timeoutMs);
    const servername = net.isIP(hostname) ? undefined : hostname;
    options = {
      host: hostname, port, path: url.pathname + url.search, headers,
      createConnection: () => tls.connect({ socket, host: hostname, servername, ca: opts.ca }),
    };
  } else {
    options = { host: hostname, port, path: url.pathname + url.search, headers, agent: false, ca: opts.ca };
  }
  return new Promise((resolvePromise, reject) => {
    const lib = isHttps && !proxy ? https : http;
    let failure: Error | undefined;
    const req = lib.request({ ...options, method: 'GET' });
    onRequest(req);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data for ${timeoutMs} ms`)));
    // Errors after the response (a timeout mid-body) must not go unhandled: keep the first.
    req.on('error', (e) => {
      failure ??= e;
      reject(e);
    });
    req.once('response', (res) => resolvePromise({ res, req, failure: () => failure }));
    req.end();
  });
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A progress reporter: a redrawn bar on a TTY, a line per 10% (or per 10 MiB when the size is unknown) otherwise. */
function makeProgress(name: string, option: DownloadOptions['progress']): { update: ProgressCallback; done: () => void } {
  if (typeof option === 'function') return { update: option, done: () => {} };
  if (option === false) return { update: () => {}, done: () => {} };
  const out = process.stderr;
  const tty = Boolean(out.isTTY);
  const start = Date.now();
  let lastDraw = 0;
  let lastStep = -1;
  const line = (received: number, total: number | null): string => {
    const secs = Math.max((Date.now() - start) / 1000, 1e-3);
    const rate = `${formatBytes(received / secs)}/s`;
    if (total === null) return `${name}: ${formatBytes(received)} ${rate}`;
    const frac = Math.min(received / total, 1);
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    if (!tty) return `${name}: ${pct} (${formatBytes(received)} of ${formatBytes(total)})`;
    const width = 30;
    const filled = Math.round(frac * width);
    return `${name} ${pct} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatBytes(received)}/${formatBytes(total)} ${rate}`;
  };
  let last: [number, number | null] = [0, null];
  return {
    update(received, total) {
      last = [received, total];
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 100 && received !== total) return;
        lastDraw = now;
        out.write(`\r${line(received, total)}\x1b[K`);
      } else {
        const step = total === null ? Math.floor(received / (10 * 1024 * 1024)) : Math.floor((received / total) * 10);
        if (step === lastStep) return;
        lastStep = step;
        out.write(`${line(received, total)}\n`);
      }
    },
    done() {
      if (tty) out.write(`\r${line(last[0], last[1])}\x1b[K\n`);
      else if (last[1] === null || lastStep < 10) out.write(`${line(last[0], last[1])}\n`);
    },
  };
}

// Temp files of downloads in flight: removed if the process exits or is interrupted.
const inFlight = new Set<string>();
let hooksInstalled = false;
function removeInFlight(): void {
  for (const p of inFlight) {
    try {
      unlinkSync(p);
    } catch {
      /* already gone */
    }
  }
  inFlight.clear();
}
function onSignal(signal: NodeJS.Signals): void {
  removeInFlight();
  // Restore the default action and re-raise, so the process still ends as it would have.
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  hooksInstalled = false;
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
function track(path: string): void {
  inFlight.add(path);
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', removeInFlight);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
}
function untrack(path: string): void {
  inFlight.delete(path);
  if (inFlight.size === 0 && hooksInstalled) {
    hooksInstalled = false;
    process.removeListener('exit', removeInFlight);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    stream.once('error', reject);
    stream.end(() => resolvePromise());
  });
}

/**
 * Downloads `url` to `destPath`. The body streams to a temporary file in the
 * destination's folder, is hashed on the way, and is renamed to `destPath` only
 * when complete and matching `md5` / `sha256Prefix`; on any failure (network,
 * HTTP status, hash, interrupt) no file is left behind. Redirects are followed;
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured.
 *
 * A network failure throws an Error naming the URL and where to put the file by hand.
 */
export async function download(url: string, destPath: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  checkOptions('download', opts, DOWNLOAD_OPTIONS);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const totalTimeoutMs = opts.totalTimeoutMs ?? null;
  if (!(timeoutMs > 0)) throw new RangeError(`download: timeoutMs must be a positive number of milliseconds, got ${describe(opts.timeoutMs)}`);
  if (totalTimeoutMs !== null && !(totalTimeoutMs > 0)) {
    throw new RangeError(`download: totalTimeoutMs must be a positive number of milliseconds or null, got ${describe(opts.totalTimeoutMs)}`);
  }
  const dest = resolve(destPath);
  const dir = dirname(dest);
  mkdirSync(dir, { recursive: true });
  removeStaleParts(dir);
  // The total limit destroys whichever request is running when it expires; its error becomes the download's.
  let active: http.ClientRequest | undefined;
  let expired: Error | undefined;
  const deadline = totalTimeoutMs === null ? undefined : setTimeout(() => {
    expired = new Error(`the download took longer than ${totalTimeoutMs} ms in all (totalTimeoutMs)`);
    active?.destroy(expired);
  }, totalTimeoutMs);
  const onRequest = (req: http.ClientRequest): void => {
    active = req;
    if (expired) req.destroy(expired);
  };
  try {
    return await fetchTo(url, dest, dir, opts, timeoutMs, onRequest);
  } finally {
    clearTimeout(deadline);
  }
}

const DOWNLOAD_OPTIONS = ['progress', 'md5', 'sha256Prefix', 'timeoutMs', 'totalTimeoutMs', 'proxy', 'ca', 'maxRedirects'] as const;

/** How old a `.part` file must be to count as left behind by a killed process. */
const STALE_PART_MS = 24 * 60 * 60 * 1000;

/**
 * Removes our `.part` files older than a day from `dir`: a process killed mid-download
 * (SIGKILL, power loss) cannot remove its own. Younger ones may belong to a download
 * running now in another process, and are left alone.
 */
function removeStaleParts(dir: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    if (!/^\..+\.\d+\.[0-9a-f]{8}\.part$/.test(name)) continue;
    const path = join(dir, name);
    try {
      if (now - statSync(path).mtimeMs > STALE_PART_MS) unlinkSync(path);
    } catch {
      /* gone already, or not ours to remove */
    }
  }
}

/** The body of {@link download}: follows redirects, streams to a `.part` file, checks and renames it. */
async function fetchTo(
  url: string, dest: string, dir: string, opts: DownloadOptions, timeoutMs: number, onRequest: (req: http.ClientRequest) => void,
): Promise<DownloadResult> {
  const maxRedirects = opts.maxRedirects ?? 10;
  const byHand = `download it by hand (e.g. in a browser) and save it as ${dest}`;

  let current = new URL(url);
  let fetched: Fetched | undefined;
  for (let hop = 0; ; hop++) {
    try {
      fetched = await get(current, opts, timeoutMs, onRequest);
    } catch (e) {
      throw new Error(`download: could not fetch ${current.href}${current.href !== url ? ` (redirected from ${url})` : ''}: ${(e as Error).message}; ${byHand}`, { cause: e });
    }
    const status = fetched.res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status) && fetched.res.headers.location) {
      fetched.res.resume();
      if (hop >= maxRedirects) throw new Error(`download: too many redirects fetching ${url}; ${byHand}`);
      current = new URL(fetched.res.headers.location, current);
      continue;
    }
    if (status < 200 || status >= 300) {
      fetched.res.resume();
      throw new Error(`download: ${current.href} answered HTTP ${status} ${fetched.res.statusMessage ?? ''}`.trimEnd() + `; ${byHand}`);
    }
    break;
  }
  const { res, req, failure } = fetched;
  const lengthHeader = res.headers['content-length'];
  const total = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;

  const tmp = join(dir, `.${basename(dest)}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  track(tmp);
  const md5: Hash = createHash('md5');
  const sha256: Hash = createHash('sha256');
  const bar = makeProgress(basename(dest), opts.progress ?? true);
  let received = 0;
  const out = createWriteStream(tmp);
  try {
    try {
      for await (const chunk of res) {
        const buf = chunk as Buffer;
        received += buf.length;
        md5.update(buf);
        sha256.update(buf);
        if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', r));
        bar.update(received, total);
      }
      if (!res.complete) throw new Error('the connection closed before the end of the file');
      if (total !== null && received !== total) throw new Error(`got ${received} of ${total} bytes`);
    } catch (e) {
      const reason = failure() ?? (e as Error);
      req.destroy();
      throw new Error(`download: fetching ${current.href} failed after ${formatBytes(received)}: ${reason.message}; ${byHand}`, { cause: reason });
    } finally {
      await closeStream(out).catch(() => {});
      res.socket?.destroy(); // connections are not reused: a tunnel must not linger
    }
    bar.done();
    const md5Hex = md5.digest('hex');
    const shaHex = sha256.digest('hex');
    if (opts.md5 && md5Hex.toLowerCase() !== opts.md5.toLowerCase()) {
      throw new Error(`download: MD5 mismatch for ${url}: expected ${opts.md5}, got ${md5Hex}; the file was not kept (a truncated or tampered download, or a changed file upstream)`);
    }
    if (opts.sha256Prefix && !shaHex.startsWith(opts.sha256Prefix.toLowerCase())) {
      throw new Error(`download: SHA-256 mismatch for ${url}: expected a digest starting with ${opts.sha256Prefix}, got ${shaHex}; the file was not kept`);
    }
    renameSync(tmp, dest);
    return { path: dest, bytes: received, md5: md5Hex, sha256: shaHex };
  } finally {
    if (existsSync(tmp)) {
      try {
        unlinkSync(tmp);
      } catch {
        /* best effort */
      }
    }
    untrack(tmp);
  }
}
