// Separate "hosts" for the distributed tests (not a test file itself): each host is a network
// namespace with its loopback and one veth interface with its own 10.x address; two hosts are
// joined by one veth pair, more by a bridge in a namespace of its own. Every link is shaped as
// ordinary Ethernet: tbf at 1 Gbit/s, plus netem's delay where the kernel has netem. Nothing is
// routed out of the namespaces, so the traffic stays between the hosts a test made. Needs root
// (CAP_NET_ADMIN) and iproute2's `ip` and `tc`: netnsUnavailable() says why not, for a skip.
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process';

/** One host: a network namespace and its interface. */
export interface Host {
  /** The namespace's name (`ip netns exec <ns> …`). */
  ns: string;
  /** Its interface's name, e.g. for GLOO_SOCKET_IFNAME. */
  ifname: string;
  /** Its address, e.g. 10.213.0.1. */
  addr: string;
  /** Starts `command ...args` inside the namespace; `env` is added to this process's, with GLOO_SOCKET_IFNAME set to the host's interface. */
  spawn(command: string, args: readonly string[], opts?: SpawnOptions & { env?: Record<string, string> }): ChildProcess;
  /** Runs `command ...args` inside the namespace to its end; throws with its stderr if it fails. */
  run(command: string, args: readonly string[]): string;
  /** Bytes sent and received on the host's interface so far (its /sys/class/net statistics). */
  bytes(): { tx: number; rx: number };
  /** Takes the host's interface down (the host becomes unreachable, its processes keep running) or up again. */
  link(up: boolean): void;
}

/** Hosts made by {@link makeHosts}. */
export interface Network {
  hosts: Host[];
  /** The shaping applied to each host's interface, in words: 'tbf 1gbit' or 'netem delay 1ms + tbf 1gbit'. */
  shaping: string;
  /** Kills what still runs inside the namespaces and deletes them (and so their interfaces). Idempotent. */
  destroy(): void;
}

const networks = new Set<Network>();
let exitHook = false;
let serial = 0;

