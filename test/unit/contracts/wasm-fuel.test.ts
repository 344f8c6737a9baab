import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../consensus/index.js';
import { FUEL, METERED_WASM_SHA256 } from '../../../contracts/sandbox/index.js';
import { ByteReader, ByteWriter, encodeS64, encodeU32, WasmBinaryError } from '../../../contracts/sandbox/wasm-binary.js';
import { bulkChargeCode, countGlobals, instrumentFuel, stepChargeCode, type FuelSchedule } from '../../../contracts/sandbox/wasm-fuel.js';

// Minimal WebAssembly typings (the project's lib settings do not declare the namespace).
interface WasmGlobal {
  value: bigint;
}
interface WasmMemory {
  buffer: ArrayBuffer;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  RuntimeError: new () => Error;
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// --- a tiny assembler ------------------------------------------------------------

const u32 = (n: number): number[] => [...encodeU32(n)];
const vec = (items: number[][]): number[] => [...u32(items.length), ...items.flat()];
const name = (text: string): number[] => vec([...new TextEncoder().encode(text)].map((b) => [b]));
const section = (id: number, content: number[]): number[] => [id, ...u32(content.length), ...content];
const body = (locals: number[][], code: number[]): number[] => {
  const content = [...vec(locals), ...code];
  return [...u32(content.length), ...content];
};
const I32 = 0x7f;
const I64 = 0x7e;
const F64 = 0x7c;
const op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  call: 0x10,
  callIndirect: 0x11,
  drop: 0x1a,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  globalGet: 0x23,
  i32Load: 0x28,
  i32Store: 0x36,
  memorySize: 0x3f,
  i32Const: 0x41,
  i64Const: 0x42,
  f64Const: 0x44,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32WrapI64: 0xa7,
  i32Extend8S: 0xc0,
  fc: 0xfc,
};

/**
 * imports env.tick: (i32) -> i32 (function 0); defines
 * add(a, b), count(n) (a loop of n iterations), calls(n) (n calls of add in a loop),
 * copy(dst, src, len) (memory.copy), fill(dst, value, len) (memory.fill),
 * callHost(x) (calls the import), mix(x) (a mix of immediates, blocks and branches);
 * one page of memory, one mutable i32 global, a table of one function.
 */
