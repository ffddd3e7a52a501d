// torch.ops.aten: any operator registered with libtorch's dispatcher, by name
// and overload, read from the running registry (so private `_` ops and ops the
// generated API skips are reachable too). Arguments follow the schema: Tensor
// methods' `self` is the first argument, as in Python.
import { native } from '../native.js';
import { fromSchema, invoke, type Overload, type Schema } from './dispatch.js';

let registry: Map<string, Map<string, Schema>> | undefined;
function schemas(name: string): Map<string, Schema> | undefined {
  if (registry === undefined) {
    // One listing of the registry on first use; the overloads are converted lazily below.
    registry = new Map();
    for (const s of (native as unknown as { atenSchemas(): Schema[] }).atenSchemas()) {
      let m = registry.get(s[0]);
      if (m === undefined) {
        m = new Map();
        registry.set(s[0], m);
      }
      m.set(s[1], s);
    }
  }
  return registry.get(name);
}

function overloadOf(name: string, overload: string, s: Schema): Overload {
  const ov = fromSchema(s, false);
  if (typeof ov === 'string') throw new TypeError(`ops.aten.${name}.${overload || 'default'}: cannot be called from JS: ${ov}`);
  return ov;
}

/** A callable operator overload: `ops.aten.add.Tensor(a, b, { alpha: 2 })`. */
export type OpOverload = (...args: any[]) => any;
/** All overloads of one operator; calling it picks the overload from the arguments, as Python's OpOverloadPacket. */
export type OpOverloadPacket = OpOverload & { readonly [overload: string]: OpOverload };

const packets = new Map<string, OpOverloadPacket>();
function packet(name: string): OpOverloadPacket | undefined {
  const cached = packets.get(name);
  if (cached) return cached;
  const table = schemas(name);
  if (table === undefined) return undefined;
  let all: Overload[] | undefined;
  const call = (...args: unknown[]) => {
    all ??= [...table.values()].flatMap((s) => {
      const o = fromSchema(s, false);
      return typeof o === 'string' ? [] : [o];
    });
    return invoke(`ops.aten.${name}`, all, undefined, args);
  };
  const members = new Map<string, OpOverload>();
  const p = new Proxy(call, {
    get(target, key) {
      if (typeof key !== 'string') return Reflect.get(target, key);
      const v = key === 'default' ? '' : key;
      const s = table.get(v);
      if (s === undefined) {
        if (key === 'name' || key === 'length') return Reflect.get(target, key);
        throw new TypeError(`ops.aten.${name} has no overload '${key}' (it has: ${[...table.keys()].map((k) => k || 'default').join(', ')})`);
      }
      let f = members.get(v);
      if (f === undefined) {
        let ovs: Overload[] | undefined;
        f = (...args: unknown[]) => {
          ovs ??= [overloadOf(name, key, s)];
          return invoke(`ops.aten.${name}.${key}`, ovs, undefined, args);
        };
        members.set(v, f);
      }
      return f;
    },
  }) as OpOverloadPacket;
  packets.set(name, p);
  return p;
}

/**
 * `torch.ops`: the dispatcher's operators. `ops.aten.<name>.<overload>(…)`
 * calls one overload (`default` names the unnamed one); `ops.aten.<name>(…)`
 * picks the overload from the arguments. Results are Tensors (or arrays of
 * them, or plain values); an in-place op returns the tensor it changed.
 */
export const ops: { readonly aten: { readonly [name: string]: OpOverloadPacket } } = {
  aten: new Proxy({} as { readonly [name: string]: OpOverloadPacket }, {
    get(_, key) {
      if (typeof key !== 'string') return undefined;
      const p = packet(key);
      if (p === undefined) throw new TypeError(`ops.aten has no operator '${key}' in libtorch ${native.torchVersion()}`);
      return p;
    },
  }),
};