function ip(args: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

function must(args: readonly string[]): string {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')} failed: ${r.err}`);
  return r.out;
}

/** Why namespaces cannot be made here (null when they can): not root, no CAP_NET_ADMIN, no iproute2. */
export function netnsUnavailable(): string | null {
  probe ??= (() => {
    const name = `vtprobe${process.pid}`;
    if (spawnSync('ip', ['-V']).error) return "iproute2's ip is not installed (or not on PATH)";
    const r = ip(['netns', 'add', name]);
    if (!r.ok) return `cannot make a network namespace (ip netns add: ${r.err}); these tests need root (CAP_NET_ADMIN) and iproute2`;
    ip(['netns', 'del', name]);
    const tc = spawnSync('tc', ['-V'], { encoding: 'utf8' });
    if (tc.status !== 0) return `iproute2's tc is not installed (${tc.error?.message ?? tc.stderr})`;
    return null;
  })();
  return probe;
}
let probe: string | null | undefined;

/**
 * Makes `n` (≥ 2) hosts with addresses 10.213.0.1 … 10.213.0.n/24, loopback up, each
 * interface shaped to `rate` (default 1gbit) with netem's `delayMs` (default 1) where the kernel
 * has netem. Names are unique to this process and call. Destroyed by `destroy()`, and on this
 * process's exit whatever happens.
 */
export function makeHosts(n: number, opts: { rate?: string; delayMs?: number } = {}): Network {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`makeHosts(): n must be an integer ≥ 2, got ${n}`);
  const rate = opts.rate ?? '1gbit';
  const delayMs = opts.delayMs ?? 1;
  // Interface names have at most 15 characters: vt + pid in base 36 + call + host.
  const id = `vt${process.pid.toString(36)}${(serial++).toString(36)}`;
  const namespaces: string[] = [];
  const net: Network = {
    hosts: [],
    shaping: '',
    destroy() {
      for (const ns of namespaces.splice(0)) {
        // Processes left inside (a hung rank) would keep the namespace alive after its name is gone.
        for (const pid of ip(['netns', 'pids', ns]).out.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {}
        }
        ip(['netns', 'del', ns]);
      }
      networks.delete(net);
    },
  };
  networks.add(net);
  if (!exitHook) {
    exitHook = true;
    const destroyAll = () => {
      for (const x of [...networks]) x.destroy();
    };
    process.on('exit', destroyAll);
    // A signal ends Node without 'exit': clean up, then die of the signal as it would have.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        destroyAll();
        process.kill(process.pid, signal);
      });
    }
  }
  try {
    const bridge = n > 2 ? `${id}br` : null;
    if (bridge) {
      must(['netns', 'add', bridge]);
      namespaces.push(bridge);
      must(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge']);
      must(['-n', bridge, 'link', 'set', 'br0', 'up']);
    }
    let netem: boolean | null = null;
    for (let i = 0; i < n; i++) {
      const ns = `${id}h${i}`;
      const ifname = `${id}e${i}`;
      const addr = `10.213.0.${i + 1}`;
      must(['netns', 'add', ns]);
      namespaces.push(ns);
      must(['-n', ns, 'link', 'set', 'lo', 'up']);
      if (bridge) {
        // This host's end in its namespace, the other end on the bridge.
        must(['link', 'add', ifname, 'netns', ns, 'type', 'veth', 'peer', 'name', `${id}p${i}`, 'netns', bridge]);
        must(['-n', bridge, 'link', 'set', `${id}p${i}`, 'master', 'br0']);
        must(['-n', bridge, 'link', 'set', `${id}p${i}`, 'up']);
      } else if (i === 1) {
        must(['link', 'add', `${id}e0`, 'netns', `${id}h0`, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
      }
      net.hosts.push(host(ns, ifname, addr));
    }
    for (const h of net.hosts) {
      must(['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.ifname]);
      must(['-n', h.ns, 'link', 'set', h.ifname, 'up']);
      // netem (delay) at the root and tbf (rate) under it; tbf alone where the kernel has no netem.
      const tc = (args: string[]) => ip(['netns', 'exec', h.ns, 'tc', 'qdisc', 'add', 'dev', h.ifname, ...args]);
      netem ??= tc(['root', 'handle', '1:', 'netem', 'delay', `${delayMs}ms`]).ok;
      if (netem && h !== net.hosts[0] && !tc(['root', 'handle', '1:', 'netem', 'delay', `${delayMs}ms`]).ok) throw new Error(`tc netem failed on ${h.ns}`);
      // burst: above a 64 KiB GSO packet and rate / HZ; latency: how long a packet may queue.
      const tbf = tc([...(netem ? ['parent', '1:'] : ['root']), 'handle', '2:', 'tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms']);
      if (!tbf.ok) throw new Error(`tc tbf failed on ${h.ns}: ${tbf.err}`);
    }
    net.shaping = `${netem ? `netem delay ${delayMs}ms + ` : ''}tbf ${rate}`;
    return net;
  } catch (e) {
    net.destroy();
    throw e;
  }
}

function host(ns: string, ifname: string, addr: string): Host {
  const stat = (name: string): number => Number(must(['netns', 'exec', ns, 'cat', `/sys/class/net/${ifname}/statistics/${name}`]).trim());
  return {
    ns,
    ifname,
    addr,
    spawn: (command, args, opts = {}) =>
      spawn('ip', ['netns', 'exec', ns, command, ...args], { ...opts, env: { ...process.env, GLOO_SOCKET_IFNAME: ifname, ...opts.env } }),
    run: (command, args) => must(['netns', 'exec', ns, command, ...args]),
    bytes: () => ({ tx: stat('tx_bytes'), rx: stat('rx_bytes') }),
    link: (up) => void must(['-n', ns, 'link', 'set', ifname, up ? 'up' : 'down']),
  };
}
