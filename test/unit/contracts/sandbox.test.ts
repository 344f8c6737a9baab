import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, type JsonValue } from '../../../consensus/index.js';
import { ContractError, parseBundle, type ContractBundle } from '../../../contracts/bundle/index.js';
import {
  CALL_LIMITS,
  ContractRuntime,
  FUEL,
  GAS,
  type CallContext,
  type CallOutcome,
  type StateAccess,
} from '../../../contracts/sandbox/index.js';

/** A key-value store with the executor's semantics: writes of a failed call are dropped. */
class Store {
  readonly data = new Map<string, string>();
  writes = 0;

  access(pending: Map<string, string | null>): StateAccess {
    return {
      get: (key) => {
        const text = pending.has(key) ? pending.get(key)! : this.data.get(key);
        return text === undefined || text === null ? null : (JSON.parse(text) as JsonValue);
      },
      set: (key, value) => {
        this.writes++;
        pending.set(key, canonicalize(value));
      },
      delete: (key) => {
        this.writes++;
        pending.set(key, null);
      },
    };
  }

  apply(outcome: CallOutcome, pending: Map<string, string | null>): CallOutcome {
    if (outcome.status === 'success') {
      for (const [key, value] of pending) {
        if (value === null) this.data.delete(key);
        else this.data.set(key, value);
      }
    }
    return outcome;
  }
}

const CALLER = 'ab'.repeat(32);
const ctx = (over: Partial<CallContext> = {}): CallContext => ({
  contract: 'test',
  caller: CALLER,
  blockHeight: 7,
  blockTime: 1_700_000_000_000,
  readonly: false,
  ...over,
});

function bundleOf(code: string, methods: Record<string, boolean>): ContractBundle {
  const m: Record<string, { readonly: boolean }> = {};
  for (const [name, readonly] of Object.entries(methods)) m[name] = { readonly };
  return parseBundle({ manifest: { name: 'test', version: '1.0.0', methods: m }, code });
}

let runtime: ContractRuntime;
const store = new Store();

function call(
  bundle: ContractBundle,
  method: string,
  args: JsonValue[] = [],
  options: { gas?: number; ctx?: Partial<CallContext>; on?: ContractRuntime; state?: Store } = {},
): CallOutcome {
  const target = options.state ?? store;
  const pending = new Map<string, string | null>();
  const outcome = (options.on ?? runtime).call(bundle, method, args, ctx(options.ctx), options.gas ?? 10_000_000, target.access(pending));
  return target.apply(outcome, pending);
}

beforeAll(async () => {
  runtime = await ContractRuntime.create({ maxCachedBundles: 4 });
});

afterAll(() => {
  runtime?.dispose();
});

const basic = bundleOf(
  `
let calls = 0;
export function echo(...args) { return args; }
export function add(a, b) { return a + b; }
export function bump() { calls += 1; globalThis.leak = (globalThis.leak ?? 0) + 1; Array.prototype.extra = calls; return calls; }
export function seen() { return [calls, globalThis.leak ?? null, [].extra ?? null]; }
export function bumpThenThrow() { calls += 100; cloister.state.set('x', 1); cloister.emit('Before', {}); throw new Error('after bump'); }
export function context() { return { contract: cloister.contract, caller: cloister.caller, block: cloister.block, readonly: cloister.readonly }; }
export function nothing() {}
export function put(key, value) { cloister.state.set(key, value); return cloister.state.get(key); }
export function read(key) { return cloister.state.get(key); }
export function remove(key) { cloister.state.delete(key); return cloister.state.get(key); }
export function emit(name, data) { cloister.emit(name, data); return true; }
export function emitMany(n) { for (let i = 0; i < n; i++) cloister.emit('E', { i }); return n; }
export function putSized(key, n) { cloister.state.set(key, 'x'.repeat(n)); return n; }
export function returnSized(n) { return 'x'.repeat(n); }
export function emitSized(n) { cloister.emit('E', 'x'.repeat(n)); return n; }
export function throwValue(kind) {
  if (kind === 'error') throw new Error('bad thing');
  if (kind === 'type') null.x;
  if (kind === 'string') throw 'plain string';
  if (kind === 'object') throw { code: 42 };
  return 'no throw';
}
`,
  {
    echo: false,
    add: false,
    bump: false,
    seen: true,
    bumpThenThrow: false,
    context: true,
    nothing: false,
    put: false,
    read: true,
    remove: false,
    emit: false,
    emitMany: false,
    putSized: false,
    returnSized: true,
    emitSized: false,
    throwValue: false,
  },
);

