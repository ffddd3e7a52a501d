// The live training page (the tutorial's visdom server): node:http only, the
// page from chart.ts with `live: true`, and its records over Server-Sent Events.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderChartHtml } from './chart.js';
import type { MetricsLog, MetricsRecord } from './metricsLog.js';
import { checkOptions } from '../utils/args.js';

/** Options of {@link startLiveServer}. */
export interface LiveServerOptions {
  /** TCP port; 0 (the default) picks a free one (see {@link LiveServer.port}). */
  port?: number;
  /** Interface to listen on. Default `'127.0.0.1'`: training metrics are nobody else's business. */
  host?: string;
  /** Page title. */
  title?: string;
  /** Records logged before the server started (e.g. a resumed run's history). Not with `log`. */
  records?: readonly MetricsRecord[];
  /**
   * Follow a metrics log: its records so far are served, and every record
   * appended from now on is pushed (via `log.onAppend`). Not with `records`.
   * MetricsLog has no way to unsubscribe, so after `close()` the pushes it
   * keeps making are ignored.
   */
  log?: MetricsLog;
  /**
   * Whether the server and its connections keep the Node.js process alive.
   * Default false: a training script exits when training ends even with a
   * browser still attached and `close()` forgotten. Set it to serve a
   * finished run's page until the process is stopped.
   */
  keepProcessAlive?: boolean;
}

/** A running live page; see {@link startLiveServer}. */
export interface LiveServer {
  /** The page's URL, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** The port listened on (the chosen one when `port` was 0). */
  readonly port: number;
  /** Stores a record and sends it to every connected page. Ignored after `close()`. */
  push(record: MetricsRecord): void;
  /** Ends the event streams and the server. Idempotent. */
  close(): Promise<void>;
}

/** A comment line this often keeps proxies and browsers from timing out an idle stream. */
const HEARTBEAT_MS = 15_000;
/** A client this far behind is dropped; its EventSource reconnects and resumes from its Last-Event-ID. */
const MAX_BUFFERED_BYTES = 4 << 20;
/** How long a page's EventSource waits before reconnecting. */
const RETRY_MS = 1000;

/**
 * Serves the live training page:
 * - `GET /`: {@link renderChartHtml} of all records so far, with `live: true`;
 * - `GET /records`: all records so far, as a JSON array;
 * - `GET /events`: Server-Sent Events, one record per message (`data:` is the
 *   record's JSON, `id:` the number of records up to and including it). The
 *   stream replays the records after `Last-Event-ID` (sent by a reconnecting
 *   EventSource) or else after `?since=N`, and without either starts with the
 *   next record pushed.
 *
 * Records come from {@link LiveServer.push} or from `opts.log`. The server
 * never holds the process open unless `keepProcessAlive` is set.
 */
export function startLiveServer(opts: LiveServerOptions = {}): Promise<LiveServer> {
  try {
    checkOptions('startLiveServer()', opts, ['port', 'host', 'title', 'records', 'log', 'keepProcessAlive']);
  } catch (e) {
    return Promise.reject(e);
  }
  if (opts.log && opts.records) {
    return Promise.reject(new TypeError('startLiveServer(): give `records` or `log`, not both'));
  }
  const { port = 0, host = '127.0.0.1', title, keepProcessAlive = false } = opts;
  const records: MetricsRecord[] = [...(opts.log?.records ?? opts.records ?? [])];
  const clients = new Set<ServerResponse>();
  let closing: Promise<void> | null = null;

  const event = (i: number): string => `id: ${i + 1}\ndata: ${JSON.stringify(records[i])}\n\n`;

  const send = (res: ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    res.end(body);
  };

  const events = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const lastId = req.headers['last-event-id'];
    const after = typeof lastId === 'string' ? lastId : url.searchParams.get('since');
    const n = after === null || !/^\d+$/.test(after.trim()) ? records.length : Math.min(Number(after), records.length);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
    });
    req.socket.setNoDelay(true);
    let replay = `retry: ${RETRY_MS}\n\n`;
    for (let i = n; i < records.length; i++) replay += event(i);
    res.write(replay);
    clients.add(res);
    res.on('close', () => clients.delete(res));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    switch (url.pathname) {
      case '/':
        send(res, 200, 'text/html; charset=utf-8', renderChartHtml(records, { title, live: true }));
        return;
      case '/records':
        send(res, 200, 'application/json; charset=utf-8', JSON.stringify(records));
        return;
      case '/events':
        events(req, res, url);
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'Not found\n');
    }
  });
  if (!keepProcessAlive) {
    server.unref();
    server.on('connection', (socket) => socket.unref());
  }

  const heartbeat = setInterval(() => {
    for (const res of clients) res.write(': heartbeat\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  const push = (record: MetricsRecord): void => {
    if (closing) return;
    records.push(record);
    const message = event(records.length - 1);
    for (const res of clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy();
        clients.delete(res);
      } else {
        res.write(message);
      }
    }
  };
  opts.log?.onAppend(push);

  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      clearInterval(heartbeat);
      for (const res of clients) res.end();
      clients.clear();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };

  return new Promise<LiveServer>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = (server.address() as AddressInfo).port;
      // A wildcard address is not one a browser can open.
      const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
      const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${actual}/`;
      resolve({ url, port: actual, push, close });
    });
  }).catch((e: unknown) => {
    clearInterval(heartbeat);
    closing ??= Promise.resolve(); // later pushes from `log` are ignored
    throw e;
  });
}
