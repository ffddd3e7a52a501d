// torch.hub's checkpoint cache: the same folder, file names and rules, so a cache
// PyTorch already filled is reused, and one filled here serves PyTorch too.
//   $TORCH_HOME/hub/checkpoints/<file name from the URL>
//   TORCH_HOME defaults to $XDG_CACHE_HOME/torch, else ~/.cache/torch.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { type LoadOptions, load } from '../serialization/load.js';
import { Tensor } from '../tensor/tensor.js';
import { type DownloadOptions, type Plan, fetching, runAsync, runSync } from '../utils/download.js';
import { checkOptions, describe } from '../utils/args.js';

let hubDir: string | null = null;

/** `torch.hub.get_dir()`: `$TORCH_HOME/hub`, unless set with {@link setDir}. */
export function getDir(): string {
  if (hubDir !== null) return hubDir;
  const expand = (p: string) => (p.startsWith('~') ? join(homedir(), p.slice(1)) : p);
  const torchHome = process.env.TORCH_HOME ?? join(process.env.XDG_CACHE_HOME ?? '~/.cache', 'torch');
  return join(expand(torchHome), 'hub');
}

/** `torch.hub.set_dir()`: `~` is expanded when the folder is used, as in PyTorch. */
export function setDir(dir: string): void {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`hub.setDir: dir must be a non-empty string, got ${describe(dir)}`);
  hubDir = dir.startsWith('~') ? join(homedir(), dir.slice(1)) : dir;
}

export interface HubOptions {
  /** Folder of the cache (default `getDir()/checkpoints`). */
  modelDir?: string;
  /** Check that the file's SHA-256 starts with the hex digits after the last `-` of its name (`vgg16-397923af.pth`). */
  checkHash?: boolean;
  /** Progress bar on stderr while downloading (default true). */
  progress?: boolean;
  /** Name in the cache instead of the URL's last path segment. */
  fileName?: string;
  mapLocation?: LoadOptions['mapLocation'];
  /** Give up when no byte arrives for this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Give up when the whole download takes longer than this (default `null`: no limit). */
  totalTimeoutMs?: number | null;
}

const HASH_REGEX = /-([a-f0-9]*)\./;
const HUB_OPTIONS = ['modelDir', 'checkHash', 'progress', 'fileName', 'mapLocation', 'timeoutMs', 'totalTimeoutMs'] as const;

/** Where `url` is (or will be) cached. */
export function cachedFile(url: string, opts: Pick<HubOptions, 'modelDir' | 'fileName'> = {}): string {
  const dir = opts.modelDir ?? join(getDir(), 'checkpoints');
  return join(dir, opts.fileName ?? basename(new URL(url).pathname));
}

function hashPrefix(file: string, checkHash: boolean | undefined): string | undefined {
  if (!checkHash) return undefined;
  return HASH_REGEX.exec(basename(file))?.[1] || undefined;
}

/** What the downloader needs of the hub's options. */
function downloadOptions(file: string, opts: HubOptions): DownloadOptions {
  return {
    progress: opts.progress ?? true,
    sha256Prefix: hashPrefix(file, opts.checkHash),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    ...(opts.totalTimeoutMs === undefined ? {} : { totalTimeoutMs: opts.totalTimeoutMs }),
  };
}

/** The cache's one core, for the blocking and the non-blocking API alike: the path of `url` in the cache, downloaded if missing. */
function* toCache(fn: string, url: string, opts: HubOptions): Plan<string> {
  checkOptions(fn, opts, HUB_OPTIONS);
  const file = cachedFile(url, opts);
  if (!existsSync(file)) {
    process.stderr.write(`Downloading: "${url}" to ${file}\n`);
    yield* fetching(url, file, downloadOptions(file, opts));
  }
  return file;
}

/**
 * Downloads `url` into the cache unless it is there already (torch.hub checks the
 * hash only when downloading, so a cached file is trusted); returns its path.
 */
export function downloadToCache(url: string, opts: HubOptions = {}): Promise<string> {
  return runAsync(toCache('hub.downloadToCache', url, opts));
}

/**
 * The same as {@link downloadToCache}, blocking: the download runs in a child
 * Node process (its progress bar on this stderr), so synchronous APIs such as
 * `vgg16({ weights })` can fetch on first use, as torchvision does.
 */
export function downloadToCacheSync(url: string, opts: HubOptions = {}): string {
  return runSync(toCache('hub.downloadToCacheSync', url, opts));
}

function asStateDict(file: string, url: string, opts: HubOptions): Map<string, Tensor> {
  const obj = load(file, { mapLocation: opts.mapLocation });
  if (obj instanceof Map && [...obj.values()].every((v) => v instanceof Tensor)) return obj as Map<string, Tensor>;
  throw new Error(`${url} does not hold a state dict (a mapping of names to tensors)`);
}

/** `torch.hub.load_state_dict_from_url`: downloads once into the cache, then loads with {@link load}. */
export async function loadStateDictFromUrl(url: string, opts: HubOptions = {}): Promise<Map<string, Tensor>> {
  return asStateDict(await runAsync(toCache('hub.loadStateDictFromUrl', url, opts)), url, opts);
}

/** Blocking {@link loadStateDictFromUrl}. */
export function loadStateDictFromUrlSync(url: string, opts: HubOptions = {}): Map<string, Tensor> {
  return asStateDict(runSync(toCache('hub.loadStateDictFromUrlSync', url, opts)), url, opts);
}