describe('calls and results', () => {
  it('passes arguments and returns canonical JSON values', () => {
    const args: JsonValue[] = [1, 'two', [3, { four: 4 }], null, true, -0, 9007199254740991];
    const outcome = call(basic, 'echo', args);
    expect(outcome.status).toBe('success');
    expect(outcome.result).toEqual([1, 'two', [3, { four: 4 }], null, true, 0, 9007199254740991]);
    expect(outcome.error).toBeNull();
    expect(outcome.gasUsed).toBeGreaterThanOrEqual(GAS.CALL_BASE);
    expect(call(basic, 'add', [2, 40]).result).toBe(42);
  });

  it('keeps unicode strings intact across the boundary', () => {
    const text = 'é😀\u2028"\\\u0001\u0000 end';
    expect(call(basic, 'echo', [text]).result).toEqual([text]);
    expect(call(basic, 'echo', ['lone \ud800 surrogate', { nested: 'a\u0000b' }]).result).toEqual(['lone \ud800 surrogate', { nested: 'a\u0000b' }]);
    const many = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? i : `s${i}`));
    expect(call(basic, 'echo', many).result).toEqual(many);
  });

  it('returns null for methods without a return value', () => {
    expect(call(basic, 'nothing')).toMatchObject({ status: 'success', result: null });
  });

  it('exposes the call context to the contract', () => {
    expect(call(basic, 'context', [], { ctx: { contract: 'my-contract' } }).result).toEqual({
      contract: 'my-contract',
      caller: CALLER,
      block: { height: 7, time: 1_700_000_000_000 },
      readonly: true, // the manifest marks `context` readonly
    });
  });

  it('rejects methods that are not in the manifest, and init after deployment', () => {
    const withInit = bundleOf('export function init() {} export function get() { return 1 }', { init: false, get: true });
    expect(call(basic, 'nope').error?.code).toBe('UNKNOWN_METHOD');
    expect(call(basic, 'toString').error?.code).toBe('UNKNOWN_METHOD');
    expect(call(withInit, 'init').error?.code).toBe('UNKNOWN_METHOD');
    expect(call(basic, 'nope').gasUsed).toBe(GAS.CALL_BASE + GAS.ARGS_PER_BYTE * 2);
  });

  it('rejects arguments that are not canonical JSON', () => {
    expect(call(basic, 'echo', [1.5]).error?.code).toBe('INVALID_ARGS');
    expect(call(basic, 'echo', [Number.NaN]).error?.code).toBe('INVALID_ARGS');
    expect(call(basic, 'echo', 'x' as unknown as JsonValue[]).error?.code).toBe('INVALID_ARGS');
    expect(call(basic, 'echo', ['x'.repeat(CALL_LIMITS.MAX_ARGS_BYTES)]).error?.code).toBe('INVALID_ARGS');
  });

  it('throws for host mistakes instead of producing an outcome', () => {
    const state = store.access(new Map());
    expect(() => runtime.call(basic, 'nothing', [], ctx(), 0, state)).toThrow(ContractError);
    expect(() => runtime.call(basic, 'nothing', [], ctx(), 1.5, state)).toThrow(/gasLimit/);
    expect(() => runtime.call(basic, 'nothing', [], { ...ctx(), blockHeight: -1 }, 100_000, state)).toThrow(/blockHeight/);
    expect(() => runtime.call(basic, 'nothing', [], { ...ctx(), contract: 'Bad Name' }, 100_000, state)).toThrow(/contract/);
  });
});

describe('failures', () => {
  it('reports a thrown Error as CONTRACT_ERROR with its message and the line and column in contract.js where it was thrown', () => {
    expect(call(basic, 'throwValue', ['error'])).toMatchObject({
      status: 'failed',
      result: null,
      events: [],
      error: { code: 'CONTRACT_ERROR', message: 'bad thing (at contract.js:19:40)' },
    });
    expect(call(basic, 'throwValue', ['type']).error).toEqual({ code: 'CONTRACT_ERROR', message: expect.stringMatching(/^cannot read property 'x' of null \(at contract\.js:20:\d+\)$/) });
    expect(call(basic, 'throwValue', ['string']).error).toEqual({ code: 'CONTRACT_ERROR', message: 'uncaught plain string' });
    expect(call(basic, 'throwValue', ['object']).error?.code).toBe('CONTRACT_ERROR');
  });

  it('drops events and writes of a failed call and charges its gas', () => {
    const local = new Store();
    const outcome = call(basic, 'bumpThenThrow', [], { state: local });
    expect(outcome.status).toBe('failed');
    expect(outcome.events).toEqual([]);
    expect(outcome.gasUsed).toBeGreaterThan(GAS.CALL_BASE);
    expect(local.writes).toBe(1);
    expect(local.data.size).toBe(0);
  });

  it('rethrows what the StateAccess throws, and stays usable', () => {
    const broken: StateAccess = {
      get: () => {
        throw new Error('disk on fire');
      },
      set: () => undefined,
      delete: () => undefined,
    };
    expect(() => runtime.call(basic, 'read', ['k'], ctx(), 1_000_000, broken)).toThrow('disk on fire');
    expect(call(basic, 'add', [1, 2]).result).toBe(3);
  });

  it('is not re-entrant', () => {
    let inner: unknown;
    const reentrant: StateAccess = {
      get: () => {
        try {
          runtime.call(basic, 'nothing', [], ctx(), 1_000_000, reentrant);
        } catch (err) {
          inner = err;
          throw err;
        }
        return null;
      },
      set: () => undefined,
      delete: () => undefined,
    };
    expect(() => runtime.call(basic, 'read', ['k'], ctx(), 1_000_000, reentrant)).toThrow(/re-entrant/);
    expect(inner).toBeInstanceOf(ContractError);
    expect(call(basic, 'add', [2, 2]).result).toBe(4);
  });
});

