// The one downloader, for datasets and the torch.hub weight cache: streams to a
// temporary file beside the destination, hashes while writing (MD5 as torchvision's
// datasets, a SHA-256 prefix as torch.hub's check_hash), and renames into place only
// once the hash matches, so a destination path either holds the whole, verified file
// or nothing. Proxies (HTTP(S)_PROXY, NO_PROXY) are honoured with node:http/https
// alone: absolute-form requests for http://, CONNECT tunnels for https://.
// download() does not block; downloadSync() runs the same download in a child
// process (downloadMain.ts) and waits for it. Cores that serve a blocking and a
// non-blocking API alike are written once, as a Plan run by runSync or runAsync.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  type WriteStream,
} from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import net, { type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
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
  const raw = url.protocol === 'https:' ? (proxyEnv('HTTPS_PROXY') ?? proxyEnv('ALL_PROXY')) : (proxyEnv('HTTP_PROXY') ?? proxyEnv('ALL_PROXY'));
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
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(proxy.port || 80),
      path: url.href,
      headers: { ...headers, Host: url.host, ...proxyAuthHeader(proxy) },
      agent: false,
    };
  } else if (proxy && isHttps) {
    // TLS to the origin inside a CONNECT tunnel; with createConnection and no agent, the request uses this socket.
    const socket = await connectTunnel(proxy, hostname, port, timeoutMs);
    const servername = net.isIP(hostname) ? undefined : hostname;
    options = {
      host: hostname,
      port,
      path: url.pathname + url.search,
      headers,
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
  const { timeoutMs, totalTimeoutMs } = checkDownloadOptions('download', opts);
  const dest = resolve(destPath);
  const dir = dirname(dest);
  mkdirSync(dir, { recursive: true });
  removeStaleParts(dir);
  // The total limit destroys whichever request is running when it expires; its error becomes the download's.
  let active: http.ClientRequest | undefined;
  let expired: Error | undefined;
  const deadline =
    totalTimeoutMs === null
      ? undefined
      : setTimeout(() => {
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

/**
 * {@link download}, blocking: the same download runs in a child Node process (its
 * progress bar on this stderr) while this one waits, so synchronous APIs such as
 * `vgg16({ weights })` and `new CIFAR10({ download: true })` can fetch on first use,
 * as torchvision does. Takes the same options, except that `progress` is a boolean
 * (a callback cannot reach the child); throws the same errors.
 */
export function downloadSync(url: string, destPath: string, opts: DownloadOptions = {}): DownloadResult {
  checkDownloadOptions('downloadSync', opts);
  if (typeof opts.progress === 'function')
    throw new TypeError('downloadSync: progress must be a boolean; a callback cannot reach the child process that downloads (use download())');
  const dest = resolve(destPath);
  // From TypeScript sources (tests, tsx) the child needs tsx; the published build is plain JS, downloadMain.js beside this chunk.
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  const entry = fileURLToPath(new URL(fromSource ? './downloadMain.ts' : './downloadMain.js', here));
  const work = mkdtempSync(join(tmpdir(), 'vgg-torch-fetch-'));
  const resultFile = join(work, 'result.json');
  try {
    // The job travels as JSON: CA certificates as PEM text.
    const ca = opts.ca === undefined ? undefined : [opts.ca].flat().map((c) => c.toString());
    const job: DownloadJob = { url, dest, options: { ...opts, ca }, resultFile };
    const r = spawnSync(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), entry, JSON.stringify(job)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const outcome = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as DownloadOutcome) : null;
    if (outcome && 'ok' in outcome) return outcome.ok;
    throw new Error(
      outcome?.error ?? `download: fetching ${url} failed (the downloader exited with ${r.status ?? r.signal}); download it by hand and save it as ${dest}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What {@link downloadSync} hands its child (downloadMain.ts), and what the child writes back. */
export interface DownloadJob {
  url: string;
  dest: string;
  options: DownloadOptions;
  resultFile: string;
}
export type DownloadOutcome = { ok: DownloadResult } | { error: string };

/** Checks the options of {@link download} and {@link downloadSync}; returns the timeouts with their defaults. */
function checkDownloadOptions(fn: string, opts: DownloadOptions): { timeoutMs: number; totalTimeoutMs: number | null } {
  checkOptions(fn, opts, DOWNLOAD_OPTIONS);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const totalTimeoutMs = opts.totalTimeoutMs ?? null;
  if (!(timeoutMs > 0)) throw new RangeError(`${fn}: timeoutMs must be a positive number of milliseconds, got ${describe(opts.timeoutMs)}`);
  if (totalTimeoutMs !== null && !(totalTimeoutMs > 0)) {
    throw new RangeError(`${fn}: totalTimeoutMs must be a positive number of milliseconds or null, got ${describe(opts.totalTimeoutMs)}`);
  }
  return { timeoutMs, totalTimeoutMs };
}

/**
 * Something done in either a blocking or a non-blocking way: a download, a hash,
 * an extraction. A core shared by a blocking API and a non-blocking one is written
 * once, as a generator (a {@link Plan}) that yields its effects; {@link runSync}
 * performs them with `sync`, {@link runAsync} with `async`.
 */
export interface Effect<T> {
  sync(): T;
  async(): Promise<T>;
}

/** A core written once for a blocking and a non-blocking API: `const r = yield* perform(effect)` inside. */
export type Plan<R> = Generator<Effect<unknown>, R, unknown>;

/** Performs `effect` the way the plan is being run, and gives its result (or throws its error) back to the plan. */
export function* perform<T>(effect: Effect<T>): Plan<T> {
  return (yield effect) as T;
}

/** {@link download} or {@link downloadSync}, as the plan is run. */
export function fetching(url: string, destPath: string, opts: DownloadOptions = {}): Plan<DownloadResult> {
  return perform({ sync: () => downloadSync(url, destPath, opts), async: () => download(url, destPath, opts) });
}

/** Runs `plan`, blocking: every effect is performed with its `sync` form. */
export function runSync<R>(plan: Plan<R>): R {
  for (let step = plan.next(); ; ) {
    if (step.done) return step.value;
    let result: unknown;
    try {
      result = step.value.sync();
    } catch (e) {
      step = plan.throw(e);
      continue;
    }
    step = plan.next(result);
  }
}

/** Runs `plan` without blocking: every effect is performed with its `async` form. */
export async function runAsync<R>(plan: Plan<R>): Promise<R> {
  for (let step = plan.next(); ; ) {
    if (step.done) return step.value;
    let result: unknown;
    try {
      result = await step.value.async();
    } catch (e) {
      step = plan.throw(e);
      continue;
    }
    step = plan.next(result);
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
  url: string,
  dest: string,
  dir: string,
  opts: DownloadOptions,
  timeoutMs: number,
  onRequest: (req: http.ClientRequest) => void,
): Promise<DownloadResult> {
  const maxRedirects = opts.maxRedirects ?? 10;
  const byHand = `download it by hand (e.g. in a browser) and save it as ${dest}`;

  let current = new URL(url);
  let fetched: Fetched | undefined;
  for (let hop = 0; ; hop++) {
    try {
      fetched = await get(current, opts, timeoutMs, onRequest);
    } catch (e) {
      throw new Error(
        `download: could not fetch ${current.href}${current.href !== url ? ` (redirected from ${url})` : ''}: ${(e as Error).message}; ${byHand}`,
        { cause: e },
      );
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
      const answer = `download: ${current.href} answered HTTP ${status} ${fetched.res.statusMessage ?? ''}`.trimEnd();
      throw new Error(`${answer}; ${byHand}`);
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
      throw new Error(
        `download: MD5 mismatch for ${url}: expected ${opts.md5}, got ${md5Hex}; the file was not kept (a truncated or tampered download, or a changed file upstream)`,
      );
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
