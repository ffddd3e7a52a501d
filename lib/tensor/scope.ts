// Scoped cleanup. Native memory is invisible to the JS garbage collector, so
// tensors are freed deterministically: `dispose()`, or `tidy(fn)`, which frees
// every tensor created inside fn that fn does not return. Scopes follow async
// continuations (AsyncLocalStorage), so `await` inside tidy is safe.
//
// Tensors that live outside every tidy scope are also registered with a
// FinalizationRegistry, the safety net for a forgotten dispose(). Registering
// costs ~200 ns and V8 keeps the bookkeeping until the event loop turns, so it
// is deferred to a microtask (or a batch of 4096): a tensor disposed before then
// never touches the registry. Nothing is lost by waiting: the registry's
// callbacks could not run before the event loop turns anyway. Tensors inside a
// tidy scope are never registered; tidy frees them.
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Handle, native } from '../native.js';
import { checkFunction, describe } from '../utils/args.js';

/** What a scope needs of a tensor. */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

interface Netted extends Disposable {
  readonly _h: Handle;
  _netted: boolean;
  _disposed: boolean;
}

const safetyNet = new FinalizationRegistry<Handle>((h) => native.dispose(h));
const pending: Netted[] = [];
const BATCH = 4096;

function flushPending(): void {
  for (const t of pending) {
    if (!t._disposed && !t._netted) {
      t._netted = true;
      safetyNet.register(t, t._h, t);
    }
  }
  pending.length = 0;
}

function net(t: Disposable): void {
  const n = t as Netted;
  if (n._h === undefined || n._netted || n._disposed) return;
  if (pending.length === 0) queueMicrotask(flushPending);
  pending.push(n);
  if (pending.length >= BATCH) flushPending();
}

/** Called by dispose(): a freed tensor leaves nothing for the safety net. */
export function untrack(t: Netted): void {
  t._disposed = true;
  if (t._netted) {
    t._netted = false;
    safetyNet.unregister(t);
  }
}

interface Scope {
  readonly tracked: Disposable[];
  readonly kept: Set<Disposable>;
  readonly parent: Scope | undefined;
}

const storage = new AsyncLocalStorage<Scope>();
// Scopes not yet closed (async ones included). While none is open, tensors skip
// the AsyncLocalStorage lookup, a measurable share of a tiny op's cost.
let openScopes = 0;

/** Called by every Tensor constructor. */
export function track(t: Disposable): void {
  const scope = openScopes > 0 ? storage.getStore() : undefined;
  if (scope) scope.tracked.push(t);
  else net(t);
}

// Every tensor ever passed to keep(): a module call never frees one of these
// (a WeakSet, so it holds nothing alive).
const keptEver = new WeakSet<Disposable>();

/**
 * Marks `t` to survive the enclosing `tidy` scopes and module calls (a call
 * frees every tensor created inside it that it does not return or store on a
 * module); returns it.
 */
export function keep<T extends Disposable>(t: T): T {
  if (t === null || typeof t !== 'object' || typeof (t as Partial<Disposable>).dispose !== 'function') {
    throw new TypeError(`keep(): argument 'tensor' must be a Tensor (or another object with dispose()), got ${describe(t)}`);
  }
  keptEver.add(t);
  for (let s = openScopes > 0 ? storage.getStore() : undefined; s; s = s.parent) s.kept.add(t);
  return t;
}

/** @internal Whether `t` was ever passed to {@link keep}. */
export function isKept(t: Disposable): boolean {
  return keptEver.has(t);
}

function collect(value: unknown, into: Set<Disposable>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ('dispose' in value && 'isDisposed' in value) {
    into.add(value as Disposable);
    return;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      collect(k, into, seen);
      collect(v, into, seen);
    }
  } else if (Array.isArray(value) || value instanceof Set) {
    for (const v of value) collect(v, into, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into, seen);
  }
}

function close(scope: Scope, result: unknown, held?: () => Set<Disposable>): void {
  openScopes--;
  const survivors = new Set<Disposable>();
  collect(result, survivors);
  let heldNow: Set<Disposable> | undefined;
  const isHeld = (t: Disposable): boolean => {
    if (!held) return false;
    heldNow ??= held();
    return heldNow.has(t);
  };
  for (const t of scope.tracked) {
    if (survivors.has(t) || scope.kept.has(t) || isHeld(t)) {
      if (scope.parent) scope.parent.tracked.push(t);
      else net(t);
    } else if (!t.isDisposed) {
      t.dispose();
    }
  }
  scope.tracked.length = 0;
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those it
 * returns (found in arrays, Maps, Sets and plain objects) and those passed to
 * {@link keep}. Scopes nest; returned tensors move to the enclosing scope.
 * An async `fn` is awaited before cleanup.
 */
export function tidy<T>(fn: () => T): T {
  checkFunction('tidy()', 'fn', fn);
  return runScope(fn);
}

/**
 * @internal The memory scope of one outermost module call (`Module`'s call
 * path): {@link tidy}, where the tensors `held()` lists (those stored on the
 * module) survive as well.
 */
export function moduleScope<T>(fn: () => T, held: () => Set<Disposable>): T {
  return runScope(fn, held);
}

function runScope<T>(fn: () => T, held?: () => Set<Disposable>): T {
  const scope: Scope = { tracked: [], kept: new Set(), parent: openScopes > 0 ? storage.getStore() : undefined };
  openScopes++;
  let result: T;
  try {
    result = storage.run(scope, fn);
  } catch (e) {
    close(scope, undefined, held);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        close(scope, value, held);
        return value;
      },
      (e) => {
        close(scope, undefined, held);
        throw e;
      },
    ) as T;
  }
  close(scope, result, held);
  return result;
}

/** Disposes every tensor found in `values` (arrays, Maps, plain objects). */
export function dispose(...values: unknown[]): void {
  const found = new Set<Disposable>();
  collect(values, found);
  for (const t of found) t.dispose();
}

/**
 * Native tensor memory held by live handles in this thread: the number of
 * handles and the bytes of the distinct storages they keep alive (views of one
 * storage count once). Exact, not sampled.
 */
export function memory(): { tensors: number; bytes: number } {
  return native.memory();
}