describe('state and events', () => {
  it('reads, writes and deletes through the StateAccess', () => {
    const local = new Store();
    expect(call(basic, 'put', ['k', { a: [1, 2] }], { state: local }).result).toEqual({ a: [1, 2] });
    expect(local.data.get('k')).toBe('{"a":[1,2]}');
    expect(call(basic, 'read', ['k'], { state: local }).result).toEqual({ a: [1, 2] });
    expect(call(basic, 'put', ['n', 5], { state: local }).result).toBe(5);
    expect(call(basic, 'read', ['missing'], { state: local }).result).toBeNull();
    expect(call(basic, 'remove', ['k'], { state: local }).result).toBeNull();
    expect(local.data.has('k')).toBe(false);
    // set(key, null) deletes
    expect(call(basic, 'put', ['n', null], { state: local }).result).toBeNull();
    expect(local.data.has('n')).toBe(false);
    // falsy values survive the round trip
    for (const value of [0, false, '', [], {}, -5, 'text']) {
      expect(call(basic, 'put', ['v', value], { state: local }).result).toEqual(value);
      expect(call(basic, 'read', ['v'], { state: local }).result).toEqual(value);
    }
  });

  it('returns events in order on success', () => {
    const outcome = call(basic, 'emitMany', [3]);
    expect(outcome.events).toEqual([
      { name: 'E', data: { i: 0 } },
      { name: 'E', data: { i: 1 } },
      { name: 'E', data: { i: 2 } },
    ]);
    const noData = bundleOf(`export function f() { cloister.emit('Named'); }`, { f: false });
    expect(call(noData, 'f').events).toEqual([{ name: 'Named', data: null }]);
  });

  it('enforces key, value and event limits as fatal errors', () => {
    expect(call(basic, 'put', ['', 1]).error?.code).toBe('INVALID_KEY');
    expect(call(basic, 'put', ['a\u0000b', 1]).error?.code).toBe('INVALID_KEY');
    expect(call(basic, 'put', ['é'.repeat(129), 1]).error?.code).toBe('INVALID_KEY'); // 258 bytes
    expect(call(basic, 'put', ['é'.repeat(128), 1]).status).toBe('success'); // 256 bytes
    expect(call(basic, 'read', [7]).error?.code).toBe('INVALID_KEY');
    // A string of n characters is n + 2 bytes of JSON.
    const max = CALL_LIMITS.MAX_VALUE_BYTES;
    expect(call(basic, 'putSized', ['big', max - 1]).error?.code).toBe('VALUE_TOO_LARGE');
    expect(call(basic, 'putSized', ['ok', max - 2]).status).toBe('success');
    expect(call(basic, 'returnSized', [max - 1]).error?.code).toBe('VALUE_TOO_LARGE');
    expect(call(basic, 'returnSized', [max - 2]).status).toBe('success');
    expect(call(basic, 'emitSized', [max - 1]).error?.code).toBe('VALUE_TOO_LARGE');
    expect(call(basic, 'emit', ['bad name', 1]).error?.code).toBe('INVALID_EVENT');
    expect(call(basic, 'emit', [42 as unknown as string, 1]).error?.code).toBe('INVALID_EVENT');
    expect(call(basic, 'emitMany', [CALL_LIMITS.MAX_EVENTS + 1]).error?.code).toBe('LIMIT_EXCEEDED');
    expect(call(basic, 'emitMany', [CALL_LIMITS.MAX_EVENTS]).status).toBe('success');
  });

  it('rejects a lone surrogate in a key', () => {
    const b = bundleOf(`export function f() { cloister.state.set('a\\uD800', 1); }`, { f: false });
    expect(call(b, 'f').error?.code).toBe('INVALID_KEY');
  });

  it('makes API misuse fatal even when the contract catches it', () => {
    const b = bundleOf(
      `export function f() { try { cloister.state.set('k', 1.5); } catch (e) {} return 'survived'; }
       export function g() { try { cloister.state.set('k', 1); } catch (e) {} return 'survived'; }`,
      { f: false, g: true },
    );
    expect(call(b, 'f').error?.code).toBe('VALUE_NOT_ENCODABLE');
    expect(call(b, 'g').error?.code).toBe('READONLY_VIOLATION');
  });

  it('does not allow the host API in top-level code', () => {
    const b = bundleOf(`const v = cloister.state.get('k'); export function f() { return v; }`, { f: true });
    const outcome = call(b, 'f');
    expect(outcome.error?.code).toBe('CODE_INVALID');
    expect(outcome.error?.message).toMatch(/top-level/);
  });
});

