// Argument checks shared by the public API: TypeScript's types do not protect JS callers, so an
// options object with a misspelt key, or a value of the wrong kind, must be an error that names
// the function, the argument and the value, never a silently ignored setting.

/**
 * A value as an error message shows it: numbers as JS prints them (`NaN`, `-Infinity`), strings
 * quoted with their type (`'3' (string)`, so that `'3'` is not mistaken for `3`), short arrays
 * element by element, other objects by their class.
 */
export function describe(v: unknown, depth = 0): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  switch (typeof v) {
    case 'number':
      return Object.is(v, -0) ? '-0' : String(v);
    case 'bigint':
      return `${v}n`;
    case 'boolean':
      return String(v);
    case 'string':
      return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}' (string)`;
    case 'symbol':
      return v.toString();
    case 'function':
      // A callable object of a class (an nn.Module) reads as one.
      if (!(v instanceof Function)) return `a ${(v as object).constructor?.name ?? 'callable'}`;
      return `a function${v.name ? ` (${v.name})` : ''}`;
  }
  if (Array.isArray(v)) {
    if (depth > 0 || v.length > 8) return `an array of length ${v.length}`;
    return `[${v.map((x) => describe(x, depth + 1)).join(', ')}]`;
  }
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** Levenshtein distance, for "did you mean" hints. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/**
 * Checks an options object: it must be an object (or undefined, when nothing is required) whose
 * keys are all in `allowed`; null is an error, since a default parameter does not replace it. The
 * error names the function, the unknown key, a close match when there is one, and every allowed key.
 */
export function checkOptions(fn: string, opts: unknown, allowed: readonly string[], how: { required?: readonly string[]; what?: string } = {}): void {
  const what = how.what ?? 'options';
  if (opts === undefined) {
    if (how.required?.length)
      throw new TypeError(`${fn}: argument '${what}' must be an object with ${how.required.map((k) => `'${k}'`).join(', ')}, got ${describe(opts)}`);
    return;
  }
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`${fn}: argument '${what}' must be an object with keys ${allowed.map((k) => `'${k}'`).join(', ')}, got ${describe(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (allowed.includes(key)) continue;
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const a of allowed) {
      const d = editDistance(key, a);
      if (d < bestDistance) [best, bestDistance] = [a, d];
    }
    const hint = best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean '${best}'?)` : '';
    const list = allowed.length ? `; allowed: ${allowed.map((k) => `'${k}'`).join(', ')}` : '; it takes no options';
    throw new TypeError(`${fn}: unknown option '${key}'${hint}${list}`);
  }
  for (const key of how.required ?? []) {
    if ((opts as Record<string, unknown>)[key] === undefined) throw new TypeError(`${fn}: option '${key}' is required`);
  }
}

const intRule = (min: number): string => (min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : 'an integer');

/** Throws unless `v` is an integer ≥ `min`. */
export function checkInt(fn: string, what: string, v: unknown, min = -Infinity): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new (typeof v === 'number' ? RangeError : TypeError)(`${fn}: ${what} must be ${intRule(min)}, got ${describe(v)}`);
}

/** Throws unless `v` is an integer ≥ `min` or a pair of them (kernel sizes, strides, paddings). */
export function checkIntPair(fn: string, what: string, v: unknown, min: number, also = ''): void {
  const ok = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= min;
  if (ok(v) || (Array.isArray(v) && v.length === 2 && v.every(ok))) return;
  throw new RangeError(`${fn}: ${what} must be ${intRule(min)} or a pair of them${also}, got ${describe(v)}`);
}

/** Throws unless `v` is one of `allowed`. */
export function checkOneOf<T>(fn: string, what: string, v: unknown, allowed: readonly T[]): asserts v is T {
  if (!allowed.includes(v as T))
    throw new RangeError(`${fn}: ${what} must be one of ${allowed.map((a) => describe(a).replace(/ \(string\)$/, '')).join(', ')}, got ${describe(v)}`);
}

/** Throws unless `v` is a boolean (or undefined, when `optional`). */
export function checkBoolean(fn: string, what: string, v: unknown, optional = true): void {
  if (typeof v === 'boolean' || (optional && v === undefined)) return;
  throw new TypeError(`${fn}: ${what} must be a boolean, got ${describe(v)}`);
}

/** Throws unless `v` is a function. */
export function checkFunction(fn: string, what: string, v: unknown): asserts v is (...args: never[]) => unknown {
  if (typeof v !== 'function') throw new TypeError(`${fn}: argument '${what}' must be a function, got ${describe(v)}`);
}

/**
 * Whether `v` is a plain object (`{ … }` or `Object.create(null)`, from any realm), as opposed to
 * a Tensor, an array, null or another class's instance: how a trailing options object is told
 * apart from a positional argument.
 */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * Python's calling convention for the arguments after a function's leading ones: `args` holds
 * them in the order of `names` (Python's positional order), optionally followed by a plain object
 * that gives the others by name, as Python's keywords (`F.conv2d(x, w, b, { padding: 1 })` for
 * `F.conv2d(x, w, b, padding=1)`). Returns each name's value, `undefined` where not given; a
 * positional `undefined` counts as not given. `T` is the caller's type of the result: the
 * values are not checked here. Like Python, it refuses an unknown name (with a
 * close match, through {@link checkOptions}), a name given both positionally and by name, more
 * positional arguments than there are names (`keywordOnly` names count only by name), and a
 * missing `required` one.
 */
export function parseArgs<T extends object = Record<string, unknown>>(
  fn: string,
  args: readonly unknown[],
  names: readonly string[],
  how: { keywordOnly?: readonly string[]; required?: readonly string[] } = {},
): T {
  const last = args.length ? args[args.length - 1] : undefined;
  const named = isPlainObject(last) ? last : undefined;
  const positional = named === undefined ? args : args.slice(0, -1);
  const keywordOnly = how.keywordOnly ?? [];
  const order = names.filter((n) => !keywordOnly.includes(n));
  if (positional.length > order.length) {
    const list = order.length ? `at most ${order.length} (${order.map((k) => `'${k}'`).join(', ')})` : 'none';
    const rest = keywordOnly.length ? `; ${keywordOnly.map((k) => `'${k}'`).join(', ')} only by name, in an options object` : '';
    throw new TypeError(`${fn}: too many positional arguments: ${positional.length} given where it takes ${list}${rest}`);
  }
  checkOptions(fn, named, names);
  const out: Record<string, unknown> = named === undefined ? {} : { ...named };
  positional.forEach((v, i) => {
    if (v === undefined) return;
    if (out[order[i]] !== undefined) throw new TypeError(`${fn}: got multiple values for argument '${order[i]}' (positionally and in the options)`);
    out[order[i]] = v;
  });
  for (const key of how.required ?? []) {
    if (out[key] === undefined) throw new TypeError(`${fn}: missing required argument '${key}'`);
  }
  return out as T;
}
