// Python values that have no JS twin.

/**
 * Python's `collections.OrderedDict`: a `Map` (so it keeps insertion order and
 * any kind of key) that `save` writes back as an OrderedDict. `load` returns
 * one for every OrderedDict in a file; Python `dict`s come back as plain Maps.
 */
export class OrderedDict<K = unknown, V = unknown> extends Map<K, V> {
  /**
   * The instance attributes pickled with the dict (its `__dict__`), such as the
   * `_metadata` PyTorch attaches to state dicts. `save` writes them back.
   */
  declare readonly attributes: Map<string, unknown>;

  constructor(entries?: Iterable<readonly [K, V]> | null) {
    super(entries);
    // Not enumerable: printing and spreading show the dict, as in Python.
    Object.defineProperty(this, 'attributes', { value: new Map(), enumerable: false });
  }
}

/** A Python tuple as `load` returns it: a frozen array. `save` writes frozen arrays as tuples. */
export type Tuple<T = unknown> = readonly T[];