function tinyModule(): Uint8Array {
  const types = section(1, vec([
    [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])], // 0: (i32, i32) -> i32
    [0x60, ...vec([[I32]]), ...vec([[I32]])], // 1: (i32) -> i32
    [0x60, ...vec([[I32], [I32], [I32]]), ...vec([])], // 2: (i32, i32, i32) -> ()
  ]));
  const imports = section(2, vec([[...name('env'), ...name('tick'), 0x00, ...u32(1)]]));
  const functions = section(3, vec([[0], [1], [1], [2], [2], [1], [1]])); // functions 1..7
  const table = section(4, vec([[0x70, 0x00, 1]]));
  const memory = section(5, vec([[0x00, 1]]));
  const globals = section(6, vec([[I32, 1, op.i32Const, 7, op.end]]));
  const exported = ['add', 'count', 'calls', 'copy', 'fill', 'callHost', 'mix'].map((n, i) => [...name(n), 0x00, ...u32(i + 1)]);
  const exports = section(7, vec([...exported, [...name('memory'), 0x02, 0], [...name('g'), 0x03, 0]]));
  const elements = section(9, vec([[0x00, op.i32Const, 0, op.end, ...vec([[1]])]])); // table[0] = add
  const { localGet: get, localSet: set, i32Const: k } = op;
  const code = section(10, vec([
    // add
    body([], [get, 0, get, 1, op.i32Add, op.end]),
    // count(n): i = 0; while (i < n) i++; return i
    body([[1, I32]], [op.block, 0x40, op.loop, 0x40, get, 1, get, 0, op.i32GeU, op.brIf, 1, get, 1, k, 1, op.i32Add, set, 1, op.br, 0, op.end, op.end, get, 1, op.end]),
    // calls(n): s = 0; for (i = 0; i < n; i++) s = add(s, 1); return s
    body([[2, I32]], [op.block, 0x40, op.loop, 0x40, get, 1, get, 0, op.i32GeU, op.brIf, 1, get, 2, k, 1, op.call, 1, set, 2, get, 1, k, 1, op.i32Add, set, 1, op.br, 0, op.end, op.end, get, 2, op.end]),
    // copy(dst, src, len)
    body([], [get, 0, get, 1, get, 2, op.fc, 10, 0, 0, op.end]),
    // fill(dst, value, len)
    body([], [get, 0, get, 1, get, 2, op.fc, 11, 0, op.end]),
    // callHost(x) = tick(x)
    body([], [get, 0, op.call, 0, op.end]),
    // mix(x) = (x ? 3 : 9) - 1 + 1 + 1 + 42: immediates the walker must skip exactly,
    // padded LEB128 encodings (kept byte for byte), blocks with results, br_table, if/else,
    // select, sign extension, saturating truncation, memory.size and call_indirect.
    body([[1, I64], [1, F64]], [
      op.i64Const, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, // 2^63 - 1
      set, 1,
      op.f64Const, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // 1.5
      set, 2,
      k, 0x80, 0x80, 0x80, 0x80, 0x00, // i32.const 0, padded to 5 bytes
      get, 0,
      op.i32Store, 2, 0x84, 0x00, // memory[4] = x (offset 4, padded)
      op.block, I32, k, 10, get, 0, op.brTable, ...vec([[0], [0]]), 0, op.end, op.drop,
      op.block, I32, k, 4, op.i32Load, 2, 0, op.end,
      op.if, I32, k, 3, k, 5, get, 0, op.select, op.else, k, 9, op.end,
      get, 1, op.i32WrapI64, op.i32Extend8S, op.i32Add, // + (i8)0xff = -1
      get, 2, op.fc, 2, op.i32Add, // + i32.trunc_sat_f64_s(1.5) = 1
      op.memorySize, 0, op.i32Add, // + 1 page
      k, 20, k, 22, k, 0, op.callIndirect, 0, 0, op.i32Add, // + add(20, 22) through the table
      op.end,
    ]),
  ]));
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...functions, ...table, ...memory, ...globals, ...exports, ...elements, ...code]);
}

// --- reading modules back -------------------------------------------------------

/** Section id and content, in order. */
function sectionsOf(module: Uint8Array): { id: number; content: Uint8Array }[] {
  const reader = new ByteReader(module, 8);
  const out: { id: number; content: Uint8Array }[] = [];
  while (!reader.done) {
    const id = reader.byte();
    const size = reader.u32();
    out.push({ id, content: module.subarray(reader.pos, reader.pos + size) });
    reader.skip(size);
  }
  return out;
}

function contentOf(module: Uint8Array, id: number): Uint8Array {
  const found = sectionsOf(module).find((s) => s.id === id);
  if (!found) throw new Error(`no section ${id}`);
  return found.content;
}

/** Each function body split into its local declarations (as read) and its code. */
function bodiesOf(module: Uint8Array): { locals: [number, number][]; code: Uint8Array }[] {
  const content = contentOf(module, 10);
  const reader = new ByteReader(content);
  const count = reader.u32();
  const bodies: { locals: [number, number][]; code: Uint8Array }[] = [];
  for (let i = 0; i < count; i++) {
    const size = reader.u32();
    const end = reader.pos + size;
    const locals: [number, number][] = [];
    const groups = reader.u32();
    for (let g = 0; g < groups; g++) locals.push([reader.u32(), reader.byte()]);
    bodies.push({ locals, code: content.subarray(reader.pos, end) });
    reader.pos = end;
  }
  return bodies;
}