describe('read-only calls', () => {
  const ro = bundleOf(
    `export function write() { cloister.state.set('k', 1); return 1; }
     export function del() { cloister.state.delete('k'); return 1; }
     export function ev() { cloister.emit('E', 1); return 1; }
     export function read() { return cloister.state.get('k'); }`,
    { write: true, del: true, ev: true, read: true },
  );
  const rw = bundleOf(`export function write() { cloister.state.set('k', 1); return 1; }`, { write: false });

  it('fail a readonly method that writes, deletes or emits', () => {
    for (const method of ['write', 'del', 'ev']) {
      const outcome = call(ro, method);
      expect(outcome.error?.code).toBe('READONLY_VIOLATION');
      expect(outcome.result).toBeNull();
    }
    expect(call(ro, 'read').status).toBe('success');
  });

  it('fail a writing method when the context is read-only (a query)', () => {
    expect(call(rw, 'write', [], { ctx: { readonly: true } }).error?.code).toBe('READONLY_VIOLATION');
    expect(call(rw, 'write').status).toBe('success');
  });
});

describe('values that are not canonical JSON', () => {
  const b = bundleOf(
    `export function ret(kind) {
       switch (kind) {
         case 'float': return 1.5;
         case 'nan': return NaN;
         case 'inf': return [Infinity];
         case 'big': return 2 ** 53;
         case 'undef-prop': return { a: undefined };
         case 'hole': return [1, , 3];
         case 'map': return new Map();
         case 'date-like': return new (class Point { constructor() { this.x = 1; } })();
         case 'bigint': return 10n;
         case 'fn': return () => 1;
         case 'symbol': return Symbol('s');
         case 'deep': { let v = 1; for (let i = 0; i < 70; i++) v = [v]; return v; }
         case 'ok-deep': { let v = 1; for (let i = 0; i < 64; i++) v = [v]; return v; }
         case 'proto-null': { const o = Object.create(null); o.z = 1; o.a = 2; return o; }
       }
     }
     export async function later() { return 1; }
     export function state(kind) { cloister.state.set('k', kind === 'float' ? 0.1 : undefined); }
     export function event() { cloister.emit('E', { x: NaN }); }`,
    { ret: true, later: true, state: false, event: false },
  );

  it('fail with VALUE_NOT_ENCODABLE', () => {
    for (const kind of ['float', 'nan', 'inf', 'big', 'undef-prop', 'hole', 'map', 'date-like', 'bigint', 'fn', 'symbol', 'deep']) {
      const outcome = call(b, 'ret', [kind]);
      expect(outcome.error?.code, kind).toBe('VALUE_NOT_ENCODABLE');
      expect(outcome.result).toBeNull();
    }
    expect(call(b, 'later').error?.message).toMatch(/Promise/);
    expect(call(b, 'state', ['float']).error?.code).toBe('VALUE_NOT_ENCODABLE');
    expect(call(b, 'state', ['undefined']).error?.code).toBe('VALUE_NOT_ENCODABLE');
    expect(call(b, 'event').error?.code).toBe('VALUE_NOT_ENCODABLE');
  });

  it('accepts plain objects (also without prototype) and 64 levels of nesting', () => {
    expect(call(b, 'ret', ['proto-null']).result).toEqual({ a: 2, z: 1 });
    expect(call(b, 'ret', ['ok-deep']).status).toBe('success');
  });
});

describe('isolation: nothing persists between calls', () => {
  it('resets module bindings, globals and prototypes after every call', () => {
    expect(call(basic, 'bump').result).toBe(1);
    expect(call(basic, 'bump').result).toBe(1);
    expect(call(basic, 'seen').result).toEqual([0, null, null]);
  });

  it('resets them after a failed call too', () => {
    expect(call(basic, 'bumpThenThrow').status).toBe('failed');
    expect(call(basic, 'seen').result).toEqual([0, null, null]);
  });
});

