// Python's default warning filter prints a given warning once per code location,
// so PyTorch's scheduler warnings appear once per process; these do the same.
const warned = new Set<string>();

/** Emits `message` as a UserWarning the first time `key` (default: the message) is seen. */
export function warnOnce(message: string, key = message): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(message, 'UserWarning');
}

/** @internal forgets which warnings were printed (for tests). */
export function resetWarnings(): void {
  warned.clear();
}
