// Shared by the distributed tests (not a test file itself).
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { PYTHON } from './helpers.js';

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * What a Python rank's environment needs on this machine's torch. From 2.4 Python's TCPStore
 * asks for the libuv server by default, and a libtorch built without libuv (Debian's) refuses it:
 * a user sets USE_LIBUV=0 there, as PyTorch's own error says. vgg-torch decides this by itself.
 */
export function pythonRankEnv(): Record<string, string> {
  rankEnv ??= probeRankEnv();
  return rankEnv;
}
let rankEnv: Record<string, string> | undefined;
function probeRankEnv(): Record<string, string> {
  const probe = spawnSync(
    PYTHON,
    [
      '-W',
      'ignore',
      '-c',
      `
import datetime, torch.distributed as d
try:
    d.TCPStore('127.0.0.1', 0, 1, True, timeout=datetime.timedelta(seconds=5), use_libuv=True)
    print('libuv')
except TypeError:
    print('no option')   # before 2.2: no use_libuv at all
except RuntimeError as e:
    print('no libuv' if 'libuv' in str(e) else 'error: ' + str(e))
`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return probe.stdout.trim() === 'no libuv' ? { USE_LIBUV: '0' } : {};
}