describe('no clock, no randomness, no dynamic code, no host objects', () => {
  const probe = bundleOf(
    `export function probe() {
       const r = {};
       r.date = typeof Date;
       r.random = typeof Math.random;
       r.eval = typeof eval;
       r.globalEval = typeof globalThis.eval;
       try { Function('return 1'); r.fn = 'allowed'; } catch (e) { r.fn = e.message; }
       try { (function () {}).constructor('return 1'); r.ctor = 'allowed'; } catch (e) { r.ctor = e.message; }
       try { (async function () {}).constructor('return 1'); r.asyncCtor = 'allowed'; } catch (e) { r.asyncCtor = e.message; }
       r.globals = Object.getOwnPropertyNames(globalThis).sort();
       r.hostish = ['process', 'require', 'console', 'setTimeout', 'setInterval', 'queueMicrotask', 'performance', 'WebAssembly',
                    'fetch', 'WeakRef', 'FinalizationRegistry', 'SharedArrayBuffer', 'Atomics', 'ArrayBuffer', 'Uint8Array', 'Date']
         .filter((n) => typeof globalThis[n] !== 'undefined');
       r.cloisterFrozen = Object.isFrozen(cloister) && Object.isFrozen(cloister.state);
       r.instanceOfFunction = (() => 1) instanceof Function;
       return r;
     }
     export function tamper() { try { cloister.state.get = () => 5; } catch (e) { return e.constructor.name; } return 'tampered'; }`,
    { probe: true, tamper: true },
  );

  it('exposes only deterministic language built-ins and the cloister API', () => {
    const r = call(probe, 'probe').result as Record<string, JsonValue>;
    expect(r.date).toBe('undefined');
    expect(r.random).toBe('undefined');
    expect(r.eval).toBe('undefined');
    expect(r.globalEval).toBe('undefined');
    expect(r.fn).toMatch(/dynamic code evaluation is disabled/);
    expect(r.ctor).toMatch(/dynamic code evaluation is disabled/);
    expect(r.asyncCtor).toMatch(/dynamic code evaluation is disabled/);
    expect(r.hostish).toEqual([]);
    expect(r.cloisterFrozen).toBe(true);
    expect(r.instanceOfFunction).toBe(true);
    expect(r.globals).toEqual(
      [
        'AggregateError', 'Array', 'BigInt', 'Boolean', 'Error', 'EvalError', 'Function', 'Infinity', 'InternalError',
        'Iterator', 'JSON', 'Map', 'Math', 'NaN', 'Number', 'Object', 'Promise', 'Proxy', 'RangeError', 'ReferenceError',
        'Reflect', 'RegExp', 'Set', 'String', 'Symbol', 'SyntaxError', 'TypeError', 'URIError', 'WeakMap', 'WeakSet',
        'cloister', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'globalThis',
        'isFinite', 'isNaN', 'parseFloat', 'parseInt', 'undefined', 'unescape',
      ].sort(),
    );
    expect(call(probe, 'tamper').result).toBe('TypeError');
  });

  it('refuses imports and top-level await', () => {
    const imports = bundleOf(`import x from 'node:fs'; export function f() { return 1; }`, { f: true });
    expect(call(imports, 'f').error?.code).toBe('CODE_INVALID');
    const tla = bundleOf(`await 1; export function f() { return 1; }`, { f: true });
    expect(call(tla, 'f').error).toEqual({ code: 'CODE_INVALID', message: 'contract.js uses top-level await, which is not supported' });
  });
});

describe('gas', () => {
  const loops = bundleOf(
    `export function spin() { while (true) {} }
     export function loop(n) { let s = 0; for (let i = 0; i < n; i++) s += i; return s; }
     export function count(n) { let s = 0; for (let i = 0; i < n; i++) s += i; }
     export function recurse(n) { return n === 0 ? 0 : 1 + recurse(n - 1); }
     export function writeForever() { for (let i = 0; ; i++) cloister.state.set('k' + i, i); }
     export function catchAll() { for (;;) { try { while (true) {} } catch (e) {} } }`,
    { spin: false, loop: false, count: false, recurse: false, writeForever: false, catchAll: false },
  );

  it('stops an infinite loop with OUT_OF_GAS and charges the whole limit', () => {
    const outcome = call(loops, 'spin', [], { gas: 2_000_000 });
    expect(outcome).toEqual({
      status: 'failed',
      result: null,
      gasUsed: 2_000_000,
      events: [],
      error: { code: 'OUT_OF_GAS', message: 'out of gas (limit 2000000)' },
    });
    // The interrupt is uncatchable.
    expect(call(loops, 'catchAll', [], { gas: 2_000_000 }).error?.code).toBe('OUT_OF_GAS');
  });

  it('counts interpreter work exactly: gas grows linearly with iterations', () => {
    const g = (n: number): number => call(loops, 'count', [n]).gasUsed;
    // Same argument length, same (null) result: only the iterations differ. Each
    // iteration is at least one step of the engine's interpreter loop.
    const d1 = g(2000) - g(1000);
    const d2 = g(3000) - g(2000);
    expect(d1).toBeGreaterThanOrEqual((1000 * FUEL.PER_STEP) / FUEL.PER_GAS);
    expect(d2).toBe(d1);
    expect(g(1000)).toBe(g(1000));
  });

  it('fails exactly when the limit is one below the gas a call needs', () => {
    const needed = call(loops, 'loop', [5000]).gasUsed;
    expect(call(loops, 'loop', [5000], { gas: needed }).status).toBe('success');
    const short = call(loops, 'loop', [5000], { gas: needed - 1 });
    expect(short.error?.code).toBe('OUT_OF_GAS');
    expect(short.gasUsed).toBe(needed - 1);
  });

  it('fails with OUT_OF_GAS when the limit is below the base cost', () => {
    expect(call(loops, 'loop', [1], { gas: 100 })).toMatchObject({ status: 'failed', gasUsed: 100, error: { code: 'OUT_OF_GAS' } });
  });

  it('runs out at the same point every time', () => {
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const local = new Store();
      const outcome = call(loops, 'writeForever', [], { gas: 300_000, state: local });
      expect(outcome.error?.code).toBe('OUT_OF_GAS');
      expect(outcome.gasUsed).toBe(300_000);
      counts.push(local.writes);
    }
    expect(counts[0]).toBeGreaterThan(10);
    expect(new Set(counts).size).toBe(1);
  });

  it('charges state access by size', () => {
    const small = call(basic, 'put', ['k', 'x']).gasUsed;
    const large = call(basic, 'put', ['k', 'x'.repeat(1001)]).gasUsed;
    // 1000 more bytes: written (STATE_WRITE_PER_BYTE), read back (STATE_READ_PER_BYTE), returned and passed in (2 x 2 per byte)
    const perByte = GAS.STATE_WRITE_PER_BYTE + GAS.STATE_READ_PER_BYTE + GAS.RESULT_PER_BYTE + GAS.ARGS_PER_BYTE;
    expect(large - small).toBeGreaterThanOrEqual(1000 * perByte);
  });
});

