/**
 * The QuickJS WebAssembly engine underneath the sandbox, and the tricks that make
 * it deterministic.
 *
 * Each sandbox "slot" is its own WebAssembly instance of the pinned QuickJS build
 * (quickjs-emscripten 0.32.0, release-sync variant) with a FIXED-SIZE linear
 * memory (initial = maximum, so it never grows). A slot holds one bundle: after
 * the bundle's module has been evaluated, the writable parts of linear memory
 * (static data + bss, and the heap up to the allocator's break) are copied into a
 * "ready image". Before every call the image is copied back. So every call starts
 * from byte-for-byte the same memory: same heap layout, same garbage-collector
 * thresholds, same interrupt counter, same module bindings. That is what makes
 * gas, the out-of-memory point and the stack-overflow point identical on every
 * node and every run, which QuickJS alone does not guarantee when a runtime is reused.
 *
 * Why a fixed memory rather than QuickJS's setMemoryLimit: built with Emscripten,
 * QuickJS cannot see allocation sizes (its malloc_usable_size is 0 there), so its
 * memory limit bounds single allocations and the number of allocations, not bytes
 * (quickjs-emscripten issues #255 / #271). A full linear memory makes malloc fail,
 * which QuickJS turns into a catchable InternalError 'out of memory'; the host
 * process is never at risk.
 *
 * To restore images cheaply and meter exactly, the engine needs four facts about
 * the build's memory layout. They are found at start-up by experiment and then
 * verified (see calibrate()); if anything does not match, create() fails with
 * SANDBOX_UNSUPPORTED instead of running non-deterministically. The binary
 * itself is pinned by SHA-256, before and after the fuel instrumentation that
 * meters the engine's own work (engine-build.ts, wasm-fuel.ts).
 *
 * Fuel: the metered build has one more global, an i64 the engine decrements as it
 * works and that traps (WebAssembly `unreachable`) when it goes below zero. The host
 * sets it to the call's remaining budget right before a contract runs and back to
 * UNMETERED_FUEL whenever the host itself runs the engine. A fuel trap can strike
 * anywhere inside QuickJS, so afterwards the instance is reset exactly like after an
 * engine fault (memory image restored, stack pointer reset) before any engine code
 * runs again; while the fuel stays negative every engine function traps on entry,
 * so nothing can run on the half-updated heap in the meantime.
 */
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  RELEASE_SYNC,
  type QuickJSContext,
  type QuickJSWASMModule,
} from 'quickjs-emscripten';
import { ContractError } from '../bundle/errors.js';
import { FUEL_EXPORT, loadMeteredBuild, UNMETERED_FUEL } from './engine-build.js';
import { FUEL } from './gas.js';
import { utcFields } from './utc-calendar.js';

