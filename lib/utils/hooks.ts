// RemovableHandle (torch/utils/hooks.py): what every register*Hook returns.

let nextId = 0;

/**
 * A handle on a registered hook (`torch.utils.hooks.RemovableHandle`):
 * `remove()` unregisters it; removing twice is harmless.
 */
export class RemovableHandle {
  /** A number unique to this registration, as PyTorch's `handle.id`. */
  readonly id = nextId++;
  private _remove: (() => void) | null;

  constructor(remove: () => void) {
    this._remove = remove;
  }

  remove(): void {
    const r = this._remove;
    this._remove = null;
    r?.();
  }
}