describe('memory and stack limits', () => {
  // Filling memory is work and costs gas: the growth below copies 64 KiB at a time
  // (memory.copy, cheap per byte) so that memory runs out well within the gas limit.
  const hungry = bundleOf(
    `const chunk = 'y'.repeat(1 << 16);
     export function huge() { return 'x'.repeat(1 << 28).length; }
     export function hugeArray() { return new Array(1e8).fill(0).length; }
     export function grow() { const keep = []; for (;;) keep.push(chunk.slice(keep.length & 1)); }
     export function caught() { try { const keep = []; for (;;) keep.push(chunk.slice(keep.length & 1)); } catch (e) { return e.message; } }
     export function deep() { const f = (n) => f(n + 1) + 1; return f(0); }
     export function deepCaught() { let depth = 0; const f = () => { depth++; f(); }; try { f(); } catch (e) { return depth; } }
     export function small() { return 'ok'; }`,
    { huge: false, hugeArray: false, grow: false, caught: false, deep: false, deepCaught: false, small: true },
  );

  it('fails a huge allocation with OUT_OF_MEMORY and keeps working', () => {
    const outcome = call(hungry, 'huge');
    expect(outcome.status).toBe('failed');
    expect(outcome.error?.code).toBe('OUT_OF_MEMORY');
    expect(call(hungry, 'small').result).toBe('ok');
    expect(call(hungry, 'hugeArray', [], { gas: 50_000_000 }).error?.code).toBe('OUT_OF_MEMORY');
    expect(call(hungry, 'small').result).toBe('ok');
  });

  it('fails gradual growth with OUT_OF_MEMORY at the same point every time', () => {
    const first = call(hungry, 'grow', [], { gas: 50_000_000 });
    expect(first.error?.code).toBe('OUT_OF_MEMORY');
    const second = call(hungry, 'grow', [], { gas: 50_000_000 });
    expect(second).toEqual(first);
    expect(call(hungry, 'small').result).toBe('ok');
    // An out-of-memory error can be caught by the contract.
    expect(call(hungry, 'caught', [], { gas: 50_000_000 }).result).toBe('out of memory');
  });

  it('survives the host stack running out inside the engine', () => {
    const depth = call(hungry, 'deepCaught').result;
    let max = 0;
    const probe = (d: number): void => {
      max = d;
      probe(d + 1);
    };
    try {
      probe(0);
    } catch {
      // expected: the host stack is exhausted
    }
    const seen = new Map<string, number>();
    const note = (what: string): void => void seen.set(what, (seen.get(what) ?? 0) + 1);
    for (let back = 0; back < max; back += Math.max(5, Math.floor(back / 20))) {
      const target = max - back;
      const dive = (d: number): void => {
        if (d < target) {
          dive(d + 1);
          return;
        }
        try {
          const outcome = call(hungry, 'deepCaught');
          note(outcome.result === depth ? 'same result' : `other ${JSON.stringify(outcome)}`);
        } catch (err) {
          note(err instanceof ContractError ? err.code : (err as Error).name);
        }
      };
      try {
        dive(0);
      } catch {
        note('host overflow before the call');
      }
    }
    // Whatever happened, later calls are unaffected (the engine's stack pointer was reset).
    expect(call(hungry, 'deepCaught').result).toBe(depth);
    expect([...seen.keys()].filter((k) => k.startsWith('other'))).toEqual([]);
    // Each attempt either overflowed in the test's own frames, ran normally, or (when the
    // overflow hit inside WebAssembly) threw SANDBOX_FAULT; nothing else.
    expect([...seen.keys()].every((k) => ['same result', 'SANDBOX_FAULT', 'host overflow before the call', 'RangeError'].includes(k))).toBe(true);
    expect(seen.get('same result')).toBeGreaterThan(0);
  });

  it('reports STACK_OVERFLOW for recursion through any kind of call', () => {
    const patterns: Record<string, string> = {
      plain: 'const f = (n) => f(n + 1) + 1; f(0);',
      map: 'const f = (n) => [n].map((x) => f(x + 1))[0]; f(0);',
      sort: 'const f = (n) => { [2, 1].sort(() => f(n + 1)); return 0; }; f(0);',
      replace: 'const f = (n) => "a".replace(/a/, () => f(n + 1)); f(0);',
      reviver: 'const f = (n) => JSON.parse("[1]", (k, v) => (k === "0" ? f(n + 1) : v)); f(0);',
      getter: 'const o = { get x() { return this.x; } }; o.x;',
      proxy: 'const p = new Proxy({}, { get: (t, k) => p[k] }); p.x;',
      toString: 'const o = { toString() { return String(o); } }; String(o);',
      valueOf: 'const o = { valueOf() { return +o; } }; +o;',
      bound: 'let g; const f = function () { return g(); }; g = f.bind(null); g();',
      apply: 'const f = () => Reflect.apply(f, null, []); f();',
      generator: 'function* g() { yield* g(); } [...g()];',
      iterator: 'const it = { [Symbol.iterator]() { return [...it][Symbol.iterator](); } }; [...it];',
      toJSON: 'const o = { toJSON() { return JSON.stringify(o); } }; JSON.stringify(o);',
      instanceOf: 'const C = { [Symbol.hasInstance](v) { return v instanceof C; } }; 1 instanceof C;',
      construct: 'class A { constructor() { new A(); } } new A();',
      spread: 'const f = (...a) => f(...a, 1); f();',
    };
    for (const [name, body] of Object.entries(patterns)) {
      const b = bundleOf(`export function f() { ${body} }`, { f: true });
      expect(call(b, 'f', [], { gas: 200_000_000 }).error?.code, name).toBe('STACK_OVERFLOW');
    }
  });

  it('fails deep recursion with STACK_OVERFLOW at the same depth every time', () => {
    expect(call(hungry, 'deep').error?.code).toBe('STACK_OVERFLOW');
    const depth = call(hungry, 'deepCaught').result;
    expect(typeof depth).toBe('number');
    expect(depth as number).toBeGreaterThan(100);
    expect(call(hungry, 'deepCaught').result).toBe(depth);
    expect(call(hungry, 'small').result).toBe('ok');
  });
});

