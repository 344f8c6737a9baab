import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize, type JsonValue } from '../../../consensus/index.js';
import { parseBundle, type ContractBundle } from '../../../contracts/bundle/index.js';
import { GAS_SHAPES, GAS_SHAPES_MANIFEST, gasShapesCode } from '../../../scripts/bench/gas-shapes.js';
import {
  callBaseCost,
  ContractRuntime,
  GAS,
  type CallContext,
  type CallOutcome,
  type StateAccess,
} from '../../../contracts/sandbox/index.js';

/**
 * Gas must bound the work done inside built-ins and operators, not only the
 * interpreter's own steps: every shape (scripts/bench/gas-shapes.ts, the workloads of
 * `npm run bench -- --gas`) does unbounded native work in a single built-in call or
 * operator, which used to cost one poll point, and must be charged by the size of
 * what it processes, identically on every runtime.
 */

const MAX_GAS_LIMIT = 50_000_000; // consensus maxGasLimit
const READONLY_GAS_LIMIT = 10_000_000; // what chain_call gives a read-only call

const shapes = parseBundle({ manifest: GAS_SHAPES_MANIFEST, code: gasShapesCode() });

function bundleOf(code: string, methods: Record<string, boolean>): ContractBundle {
  const m: Record<string, { readonly: boolean }> = {};
  for (const [name, readonly] of Object.entries(methods)) m[name] = { readonly };
  return parseBundle({ manifest: { name: 'guarded', version: '1.0.0', methods: m }, code });
}

const HAY = "const HAY = 'a'.padEnd(1 << 20, 'a'); const NEEDLE = 'a'.padEnd(1000, 'a') + 'b';\n";

const guarded = bundleOf(
  HAY +
    `export function guarded() { cloister.state.set('before', 1); cloister.emit('Before', null); try { return HAY.indexOf(NEEDLE); } catch (e) { return 'caught'; } }
     export function small() { return HAY.slice(0, 2000).indexOf(NEEDLE); }
     export function write(n) { cloister.state.set('k', HAY.slice(0, n)); return n; }
     export function read() { return cloister.state.get('k').length; }`,
  { guarded: false, small: true, write: false, read: true },
);

/** Records the writes a call makes (and whether any were applied at all). */
class Recorder {
  readonly data = new Map<string, JsonValue>();
  writes = 0;
  readonly access: StateAccess = {
    get: (key) => this.data.get(key) ?? null,
    set: (key, value) => {
      this.writes++;
      this.data.set(key, value);
    },
    delete: (key) => {
      this.writes++;
      this.data.delete(key);
    },
  };
}

const ctx = (readonly: boolean): CallContext => ({ contract: 'gas_shapes', caller: 'ab'.repeat(32), blockHeight: 3, blockTime: 1_700_000_000_000, readonly });

let a: ContractRuntime;
let b: ContractRuntime;

beforeAll(async () => {
  a = await ContractRuntime.create({ maxCachedBundles: 2 });
  b = await ContractRuntime.create({ maxCachedBundles: 1 });
});

afterAll(() => {
  a?.dispose();
  b?.dispose();
});

function query(on: ContractRuntime, bundle: ContractBundle, method: string, args: JsonValue[], gas: number): CallOutcome {
  return on.call(bundle, method, args, ctx(true), gas, new Recorder().access);
}

function runShape(on: ContractRuntime, name: string, n: number, gas: number): CallOutcome {
  return query(on, shapes, 'run', [name, n, 1], gas);
}

