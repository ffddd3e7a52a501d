// Callable instances. PyTorch's modules are called as functions (`model(x)`);
// here an instance becomes one by being a function object that carries its
// class's prototype, so `instanceof`, methods and getters are the class's.

/**
 * A function that runs `call(self, args)` and is otherwise an object of the
 * class whose prototype is `proto`; a constructor returns it in place of `this`.
 * A function's own `length` and `name` are removed, so the class's (or its
 * instance's) take effect.
 */
export function callableInstance<T extends object>(proto: object, call: (self: T, args: unknown[]) => unknown): T {
  const self = ((...args: unknown[]) => call(self, args)) as unknown as T;
  delete (self as { length?: number }).length;
  delete (self as { name?: string }).name;
  Object.setPrototypeOf(self, proto);
  return self;
}