describe('determinism across runtimes', () => {
  const work = bundleOf(
    `export function work(seed) {
       const m = new Map();
       let x = seed;
       for (let i = 0; i < 2000; i++) { x = (x * 1103515245 + 12345) % 2147483648; m.set('k' + (x % 97), x); }
       const sorted = [...m.entries()].sort((a, b) => a[1] - b[1]).slice(0, 5);
       cloister.state.set('last', x);
       cloister.emit('Worked', { x, first: sorted[0][0] });
       return { x, sorted, text: JSON.stringify(sorted).length, big: (BigInt(x) ** 5n).toString(), re: /k(\\d+)/.exec(sorted[0][0])[1] };
     }
     export function grow() { const keep = []; const chunk = 'y'.repeat(1 << 16); for (;;) keep.push(chunk.slice(keep.length & 1)); }
     export function deep() { let d = 0; const f = () => { d++; f(); }; try { f(); } catch (e) {} return d; }
     export function spin() { for (;;) {} }`,
    { work: false, grow: false, deep: false, spin: false },
  );

  it('gives identical outcomes, gas and failure points on fresh runtimes', async () => {
    const a = await ContractRuntime.create({ maxCachedBundles: 1 });
    const b = await ContractRuntime.create({ maxCachedBundles: 1 });
    try {
      const run = (on: ContractRuntime): CallOutcome[] => [
        call(work, 'work', [12345], { on, state: new Store() }),
        call(work, 'grow', [], { on, state: new Store(), gas: 50_000_000 }),
        call(work, 'deep', [], { on, state: new Store() }),
        call(work, 'spin', [], { on, state: new Store(), gas: 1_234_567 }),
        call(work, 'work', [12345], { on, state: new Store() }),
      ];
      const ra = run(a);
      // Something else first on runtime b: history must not matter.
      call(basic, 'emitMany', [5], { on: b });
      call(basic, 'bumpThenThrow', [], { on: b });
      const rb = run(b);
      expect(rb).toEqual(ra);
      expect(ra[0]!.status).toBe('success');
      expect(ra[0]).toEqual(ra[4]);
      expect(ra[1]!.error?.code).toBe('OUT_OF_MEMORY');
      expect(ra[3]!.error?.code).toBe('OUT_OF_GAS');
      expect(run(runtime)).toEqual(ra); // and on a runtime that has run many other bundles
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});

describe('bundles and caching', () => {
  it('fails calls to a bundle whose code does not load, with CODE_INVALID', () => {
    const syntax = bundleOf('export function f( {', { f: true });
    expect(call(syntax, 'f').error?.code).toBe('CODE_INVALID');
    expect(call(syntax, 'f').error?.message).toMatch(/SyntaxError/);
    const missing = bundleOf('export function f() {}', { f: true, g: true });
    expect(call(missing, 'f').error?.message).toMatch(/does not export a function "g"/);
    const throwing = bundleOf('throw new Error("top"); export function f() {}', { f: true });
    expect(call(throwing, 'f').error?.message).toMatch(/top/);
    // Where: the line and column of a syntax error, and of a throw in the top-level code.
    const onLineFour = bundleOf('export function f() {\n  return 1;\n}\nconst x = 1 +;\n', { f: true });
    expect(runtime.validate(onLineFour)?.message).toMatch(/SyntaxError: .* at contract\.js:4:\d+$/);
    const throwsOnLineTwo = bundleOf('const a = 1;\nnotDefined();\nexport function f() {}', { f: true });
    expect(runtime.validate(throwsOnLineTwo)?.message).toMatch(/ReferenceError: .*notDefined.* at contract\.js:2:\d+$/);
    const spinning = bundleOf('while (true) {} export function f() {}', { f: true });
    expect(call(spinning, 'f').error?.message).toMatch(/set-up gas limit/);
    expect(runtime.validate(spinning)?.code).toBe('CODE_INVALID');
    const loud = bundleOf('throw new Error("x".repeat(100000)); export function f() {}', { f: true });
    expect(call(loud, 'f').error?.message.length).toBeLessThan(1100);
    expect(runtime.validate(basic)).toBeNull();
  });

  it('evicts and reloads bundles when more are used than fit', async () => {
    const small = await ContractRuntime.create({ maxCachedBundles: 1 });
    try {
      const one = bundleOf('let n = 0; export function f() { return ++n; }', { f: false });
      const two = bundleOf('export function f() { return "two"; }', { f: false });
      const results: JsonValue[] = [];
      for (let i = 0; i < 3; i++) {
        results.push(call(one, 'f', [], { on: small }).result, call(two, 'f', [], { on: small }).result);
      }
      expect(results).toEqual([1, 'two', 1, 'two', 1, 'two']);
    } finally {
      small.dispose();
    }
  });

  it('deploys: runs init once, or accepts no arguments without init', () => {
    const withInit = bundleOf(`export function init(v) { cloister.state.set('v', v); return 'ready'; } export function get() { return cloister.state.get('v'); }`, {
      init: false,
      get: true,
    });
    const local = new Store();
    const pending = new Map<string, string | null>();
    const deployed = local.apply(runtime.deploy(withInit, [41], ctx(), 1_000_000, local.access(pending)), pending);
    expect(deployed).toMatchObject({ status: 'success', result: 'ready' });
    expect(call(withInit, 'get', [], { state: local }).result).toBe(41);

    const noInit = bundleOf('export function get() { return 1; }', { get: true });
    expect(runtime.deploy(noInit, [], ctx(), 1_000_000, local.access(new Map()))).toMatchObject({ status: 'success', result: null });
    expect(runtime.deploy(noInit, [1], ctx(), 1_000_000, local.access(new Map())).error?.code).toBe('INVALID_ARGS');
    expect(runtime.deploy(bundleOf('oops(', { get: true }), [], ctx(), 1_000_000, local.access(new Map())).error?.code).toBe('CODE_INVALID');
  });

  it('cannot be used after dispose', async () => {
    const r = await ContractRuntime.create({ maxCachedBundles: 1 });
    expect(call(basic, 'add', [1, 1], { on: r }).result).toBe(2);
    r.dispose();
    expect(() => call(basic, 'add', [1, 1], { on: r })).toThrow(/disposed/);
  });

  it('runs only the pinned engine build', async () => {
    expect(runtime.engineSha256).toMatch(/^[0-9a-f]{64}$/);
    await expect(ContractRuntime.create({ engineSha256: '00'.repeat(32) })).rejects.toMatchObject({ code: 'SANDBOX_UNSUPPORTED' });
  });

  it('rejects bad options', async () => {
    await expect(ContractRuntime.create({ memoryLimitBytes: 1000 })).rejects.toMatchObject({ code: 'CALL_INVALID' });
    await expect(ContractRuntime.create({ maxCachedBundles: 0 })).rejects.toMatchObject({ code: 'CALL_INVALID' });
  });
});