describe('built-ins and operators are charged by the size of what they process', () => {
  it('loads the inputs within the set-up gas', () => {
    expect(a.validate(shapes)).toBeNull();
  });

  for (const shape of GAS_SHAPES) {
    it(`${shape.name}: more input costs more gas, a huge input runs out of gas, the same on every runtime`, () => {
      const run = (on: ContractRuntime): CallOutcome[] => [
        runShape(on, shape.name, shape.small, MAX_GAS_LIMIT),
        runShape(on, shape.name, shape.small * 2 || 1, MAX_GAS_LIMIT),
        runShape(on, shape.name, shape.big, shape.limit),
      ];
      const first = run(a);
      expect(run(b)).toEqual(first);
      expect(run(a)).toEqual(first);
      const [small, double, big] = first;
      expect(small!.status).toBe('success');
      if (shape.name !== 'compareWhole') {
        expect(double!.status).toBe('success');
        // At least one step per 32 bytes of extra input: what copying it would cost.
        expect(double!.gasUsed - small!.gasUsed).toBeGreaterThanOrEqual(shape.small / 32);
      }
      expect(big).toEqual({ status: 'failed', result: null, gasUsed: shape.limit, events: [], error: { code: 'OUT_OF_GAS', message: `out of gas (limit ${shape.limit})` } });
    });
  }

  it('ends the worst shapes at the maximum and the read-only gas limits', () => {
    for (const limit of [MAX_GAS_LIMIT, READONLY_GAS_LIMIT]) {
      for (const name of ['indexOf', 'normalize', 'regexp']) {
        const shape = GAS_SHAPES.find((s) => s.name === name)!;
        expect(runShape(a, name, shape.big, limit).error?.code).toBe('OUT_OF_GAS');
      }
    }
  });
});

describe('running out of gas inside the engine', () => {
  it('cannot be caught, keeps no writes or events, and leaves the runtime as it was', () => {
    const before = query(a, guarded, 'small', [], MAX_GAS_LIMIT);
    expect(before.status).toBe('success');
    const recorder = new Recorder();
    const outcome = a.call(guarded, 'guarded', [], ctx(false), 2_000_000, recorder.access);
    expect(outcome).toEqual({ status: 'failed', result: null, gasUsed: 2_000_000, events: [], error: { code: 'OUT_OF_GAS', message: 'out of gas (limit 2000000)' } });
    // (The executor drops the writes of a failed call; the sandbox saw exactly one.)
    expect(recorder.writes).toBe(1);
    expect(query(a, guarded, 'small', [], MAX_GAS_LIMIT)).toEqual(before);
    expect(query(b, guarded, 'small', [], MAX_GAS_LIMIT)).toEqual(before);
  });

  it('happens in top-level code too: the bundle does not load, the slot is reused cleanly', async () => {
    const heavy = bundleOf(HAY + 'const FOUND = HAY.indexOf(NEEDLE);\nexport function f() { return FOUND; }', { f: true });
    const light = bundleOf('let n = 0; export function f() { return ++n; }', { f: false });
    const single = await ContractRuntime.create({ maxCachedBundles: 1 });
    try {
      const failed = query(single, heavy, 'f', [], MAX_GAS_LIMIT);
      expect(failed).toMatchObject({ status: 'failed', error: { code: 'CODE_INVALID', message: 'top-level code exceeded the set-up gas limit of 20000000' } });
      expect(single.validate(heavy)?.message).toBe('top-level code exceeded the set-up gas limit of 20000000');
      const one = single.call(light, 'f', [], ctx(false), 100_000, new Recorder().access);
      expect(one.result).toBe(1);
      expect(single.call(light, 'f', [], ctx(false), 100_000, new Recorder().access)).toEqual(one);
      expect(a.call(light, 'f', [], ctx(false), 100_000, new Recorder().access)).toEqual(one);
    } finally {
      single.dispose();
    }
  });
});

describe('host work a contract can cause', () => {
  it('gets at most a short prefix of an event name or of a fatal error message', () => {
    const huge = bundleOf(HAY + `export function name() { cloister.emit(HAY, null); } export function message() { cloister.state.set('k', { [HAY]: undefined }); }`, {
      name: false,
      message: false,
    });
    expect(a.call(huge, 'name', [], ctx(false), MAX_GAS_LIMIT, new Recorder().access).error).toEqual({
      code: 'INVALID_EVENT',
      message: 'event names must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$',
    });
    const message = a.call(huge, 'message', [], ctx(false), MAX_GAS_LIMIT, new Recorder().access).error;
    expect(message?.code).toBe('VALUE_NOT_ENCODABLE');
    expect(message?.message).toBe('the state value has the property "' + 'a'.repeat(1000 - 34));
  });
});