/** Parameter count of each defined function. */
function paramCountsOf(module: Uint8Array): number[] {
  const types = new ByteReader(contentOf(module, 1));
  const params: number[] = [];
  for (let i = types.u32(); i > 0; i--) {
    types.byte();
    const p = types.u32();
    types.skip(p);
    types.skip(types.u32());
    params.push(p);
  }
  const functions = new ByteReader(contentOf(module, 3));
  return Array.from({ length: functions.u32() }, () => params[functions.u32()]!);
}

function without(bytes: Uint8Array, pattern: Uint8Array): { rest: Uint8Array; found: number } {
  const data = Buffer.from(bytes);
  const parts: Buffer[] = [];
  let found = 0;
  let from = 0;
  for (let at = data.indexOf(pattern, from); at >= 0; at = data.indexOf(pattern, from)) {
    parts.push(data.subarray(from, at));
    from = at + pattern.length;
    found++;
  }
  parts.push(data.subarray(from));
  return { rest: new Uint8Array(Buffer.concat(parts)), found };
}

/**
 * Checks that `metered` is `original` plus fuel code and nothing else: every section
 * but Global, Export and Code byte-identical, and every function body equal to the
 * original once the inserted charges (and the added local) are taken out.
 */
function expectOnlyFuelCodeAdded(original: Uint8Array, metered: Uint8Array, fuelGlobal: number, schedule: FuelSchedule): { steps: number; bulk: number } {
  const before = sectionsOf(original);
  const after = sectionsOf(metered);
  expect(after.map((s) => s.id)).toEqual(before.map((s) => s.id));
  for (let i = 0; i < before.length; i++) {
    if (![6, 7, 10].includes(before[i]!.id)) expect(Buffer.from(after[i]!.content).equals(Buffer.from(before[i]!.content))).toBe(true);
  }
  const params = paramCountsOf(original);
  const originalBodies = bodiesOf(original);
  const meteredBodies = bodiesOf(metered);
  expect(meteredBodies.length).toBe(originalBodies.length);
  const step = stepChargeCode(fuelGlobal, schedule.perStep);
  let steps = 0;
  let bulk = 0;
  for (let i = 0; i < originalBodies.length; i++) {
    const o = originalBodies[i]!;
    const m = meteredBodies[i]!;
    const lengthLocal = params[i]! + o.locals.reduce((sum, [n]) => sum + n, 0);
    const withoutBulk = without(m.code, bulkChargeCode(fuelGlobal, schedule, lengthLocal));
    const withoutSteps = without(withoutBulk.rest, step);
    expect(Buffer.from(withoutSteps.rest).equals(Buffer.from(o.code))).toBe(true);
    expect(m.locals).toEqual(withoutBulk.found > 0 ? [...o.locals, [1, I32]] : o.locals);
    steps += withoutSteps.found;
    bulk += withoutBulk.found;
  }
  return { steps, bulk };
}

// --- running --------------------------------------------------------------------

const SCHEDULE: FuelSchedule = { perStep: 1, bulkByteShift: 5 };
const EXPORT = 'cloister_fuel';

function instrument(module: Uint8Array = tinyModule(), schedule: FuelSchedule = SCHEDULE) {
  return instrumentFuel(module, { schedule, exportName: EXPORT, initialFuel: 1000n });
}

function instantiate(bytes: Uint8Array) {
  const ticks: number[] = [];
  const { exports } = new Wasm.Instance(new Wasm.Module(bytes), { env: { tick: (x: number) => (ticks.push(x), x + 1) } });
  return {
    fn: (fn: string) => exports[fn] as (...args: number[]) => number,
    fuel: exports[EXPORT] as WasmGlobal,
    memory: () => new Uint8Array((exports.memory as WasmMemory).buffer),
    ticks,
  };
}

/** Fuel a call takes (the global starts at `start`). */
function fuelOf(run: ReturnType<typeof instantiate>, fn: string, args: number[], start = 1_000_000n): bigint {
  run.fuel.value = start;
  run.fn(fn)(...args);
  return start - run.fuel.value;
}