// Minimal WebAssembly typings: the project compiles against lib ES2023 and
// @types/node 20, neither of which declares the WebAssembly namespace.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
export type WasmModule = object;
type WasmExports = Record<string, unknown>;
interface WasmGlobal {
  value: bigint;
}
interface WasmInstanceObject {
  readonly exports: WasmExports;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
  Instance: new (module: WasmModule, imports: object) => WasmInstanceObject;
  compile(bytes: Uint8Array): Promise<WasmModule>;
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
/** Linear memory besides the per-call heap budget: static data, the 5 MiB C stack, the ready heap. */
export const FIXED_MEMORY_BYTES = 8 * 1024 * 1024;

/** Where things live in linear memory; the same for every instance of one build. */
export interface EngineLayout {
  /** Stack pointer between calls (top of the C stack); the heap starts here. */
  stackHigh: number;
  /** [0, dataEnd) holds static data and bss, restored with every image. */
  dataEnd: number;
  /** Address of the allocator's break pointer (the current end of the heap). */
  sbrkAddr: number;
  /** Offset of JSContext.interrupt_counter inside a JSContext. */
  counterOffset: number;
}

/** A copy of the writable parts of linear memory. */
export interface MemoryImage {
  data: Uint8Array;
  heap: Uint8Array;
  /** Heap end (break) when the image was taken; the heap copy covers [stackHigh, top). */
  top: number;
}

/** The parts of the Emscripten module object we use (public Emscripten runtime methods). */
interface EmModule {
  _malloc(size: number): number;
  _free(ptr: number): void;
  callbacks: {
    callFunction: (asyncify: unknown, ctx: number, thisPtr: number, argc: number, argv: number, fnId: number) => number;
    shouldInterrupt: (asyncify: unknown, rt: number) => number;
  };
}

/** The FFI functions of quickjs-emscripten we call directly (typed in @jitl/quickjs-ffi-types). */
interface Ffi {
  QTS_ArgvGetJSValueConstPointer(argv: number, index: number): number;
  QTS_GetString(ctx: number, value: number): number;
  QTS_FreeCString(ctx: number, str: number): void;
  QTS_NewString(ctx: number, str: number): number;
  QTS_NewFloat64(ctx: number, num: number): number;
  QTS_GetFloat64(ctx: number, value: number): number;
  QTS_Call(ctx: number, fn: number, thisValue: number, argc: number, argv: number): number;
  QTS_ResolveException(ctx: number, value: number): number;
  QTS_FreeValuePointer(ctx: number, value: number): void;
  QTS_GetUndefined(): number;
  QTS_GetTrue(): number;
  QTS_GetFalse(): number;
  QTS_GetNull(): number;
}

/** Handlers a slot installs on its instance. */
export interface HostHooks {
  /** A host function created with QuickJSContext.newFunction was called; return a JSValue* or 0. */
  onCall(fnId: number, argc: number, argv: number): number;
  /** QuickJS polled the interrupt handler; return true to interrupt (uncatchably). */
  onInterrupt(): boolean;
}

const NO_HOOKS: HostHooks = { onCall: () => 0, onInterrupt: () => false };

function fail(message: string): never {
  throw new ContractError('SANDBOX_UNSUPPORTED', `QuickJS engine self-check failed: ${message}`);
}

/** One WebAssembly instance of QuickJS with fixed memory. */
export class WasmInstance {
  hooks: HostHooks = NO_HOOKS;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly em: EmModule;
  private readonly fuelGlobal: WasmGlobal;

  private constructor(
    readonly qjs: QuickJSWASMModule,
    readonly memory: WasmMemory,
    private readonly exports: WasmExports,
  ) {
    this.u8 = new Uint8Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
    this.em = (qjs as unknown as { module: EmModule }).module;
    if (typeof this.em?._malloc !== 'function' || typeof this.em.callbacks !== 'object') {
      fail('unexpected quickjs-emscripten module shape');
    }
    if (typeof exports.Oa !== 'function' || typeof exports.Ma !== 'function' || typeof exports.Na !== 'function') {
      fail('the stack exports are missing');
    }
    const fuel = exports[FUEL_EXPORT] as WasmGlobal | undefined;
    if (typeof fuel !== 'object' || fuel === null || typeof fuel.value !== 'bigint') fail('the fuel global is missing');
    this.fuelGlobal = fuel;
    // Route C -> host calls straight to the slot, bypassing quickjs-emscripten's generic
    // (generator- and handle-based) dispatch, which costs ~12 us per call; ours costs ~2 us.
    this.em.callbacks.callFunction = (_asyncify, _ctx, _this, argc, argv, fnId) => this.hooks.onCall(fnId, argc, argv);
    this.em.callbacks.shouldInterrupt = () => {
      try {
        return this.hooks.onInterrupt() ? 1 : 0;
      } catch {
        return 1;
      }
    };
  }

  static async create(compiled: WasmModule, pages: number): Promise<WasmInstance> {
    const memory = new Wasm.Memory({ initial: pages, maximum: pages });
    let exports: WasmExports | undefined;
    const qjs = await newQuickJSWASMModuleFromVariant(
      newVariant(RELEASE_SYNC, {
        wasmMemory: memory as never,
        emscriptenModule: {
          instantiateWasm(imports: object, onSuccess: (instance: WasmInstanceObject) => void) {
            hostIndependentImports(imports);
            const instance = new Wasm.Instance(compiled, imports);
            exports = instance.exports;
            onSuccess(instance);
            return instance.exports;
          },
        },
      }),
    );
    if (!exports) fail('instantiateWasm was not used');
    return new WasmInstance(qjs, memory, exports);
  }