describe('one budget for the engine and the host API', () => {
  it('fails exactly when the limit is one below what the call needs', () => {
    const needed = a.call(guarded, 'write', [10_000], ctx(false), MAX_GAS_LIMIT, new Recorder().access);
    expect(needed.status).toBe('success');
    expect(a.call(guarded, 'write', [10_000], ctx(false), needed.gasUsed, new Recorder().access)).toEqual(needed);
    expect(a.call(guarded, 'write', [10_000], ctx(false), needed.gasUsed - 1, new Recorder().access).error?.code).toBe('OUT_OF_GAS');
  });

  it('checks a host API charge against what is left when the call is made, before the write', () => {
    const attempt = (on: ContractRuntime, limit: number): { outcome: CallOutcome; writes: number } => {
      const recorder = new Recorder();
      return { outcome: on.call(guarded, 'write', [10_000], ctx(false), limit, recorder.access), writes: recorder.writes };
    };
    // The smallest limit with which the write is made: below it, none is.
    let without = callBaseCost([10_000]);
    let withWrite = MAX_GAS_LIMIT;
    while (withWrite - without > 1) {
      const mid = Math.floor((without + withWrite) / 2);
      if (attempt(a, mid).writes > 0) withWrite = mid;
      else without = mid;
    }
    expect(attempt(a, withWrite - 1)).toMatchObject({ writes: 0, outcome: { error: { code: 'OUT_OF_GAS' } } });
    expect(attempt(b, withWrite - 1).writes).toBe(0);
    expect(attempt(b, withWrite).writes).toBe(1);
    // Getting there includes the write's own charge: key "k" and the value's 10,002 bytes of JSON.
    expect(withWrite - callBaseCost([10_000])).toBeGreaterThan(GAS.STATE_WRITE_BASE + GAS.STATE_WRITE_PER_BYTE * 10_003);
  });

  it('charges a read by size from the same budget', () => {
    const state = new Recorder();
    state.data.set('k', 'x'.repeat(20_000));
    const read = a.call(guarded, 'read', [], ctx(true), MAX_GAS_LIMIT, state.access);
    expect(read.result).toBe(20_000);
    expect(read.gasUsed).toBeGreaterThan(GAS.STATE_READ_BASE + GAS.STATE_READ_PER_BYTE * 20_000);
    expect(a.call(guarded, 'read', [], ctx(true), read.gasUsed - 1, state.access).error?.code).toBe('OUT_OF_GAS');
    expect(b.call(guarded, 'read', [], ctx(true), MAX_GAS_LIMIT, state.access)).toEqual(read);
  });
});

describe('callBaseCost', () => {
  it('is CALL_BASE plus ARGS_PER_BYTE per byte of the canonical arguments', () => {
    expect(callBaseCost([])).toBe(GAS.CALL_BASE + 2 * GAS.ARGS_PER_BYTE);
    const args: JsonValue[] = ['é', { b: 1, a: [true, null] }, -0];
    expect(callBaseCost(args)).toBe(GAS.CALL_BASE + GAS.ARGS_PER_BYTE * Buffer.byteLength(canonicalize(args), 'utf8'));
    expect(() => callBaseCost([1.5])).toThrow();
  });

  it('is what a call is charged before it runs', () => {
    const args: JsonValue[] = ['x'.repeat(100), 7];
    const base = callBaseCost(args);
    const recorder = new Recorder();
    const unknown = a.call(guarded, 'nope', args, ctx(false), MAX_GAS_LIMIT, recorder.access);
    expect(unknown).toMatchObject({ gasUsed: base, error: { code: 'UNKNOWN_METHOD' } });
    expect(a.call(guarded, 'write', args, ctx(false), base - 1, recorder.access)).toMatchObject({
      gasUsed: base - 1,
      error: { code: 'OUT_OF_GAS', message: `gas limit ${base - 1} is below the base cost ${base} of this call` },
    });
    // At exactly the base cost the call starts, with no fuel left for the engine.
    expect(a.call(guarded, 'write', args, ctx(false), base, recorder.access)).toMatchObject({ gasUsed: base, error: { code: 'OUT_OF_GAS', message: `out of gas (limit ${base})` } });
    expect(recorder.writes).toBe(0);
  });
});