describe('instrumentFuel on a hand-made module', () => {
  it('gives a valid module that computes what the original computes, plus an exported fuel global', () => {
    const original = tinyModule();
    const metered = instrument(original);
    expect(Wasm.validate(original)).toBe(true);
    expect(Wasm.validate(metered.bytes)).toBe(true);
    expect(metered).toMatchObject({ fuelGlobal: 1, functions: 7, loops: 2, copies: 1, fills: 1 });
    expect(countGlobals(metered.bytes)).toEqual({ imported: 0, defined: 2 });
    const a = instantiate(original);
    const b = instantiate(metered.bytes);
    expect(b.fuel.value).toBe(1000n);
    for (const run of [a, b]) {
      expect(run.fn('add')(2, 3)).toBe(5);
      expect(run.fn('count')(7)).toBe(7);
      expect(run.fn('calls')(5)).toBe(5);
      expect(run.fn('callHost')(4)).toBe(5);
      expect(run.fn('mix')(1)).toBe(46);
      expect(run.fn('mix')(0)).toBe(52);
    }
    expect(b.ticks).toEqual([4]);
  });

  it('takes a step at every function entry and every loop iteration, none for imported functions', () => {
    const run = instantiate(instrument().bytes);
    expect(fuelOf(run, 'add', [1, 2])).toBe(1n);
    // count(n): the entry, then the loop body n + 1 times (the last one leaves the loop).
    expect(fuelOf(run, 'count', [0])).toBe(2n);
    expect(fuelOf(run, 'count', [10])).toBe(12n);
    expect(fuelOf(run, 'count', [1000])).toBe(1002n);
    // calls(n): the entry, n + 1 loop iterations, n calls of add.
    expect(fuelOf(run, 'calls', [10])).toBe(22n);
    expect(fuelOf(run, 'callHost', [1])).toBe(1n);
    // mix: its entry and the call through the table.
    expect(fuelOf(run, 'mix', [1])).toBe(2n);

    const heavy = instantiate(instrument(tinyModule(), { perStep: 3, bulkByteShift: 5 }).bytes);
    expect(fuelOf(heavy, 'count', [10])).toBe(36n);
  });

  it('traps when the fuel would go below zero, and not before', () => {
    const run = instantiate(instrument().bytes);
    run.fuel.value = 12n;
    expect(run.fn('count')(10)).toBe(10);
    expect(run.fuel.value).toBe(0n);
    run.fuel.value = 11n;
    expect(() => run.fn('count')(10)).toThrow(Wasm.RuntimeError);
    expect(run.fuel.value).toBe(-1n);
    // With the fuel negative, any function traps on entry, before doing anything.
    expect(() => run.fn('add')(1, 1)).toThrow(Wasm.RuntimeError);
    expect(run.fuel.value).toBe(-2n);
    run.fuel.value = 0n;
    expect(() => run.fn('add')(1, 1)).toThrow(Wasm.RuntimeError);
    run.fuel.value = 1n;
    expect(run.fn('add')(1, 1)).toBe(2);
  });

  it('charges memory.copy and memory.fill by length, before any byte moves', () => {
    const run = instantiate(instrument().bytes);
    const memory = run.memory();
    for (let i = 0; i < 1000; i++) memory[i] = i % 251;
    // entry + (one step + one per 32 bytes)
    expect(fuelOf(run, 'copy', [4096, 0, 1000])).toBe(1n + 1n + 31n);
    expect(Buffer.from(memory.subarray(4096, 5096)).equals(Buffer.from(memory.subarray(0, 1000)))).toBe(true);
    expect(fuelOf(run, 'copy', [4096, 0, 0])).toBe(2n);
    expect(fuelOf(run, 'fill', [8192, 7, 64])).toBe(1n + 1n + 2n);
    expect(memory.subarray(8192, 8256).every((b) => b === 7)).toBe(true);
    // One unit short: the copy never happens.
    run.fuel.value = 32n;
    expect(() => run.fn('copy')(20_000, 0, 1000)).toThrow(Wasm.RuntimeError);
    expect(memory.subarray(20_000, 21_000).every((b) => b === 0)).toBe(true);
    run.fuel.value = 3n;
    expect(() => run.fn('fill')(30_000, 9, 64)).toThrow(Wasm.RuntimeError);
    expect(memory[30_000]).toBe(0);
    // A length near 4 GiB is read as unsigned: a huge charge, so a trap, not a wrap-around.
    run.fuel.value = 1_000_000n;
    expect(() => run.fn('fill')(0, 1, -1)).toThrow(Wasm.RuntimeError);
    expect(run.fuel.value).toBe(1_000_000n - 1n - 1n - (2n ** 32n - 1n) / 32n);
    expect(memory[0]).toBe(0);
    const exact = instantiate(instrument(tinyModule(), { perStep: 1, bulkByteShift: 0 }).bytes);
    expect(fuelOf(exact, 'copy', [4096, 0, 1000])).toBe(1002n);
  });

  it('changes nothing but the added global, export, charges and local', () => {
    const original = tinyModule();
    const metered = instrument(original);
    // 7 function entries + 2 loops; 1 copy + 1 fill.
    expect(expectOnlyFuelCodeAdded(original, metered.bytes, 1, SCHEDULE)).toEqual({ steps: 9, bulk: 2 });
    const globals = contentOf(metered.bytes, 6);
    const originalGlobals = contentOf(original, 6);
    expect([...globals.subarray(1, originalGlobals.length)]).toEqual([...originalGlobals.subarray(1)]);
    expect([...globals.subarray(originalGlobals.length)]).toEqual([I64, 1, op.i64Const, ...encodeS64(1000n), op.end]);
    // The padded LEB128 encodings of mix survive byte for byte.
    const mix = bodiesOf(metered.bytes)[6]!.code;
    expect(Buffer.from(mix).includes(Buffer.from([op.i32Const, 0x80, 0x80, 0x80, 0x80, 0x00]))).toBe(true);
    expect(Buffer.from(mix).includes(Buffer.from([op.i32Store, 2, 0x84, 0x00]))).toBe(true);
  });

  it('adds global and export sections to a module that has neither', () => {
    const bare = Uint8Array.from([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, vec([[0x60, ...vec([]), ...vec([[I32]])]])),
      ...section(3, vec([[0]])),
      ...section(10, vec([body([], [op.i32Const, 42, op.end])])),
    ]);
    const metered = instrument(bare);
    expect(Wasm.validate(metered.bytes)).toBe(true);
    expect(sectionsOf(metered.bytes).map((s) => s.id)).toEqual([1, 3, 6, 7, 10]);
    const run = instantiate(metered.bytes);
    expect(run.fuel.value).toBe(1000n);
  });

  it('refuses what it does not understand', () => {
    const code = (instructions: number[]) =>
      Uint8Array.from([
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
        ...section(1, vec([[0x60, ...vec([]), ...vec([])]])),
        ...section(3, vec([[0]])),
        ...section(10, vec([body([], instructions)])),
      ]);
    const codeOf = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (err) {
        return err instanceof WasmBinaryError ? err.code : String(err);
      }
      return undefined;
    };
    expect(codeOf(() => instrument(code([op.end])))).toBeUndefined();
    // A SIMD instruction, a table instruction, an exception-handling block.
    expect(codeOf(() => instrument(code([0xfd, 0x0f, op.end])))).toBe('WASM_UNSUPPORTED');
    expect(codeOf(() => instrument(code([op.fc, 15, 0, op.end])))).toBe('WASM_UNSUPPORTED');
    expect(codeOf(() => instrument(code([0x06, 0x40, op.end, op.end])))).toBe('WASM_UNSUPPORTED');
    // Bytes after the final end, a missing end, a truncated module, a wrong header.
    expect(codeOf(() => instrument(code([op.end, op.end])))).toBe('WASM_MALFORMED');
    expect(codeOf(() => instrument(code([0x01])))).toBe('WASM_MALFORMED');
    expect(codeOf(() => instrument(tinyModule().subarray(0, 200)))).toBe('WASM_MALFORMED');
    expect(codeOf(() => instrument(Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x02, 0, 0, 0])))).toBe('WASM_MALFORMED');
    // An export already named like the fuel global.
    expect(codeOf(() => instrumentFuel(tinyModule(), { schedule: SCHEDULE, exportName: 'add', initialFuel: 0n }))).toBe('WASM_UNSUPPORTED');
    expect(() => instrumentFuel(tinyModule(), { schedule: { perStep: 0, bulkByteShift: 5 }, exportName: EXPORT, initialFuel: 0n })).toThrow(RangeError);
  });
});