  /**
   * Emscripten's stackSave / stackRestore / stackAlloc exports. In this build they
   * are exported under the minified names Oa / Ma / Na (see the Emscripten glue,
   * `ta=b.Oa; ua=b.Ma; Y=b.Na`); their behaviour is verified in calibrate().
   */
  stackSave(): number {
    return (this.exports.Oa as () => number)();
  }
  stackRestore(sp: number): void {
    (this.exports.Ma as (sp: number) => void)(sp);
  }
  stackAlloc(size: number): number {
    return (this.exports.Na as (size: number) => number)(size);
  }

  /** The fuel left (negative after the engine ran out and trapped). */
  fuel(): number {
    return Number(this.fuelGlobal.value);
  }

  /** Lets the engine run on `fuel` (at most 2^53 - 1) until unmeter() or a trap. */
  meter(fuel: number): void {
    this.fuelGlobal.value = BigInt(fuel);
  }

  /** Host work from here on: the engine runs on UNMETERED_FUEL. */
  unmeter(): void {
    this.fuelGlobal.value = UNMETERED_FUEL;
  }

  capture(layout: EngineLayout): MemoryImage {
    const top = this.i32[layout.sbrkAddr >> 2]!;
    return {
      data: this.u8.slice(0, layout.dataEnd),
      heap: this.u8.slice(layout.stackHigh, top),
      top,
    };
  }

  /**
   * Makes writable memory equal to `image` again: static data, the heap, and zeros
   * above the image's heap end up to `highWater` (the highest heap end seen since)
   * or the current heap end. Memory above the heap end is never read by the
   * allocator or QuickJS before being written, so clearing it is defence in depth.
   * The C stack below stackHigh is not restored: it holds no live data between calls.
   */
  restore(layout: EngineLayout, image: MemoryImage, highWater: number): void {
    const top = Math.max(this.i32[layout.sbrkAddr >> 2]!, highWater);
    this.u8.set(image.data, 0);
    this.u8.set(image.heap, layout.stackHigh);
    if (top > image.top) this.u8.fill(0, image.top, Math.min(top, this.u8.length));
  }