describe('instrumentFuel on the pinned QuickJS build', () => {
  const path = createRequire(createRequire(import.meta.url).resolve('quickjs-emscripten')).resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
  const original = new Uint8Array(readFileSync(path));
  const schedule = { perStep: FUEL.PER_STEP, bulkByteShift: FUEL.BULK_BYTE_SHIFT };
  const meter = () => instrumentFuel(original, { schedule, exportName: EXPORT, initialFuel: 2n ** 62n });

  it('gives the pinned metered binary, the same every time', () => {
    const a = meter();
    expect(a).toMatchObject({ fuelGlobal: 1, functions: 1321, loops: 1079, copies: 60, fills: 38 });
    expect(sha256Hex(a.bytes)).toBe(METERED_WASM_SHA256);
    expect(Buffer.from(meter().bytes).equals(Buffer.from(a.bytes))).toBe(true);
    expect(Wasm.validate(a.bytes)).toBe(true);
  });

  it('only adds fuel code', () => {
    const metered = meter();
    expect(expectOnlyFuelCodeAdded(original, metered.bytes, 1, schedule)).toEqual({ steps: 1321 + 1079, bulk: 60 + 38 });
  });
});

describe('LEB128', () => {
  it('encodes minimally and reads back', () => {
    expect([...encodeU32(0)]).toEqual([0]);
    expect([...encodeU32(127)]).toEqual([0x7f]);
    expect([...encodeU32(128)]).toEqual([0x80, 0x01]);
    expect([...encodeU32(2 ** 32 - 1)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => encodeU32(2 ** 32)).toThrow(RangeError);
    expect([...encodeS64(0n)]).toEqual([0]);
    expect([...encodeS64(-1n)]).toEqual([0x7f]);
    expect([...encodeS64(63n)]).toEqual([0x3f]);
    expect([...encodeS64(64n)]).toEqual([0xc0, 0x00]);
    expect([...encodeS64(-64n)]).toEqual([0x40]);
    expect([...encodeS64(-65n)]).toEqual([0xbf, 0x7f]);
    expect(encodeS64(2n ** 63n - 1n).length).toBe(10);
    expect(() => encodeS64(2n ** 63n)).toThrow(RangeError);
    for (const n of [0, 1, 127, 128, 300, 65535, 2 ** 31, 2 ** 32 - 1]) {
      expect(new ByteReader(new ByteWriter().u32(n).finish()).u32()).toBe(n);
    }
    // Padded encodings are read; longer than 5 bytes or above 2^32 - 1 is malformed.
    expect(new ByteReader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x00])).u32()).toBe(0);
    expect(() => new ByteReader(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x00])).u32()).toThrow(WasmBinaryError);
    expect(() => new ByteReader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x1f])).u32()).toThrow(WasmBinaryError);
    expect(() => new ByteReader(Uint8Array.from([0x80])).u32()).toThrow(WasmBinaryError);
  });
});