  heapTop(layout: EngineLayout): number {
    return this.i32[layout.sbrkAddr >> 2]!;
  }
}

/**
 * Imports of the Emscripten glue that would let the host machine into the
 * engine, replaced by host-independent ones (this build's minified glue names
 * them by letter in module `a`; each is recognised by its source before it is
 * replaced, and start-up fails if one is not where this build has it).
 *
 * - `k`, emscripten_resize_heap: the memory never grows (initial = maximum), but
 *   the allocator asks for more whenever an allocation fails, and the glue tries
 *   WebAssembly.Memory.grow three times, catching the RangeError each time:
 *   microseconds of host time no engine step covers, which a contract could repeat
 *   by catching out-of-memory in a loop. Refused at once instead.
 * - `e`, `f`, environ_get / environ_sizes_get: the glue's environment holds the
 *   host program's path (`_`) and, on Node 21 and later, its language (`LANG`
 *   from navigator.language). libc copies it into the heap at start, so the
 *   heap's layout, and with it every allocation and the steps each one takes,
 *   would depend on where and under which Node version a node runs: a chain
 *   split. The engine sees an empty environment instead.
 * - `n`, `m`, tzset / localtime_r: the host's time zone, written into memory; UTC instead.
 * - `p`, emscripten_date_now: the host's clock (QuickJS reads it when it creates a
 *   context, e.g. to seed Math.random); a constant 0 instead. Contracts have no clock.
 * - `j`, the timer import (setitimer): it would run engine code from a host timer,
 *   between calls; refused instead.
 */
function hostIndependentImports(imports: object): void {
  const env = (imports as { a?: Record<string, unknown> }).a;
  if (!env) fail('the glue has no import module "a"');
  const replace = (name: string, looksLike: RegExp, what: string, by: (...args: number[]) => number): void => {
    const original = env[name];
    if (typeof original !== 'function' || !looksLike.test(String(original))) fail(`the ${what} import is not where this build has it`);
    env[name] = by;
  };
  const i32 = (): Int32Array => new Int32Array((env.a as WasmMemory).buffer);
  const u8 = (): Uint8Array => new Uint8Array((env.a as WasmMemory).buffer);
  replace('k', /\.grow\(/, 'heap-resize', () => 0);
  replace('e', /for\(\w+ of \w+\(\)\)/, 'environ_get', () => 0);
  replace('f', /\.length/, 'environ_sizes_get', (countPtr, sizePtr) => {
    i32()[countPtr! >> 2] = 0;
    i32()[sizePtr! >> 2] = 0;
    return 0;
  });
  replace('n', /getTimezoneOffset[\s\S]*UTC/, 'tzset', (timezonePtr, daylightPtr, stdName, dstName) => {
    i32()[timezonePtr! >> 2] = 0;
    i32()[daylightPtr! >> 2] = 0;
    for (const at of [stdName!, dstName!]) u8().set([0x55, 0x54, 0x43, 0], at); // "UTC\0"
    return 0;
  });
  replace('m', /getTimezoneOffset[\s\S]*getSeconds|getSeconds[\s\S]*getTimezoneOffset/, 'localtime_r', (time, tmPtr) => {
    // The time given, in UTC, by arithmetic: nothing of the host's clock or time zone.
    const f = utcFields(Number(time));
    const fields = f ? [f.seconds, f.minutes, f.hours, f.day, f.month, f.year - 1900, f.weekday, f.yearDay, 0, 0] : new Array<number>(10).fill(0);
    const tm = i32();
    const at = tmPtr! >> 2;
    fields.forEach((v, k) => (tm[at + k] = v));
    return 0;
  });
  replace('p', /Date\.now\(\)/, 'emscripten_date_now', () => 0);
  replace('j', /setTimeout/, 'timer', () => 0);
}

/**
 * Direct FFI access to one context, without quickjs-emscripten's handle objects
 * (which allocate several JavaScript objects per value). Values are JSValue*
 * pointers into linear memory: "owned" ones must be freed with free().
 */
export class RawContext {
  readonly ctxPtr: number;
  readonly undefinedPtr: number;
  readonly truePtr: number;
  readonly falsePtr: number;
  readonly nullPtr: number;
  private readonly ffi: Ffi;
  private readonly em: EmModule;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  /** A Buffer over linear memory, for fast UTF-8 encoding and decoding. */
  private readonly bytes: Buffer;

  constructor(context: QuickJSContext, instance: WasmInstance) {
    const internals = context as unknown as { ctx: { value: number }; ffi: Ffi; module: EmModule };
    this.ctxPtr = internals.ctx.value;
    this.ffi = internals.ffi;
    this.em = internals.module;
    this.i32 = instance.i32;
    this.u8 = instance.u8;
    this.bytes = Buffer.from(instance.memory.buffer);
    this.undefinedPtr = this.ffi.QTS_GetUndefined();
    this.truePtr = this.ffi.QTS_GetTrue();
    this.falsePtr = this.ffi.QTS_GetFalse();
    this.nullPtr = this.ffi.QTS_GetNull();
  }

  /** The string value of argument `index` of a host call, or null if QuickJS could not convert it (out of memory). */
  argString(argv: number, index: number): string | null {
    return this.toString(this.ffi.QTS_ArgvGetJSValueConstPointer(argv, index));
  }

  /** The number value of argument `index` of a host call (NaN if it is not a number). */
  argNumber(argv: number, index: number): number {
    return this.ffi.QTS_GetFloat64(this.ctxPtr, this.ffi.QTS_ArgvGetJSValueConstPointer(argv, index));
  }

  /**
   * ToString of a value, or null when QuickJS fails (out of memory, or a throwing
   * toString). The text ends at the first U+0000, and text that is not valid
   * Unicode decodes with U+FFFD: callers that need exactness compare lengths.
   */
  toString(value: number): string | null {
    const cstr = this.ffi.QTS_GetString(this.ctxPtr, value);
    if (cstr === 0) return null;
    const end = this.u8.indexOf(0, cstr);
    const text = this.bytes.toString('utf8', cstr, end < 0 ? cstr : end);
    this.ffi.QTS_FreeCString(this.ctxPtr, cstr);
    return text;
  }

  /** A VM number as an owned JSValue*, or 0 when memory is exhausted. */
  newNumber(value: number): number {
    return this.ffi.QTS_NewFloat64(this.ctxPtr, value);
  }

  /** A new VM string as an owned JSValue*, or 0 when memory is exhausted. */
  newString(text: string): number {
    const size = Buffer.byteLength(text, 'utf8') + 1;
    const buf = this.em._malloc(size);
    if (buf === 0) return 0;
    this.bytes.write(text, buf, 'utf8');
    this.u8[buf + size - 1] = 0;
    const value = this.ffi.QTS_NewString(this.ctxPtr, buf);
    this.em._free(buf);
    return value;
  }

  /**
   * Calls `fn` with `this` undefined. Returns the owned result, or the owned
   * exception with `threw` set. 0 as pointer means memory ran out before the call.
   */
  call(fn: number, args: readonly number[]): { threw: boolean; value: number } {
    const argv = this.em._malloc(4 * args.length);
    if (argv === 0) return { threw: true, value: 0 };
    for (let i = 0; i < args.length; i++) this.i32[(argv >> 2) + i] = args[i]!;
    const result = this.ffi.QTS_Call(this.ctxPtr, fn, this.undefinedPtr, args.length, argv);
    this.em._free(argv);
    const error = this.ffi.QTS_ResolveException(this.ctxPtr, result);
    if (error !== 0) {
      this.ffi.QTS_FreeValuePointer(this.ctxPtr, result);
      return { threw: true, value: error };
    }
    return { threw: false, value: result };
  }

  /** Frees an owned value (the static undefined/true/false/null pointers are left alone). */
  free(value: number): void {
    if (value !== 0 && value !== this.undefinedPtr && value !== this.truePtr && value !== this.falsePtr && value !== this.nullPtr) {
      this.ffi.QTS_FreeValuePointer(this.ctxPtr, value);
    }
  }
}

export function contextPointer(context: QuickJSContext): number {
  return (context as unknown as { ctx: { value: number } }).ctx.value;
}

/** Everything instances of one build share. */
export class Engine {
  private constructor(
    readonly compiled: WasmModule,
    readonly sha256: string,
    readonly layout: EngineLayout,
    readonly pristine: MemoryImage,
  ) {}

  private static cache = new Map<string, Promise<{ compiled: WasmModule; sha256: string; layout: EngineLayout; pristine: MemoryImage }>>();

  /** Loads, checks, instruments and calibrates the pinned QuickJS build (cached per process and memory size). */
  static async load(expectedSha256: string, pages: number): Promise<{ engine: Engine; first: WasmInstance }> {
    const key = `${expectedSha256}:${pages}`;
    let pending = Engine.cache.get(key);
    let first: WasmInstance | undefined;
    if (!pending) {
      pending = (async () => {
        const build = await loadMeteredBuild(expectedSha256);
        const compiled = await Wasm.compile(build.bytes);
        const instance = await WasmInstance.create(compiled, pages);
        const { layout, pristine } = calibrate(instance);
        first = instance;
        return { compiled, sha256: build.sha256, layout, pristine };
      })();
      Engine.cache.set(key, pending);
      pending.catch(() => Engine.cache.delete(key));
    }
    const loaded = await pending;
    const engine = new Engine(loaded.compiled, loaded.sha256, loaded.layout, loaded.pristine);
    return { engine, first: first ?? (await engine.newInstance(pages)) };
  }

  /** A fresh instance, checked to start from exactly the calibrated pristine image. */
  async newInstance(pages: number): Promise<WasmInstance> {
    const instance = await WasmInstance.create(this.compiled, pages);
    const { layout, pristine } = this;
    if (instance.stackSave() !== layout.stackHigh || instance.heapTop(layout) !== pristine.top) {
      fail('a new instance does not match the calibrated layout');
    }
    // The glue's start-up must be deterministic: compare with the calibrated pristine image.
    const image = instance.capture(layout);
    if (!Buffer.from(image.data).equals(Buffer.from(pristine.data)) || !Buffer.from(image.heap).equals(Buffer.from(pristine.heap))) {
      fail('a new instance starts from different memory contents');
    }
    return instance;
  }
}

function lastNonZero(u8: Uint8Array, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (u8[i] !== 0) return i;
  return -1;
}

function allZero(u8: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (u8[i] !== 0) return false;
  return true;
}

function evalOk(context: QuickJSContext, code: string): void {
  const result = context.evalCode(code, 'calibrate.js', { type: 'global' });
  if (result.error) {
    const error = context.dump(result.error) as unknown;
    result.error.dispose();
    fail(`calibration code failed: ${JSON.stringify(error)}`);
  }
  result.value.dispose();
}

/**
 * Finds and verifies the memory layout on a fresh instance, then returns the
 * instance to its pristine state. Deterministic: the same build always yields
 * the same layout (checked for every further instance by Engine.newInstance).
 */
function calibrate(instance: WasmInstance): { layout: EngineLayout; pristine: MemoryImage } {
  const { u8, i32 } = instance;
  const memEnd = u8.length;

  // 1. The C stack: stackSave/stackAlloc/stackRestore behave as expected, and the
  //    resting stack pointer is the stack's top, where the heap begins.
  const stackHigh = instance.stackSave();
  const probe = instance.stackAlloc(16);
  if (probe !== stackHigh - 16 || instance.stackSave() !== probe) fail('stackAlloc does not behave as expected');
  instance.stackRestore(stackHigh);
  if (instance.stackSave() !== stackHigh) fail('stackRestore does not behave as expected');
  if (stackHigh % 16 !== 0 || stackHigh < 1024 * 1024 || stackHigh > FIXED_MEMORY_BYTES - 2 * 1024 * 1024) {
    fail(`unexpected stack top ${stackHigh}`);
  }

  // 2. Static data + bss: the non-zero bytes at the bottom of memory, rounded up to 4 KiB.
  //    The calibration workload below must not write above it (checked at the end).
  const lowEnd = stackHigh - 2 * 1024 * 1024;
  const lastData = lastNonZero(u8, 0, lowEnd);
  if (lastData < 0) fail('no static data found');
  const dataEnd = Math.ceil((lastData + 1) / 4096) * 4096;
  if (dataEnd >= lowEnd) fail('static data too close to the stack');
  const dataBefore = new Int32Array(u8.slice(0, dataEnd).buffer);
  const heapCopyEnd = Math.min(memEnd, stackHigh + 4 * 1024 * 1024);
  const heapBefore = u8.slice(stackHigh, heapCopyEnd);

  // 3. The allocator's break pointer: the one word in static data that points just past
  //    everything non-zero, and moves up when the VM allocates and keeps large strings.
  let fires = 0;
  let onFire: () => void = () => undefined;
  instance.hooks = { onCall: () => 0, onInterrupt: () => (fires++, onFire(), false) };
  const runtime = instance.qjs.newRuntime();
  runtime.setInterruptHandler(() => false); // enables the C-side handler; our hook answers
  const context = runtime.newContext();
  evalOk(context, 'globalThis.a = "x".repeat(3 << 20); 1');
  const dataMid = new Int32Array(u8.slice(0, dataEnd).buffer);
  evalOk(context, 'globalThis.b = "y".repeat(3 << 20); 1');
  const dataAfter = new Int32Array(u8.slice(0, dataEnd).buffer);
  const sbrkCandidates: number[] = [];
  for (let w = 0; w < dataBefore.length; w++) {
    const v0 = dataBefore[w]!;
    const v1 = dataMid[w]!;
    const v2 = dataAfter[w]!;
    if (v0 >= stackHigh && v1 >= v0 + (3 << 20) && v2 >= v1 + (3 << 20) && v2 <= memEnd && v2 % 8 === 0) {
      if (allZero(u8, v2, Math.min(memEnd, v2 + 1024 * 1024)) && allZero(heapBefore, v0 - stackHigh, Math.min(heapBefore.length, v0 - stackHigh + 65536))) {
        sbrkCandidates.push(w * 4);
      }
    }
  }
  if (sbrkCandidates.length !== 1) fail(`expected one allocator break pointer, found ${sbrkCandidates.length}`);
  const sbrkAddr = sbrkCandidates[0]!;
  const pristineTop = dataBefore[sbrkAddr >> 2]!;
  if (lastNonZero(heapBefore, pristineTop - stackHigh, heapBefore.length) >= 0) fail('memory above the initial break is not empty');

  // 4. The interrupt counter: a word in the JSContext that falls by the number of poll
  //    points executed. Two loops of different lengths pick it out; writing to it must
  //    then control when the interrupt handler runs.
  evalOk(context, 'globalThis.a = globalThis.b = null; 1');
  const ctxPtr = contextPointer(context);
  // Start right after a handler call, so that the counter is near its reset value
  // and the loops below cannot make it wrap.
  const seen = fires;
  for (let i = 0; i < 1000 && fires === seen; i++) evalOk(context, 'for (let i = 0; i < 20; i++) {}');
  if (fires === seen) fail('the interrupt handler is never called');
  const WORDS = 512;
  const snap = (): Int32Array => i32.slice(ctxPtr >> 2, (ctxPtr >> 2) + WORDS);
  const s0 = snap();
  evalOk(context, 'for (let i = 0; i < 100; i++) {}');
  const s1 = snap();
  evalOk(context, 'for (let i = 0; i < 1100; i++) {}');
  const s2 = snap();
  const counterCandidates: number[] = [];
  for (let w = 0; w < WORDS; w++) {
    const d1 = s0[w]! - s1[w]!;
    const d2 = s1[w]! - s2[w]!;
    if (s0[w]! <= 10_000 && s2[w]! > 0 && d1 > 100 && d2 > d1 + 1000 && d2 < d1 + 4000) counterCandidates.push(w * 4);
  }
  const verified = counterCandidates.filter((offset) => {
    const addr = (ctxPtr + offset) >> 2;
    const before = fires;
    i32[addr] = 3;
    evalOk(context, 'for (let i = 0; i < 10; i++) {}');
    if (fires === before) return false;
    const quiet = fires;
    i32[addr] = 10_000;
    evalOk(context, 'for (let i = 0; i < 10; i++) {}');
    if (fires !== quiet) return false;
    // Rewriting it from inside the handler sets the handler's period.
    const start = fires;
    onFire = () => {
      i32[addr] = 50;
    };
    i32[addr] = 50;
    evalOk(context, 'for (let i = 0; i < 10000; i++) {}');
    onFire = () => undefined;
    const n = fires - start;
    return n >= 300 && n <= 500;
  });
  if (verified.length !== 1) fail(`expected one interrupt counter, found ${verified.length}`);
  const counterOffset = verified[0]!;

  // 5. Fuel: interpreting a loop uses at least a step per iteration, and an engine
  //    function entered with no fuel left traps before doing anything (stackSave has
  //    no side effects, so the instance is intact afterwards).
  const FUEL_PROBE = 1e12;
  instance.meter(FUEL_PROBE);
  evalOk(context, 'for (let i = 0; i < 1000; i++) {}');
  const used = FUEL_PROBE - instance.fuel();
  instance.unmeter();
  if (used < 1000 * FUEL.PER_STEP) fail(`1000 loop iterations used ${used} fuel`);

  context.dispose();
  runtime.dispose();
  instance.hooks = NO_HOOKS;

  instance.meter(0);
  let trapped = false;
  try {
    instance.stackSave();
  } catch {
    trapped = true;
  }
  const left = instance.fuel();
  instance.unmeter();
  if (!trapped || left !== -FUEL.PER_STEP) fail(`an engine call without fuel did not trap as expected (fuel left ${left})`);

  const layout: EngineLayout = { stackHigh, dataEnd, sbrkAddr, counterOffset };
  const pristine: MemoryImage = {
    data: new Uint8Array(dataBefore.buffer),
    heap: heapBefore.slice(0, pristineTop - stackHigh),
    top: pristineTop,
  };
  // Nothing above the static data may have been written (no bss beyond dataEnd).
  if (!allZero(u8, dataEnd, dataEnd + 256 * 1024)) fail('memory just above static data was written');
  instance.restore(layout, pristine, dataAfter[sbrkAddr >> 2]!);
  if (instance.stackSave() !== stackHigh) fail('stack pointer moved during calibration');
  return { layout, pristine };
}
