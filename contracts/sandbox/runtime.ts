import type { Intrinsics, QuickJSContext, QuickJSHandle, QuickJSRuntime } from 'quickjs-emscripten';
import { canonicalize, CONTRACT_NAME_RE, type JsonValue } from '../../consensus/index.js';
import { bundleMeasurement, parseBundle, type ContractBundle } from '../bundle/bundle.js';
import { ContractError } from '../bundle/errors.js';
import { callableMethod, INIT_METHOD, type ContractManifest } from '../bundle/manifest.js';
import { QUICKJS_WASM_SHA256 } from './engine-build.js';
import { Engine, FIXED_MEMORY_BYTES, RawContext, WasmInstance, type MemoryImage } from './engine.js';
import { isCallErrorCode, type CallErrorCode } from './errors.js';
import { baseCostOfArgsBytes, CALL_LIMITS, DEFAULT_SANDBOX_OPTIONS, EVENT_NAME_RE, FUEL, GAS, POLL_INTERVAL } from './gas.js';
import { PRELUDE_SOURCE } from './prelude.js';
import type { CallContext, CallEvent, CallOutcome, SandboxOptions, StateAccess } from './types.js';

/** Language features installed in every contract context. No Date, no typed arrays. */
const INTRINSICS: Intrinsics = {
  BaseObjects: true,
  Eval: true, // needed to compile code; the global `eval` itself is removed by the prelude
  JSON: true,
  MapSet: true,
  RegExp: true,
  RegExpCompiler: true,
  StringNormalize: true,
  Proxy: true,
  Promise: true, // module evaluation needs it; pending jobs never run and are discarded with the call
  BigInt: true,
};

const PAGE = 65536;

type HostOp = 'get' | 'set' | 'delete' | 'emit' | 'fail';
const HOST_OPS: readonly HostOp[] = ['get', 'set', 'delete', 'emit', 'fail'];

/**
 * Accounting for the call (or bundle set-up) in progress. Gas used = base +
 * ceil(fuel used / FUEL.PER_GAS), where host API charges are taken from the same
 * fuel budget (amount x FUEL.PER_GAS) at the moment of the call.
 */
interface Meter {
  mode: 'setup' | 'call';
  /** Gas charged before the engine runs (the call's base cost; 0 for set-up). */
  base: number;
  /** Fuel the engine was given: (gas limit - base) x FUEL.PER_GAS. */
  budget: number;
  /** Fuel left when the host last took control (inside a host API call). */
  left: number;
  stopped: boolean;
  /** Fuel left when a fatal API error stopped the VM: its gas is counted up to there. */
  stopLeft: number;
  oog: boolean;
  fatal: { code: CallErrorCode; message: string } | null;
  hostFault: { error: unknown } | null;
  readonly: boolean;
  state: StateAccess | null;
  events: CallEvent[];
  /** Highest heap end seen, so the next restore can clear everything the call touched. */
  highWater: number;
}

interface ResolvedOptions {
  memoryLimitBytes: number;
  maxStackBytes: number;
  setupGasLimit: number;
  maxCachedBundles: number;
  engineSha256: string;
}

/** One WebAssembly instance holding (at most) one compiled bundle. */
class Slot {
  key: string | null = null;
  image: MemoryImage | null = null;
  dirty = false;
  highWater = 0;
  lastUse = 0;
  runtime: QuickJSRuntime | null = null;
  context: QuickJSContext | null = null;
  raw: RawContext | null = null;
  entry: QuickJSHandle | null = null;
  handles: QuickJSHandle[] = [];
  counterAddr = 0;
  readonly tags = new Map<unknown, HostOp>();
  readonly ops = new Map<number, HostOp>();
  constructor(readonly inst: WasmInstance) {}
}

interface KnownBundle {
  code: string;
  /** The manifest object as passed in (identity check for the cache). */
  source: unknown;
  /** The validated manifest. */
  manifest: ContractManifest;
  /** The bundle's measurement. */
  key: string;
}

function outcomeFailed(code: CallErrorCode, message: string, gasUsed: number): CallOutcome {
  return { status: 'failed', result: null, gasUsed, events: [], error: { code, message } };
}

function outOfGas(gasLimit: number): CallOutcome {
  return outcomeFailed('OUT_OF_GAS', `out of gas (limit ${gasLimit})`, gasLimit);
}

function checkIntOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ContractError('CALL_INVALID', `sandbox option ${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Fuel for `gas` units of gas (capped where a JavaScript number stops being exact; no call gets near it). */
function fuelFor(gas: number): number {
  return Math.min(gas * FUEL.PER_GAS, Number.MAX_SAFE_INTEGER);
}

function gasUsed(meter: Meter, fuelLeft: number): number {
  return meter.base + Math.ceil((meter.budget - fuelLeft) / FUEL.PER_GAS);
}

/**
 * The deterministic contract sandbox. One instance serves one executor thread;
 * call() is synchronous and not re-entrant.
 *
 * ```ts
 * const runtime = await ContractRuntime.create();
 * const outcome = runtime.call(bundle, 'transfer', [to, 5], ctx, 100_000, state);
 * runtime.dispose();
 * ```
 */
export class ContractRuntime {
  private readonly byKey = new Map<string, Slot>();
  private readonly failures = new Map<string, string>();
  private readonly known = new WeakMap<object, KnownBundle>();
  private meter: Meter | null = null;
  private busy = false;
  private disposed = false;
  private clock = 0;

  private constructor(
    private readonly engine: Engine,
    private readonly slots: Slot[],
    readonly options: Readonly<ResolvedOptions>,
  ) {
    for (const slot of slots) {
      slot.inst.hooks = {
        onCall: (fnId, _argc, argv) => this.onHostCall(slot, fnId, argv),
        onInterrupt: () => this.onInterrupt(slot),
      };
    }
  }

  /** SHA-256 of the QuickJS WebAssembly binary every node must run. */
  get engineSha256(): string {
    return this.engine.sha256;
  }

  static async create(options: SandboxOptions = {}): Promise<ContractRuntime> {
    const resolved: ResolvedOptions = {
      memoryLimitBytes: checkIntOption('memoryLimitBytes', options.memoryLimitBytes ?? DEFAULT_SANDBOX_OPTIONS.memoryLimitBytes, 1 << 20, 1 << 30),
      maxStackBytes: checkIntOption('maxStackBytes', options.maxStackBytes ?? DEFAULT_SANDBOX_OPTIONS.maxStackBytes, 16 << 10, 128 << 10),
      setupGasLimit: checkIntOption('setupGasLimit', options.setupGasLimit ?? DEFAULT_SANDBOX_OPTIONS.setupGasLimit, 1, Number.MAX_SAFE_INTEGER),
      maxCachedBundles: checkIntOption('maxCachedBundles', options.maxCachedBundles ?? DEFAULT_SANDBOX_OPTIONS.maxCachedBundles, 1, 64),
      engineSha256: options.engineSha256 ?? QUICKJS_WASM_SHA256,
    };
    const pages = Math.ceil((FIXED_MEMORY_BYTES + resolved.memoryLimitBytes) / PAGE);
    const { engine, first } = await Engine.load(resolved.engineSha256, pages);
    const instances = [first];
    for (let i = 1; i < resolved.maxCachedBundles; i++) instances.push(await engine.newInstance(pages));
    return new ContractRuntime(engine, instances.map((inst) => new Slot(inst)), Object.freeze(resolved));
  }

  /**
   * Runs `method` of `bundle`. Synchronous. Every contract-caused failure is a
   * 'failed' outcome; exceptions are reserved for host problems: ContractError
   * (CALL_INVALID for bad arguments from the host, BUNDLE_INVALID/MANIFEST_INVALID/
   * CODE_INVALID for a bundle that was never validated, SANDBOX_FAULT), or
   * whatever the StateAccess threw.
   */
  call(bundle: ContractBundle, method: string, args: JsonValue[], ctx: CallContext, gasLimit: number, state: StateAccess): CallOutcome {
    return this.guard(() => this.execute(bundle, method, args, ctx, gasLimit, state, false));
  }

  /**
   * Deploys `bundle`: compiles it and runs its `init` method with `args`, if the
   * manifest has one (a bundle without init takes no arguments). Same outcome
   * rules as call().
   */
  deploy(bundle: ContractBundle, args: JsonValue[], ctx: CallContext, gasLimit: number, state: StateAccess): CallOutcome {
    return this.guard(() => this.execute(bundle, INIT_METHOD, args, ctx, gasLimit, state, true));
  }

  /**
   * Compiles a bundle (running its top-level code) without calling a method.
   * Returns null when it is usable, otherwise the CODE_INVALID message that any
   * call or deployment would fail with. Useful before approving a bundle.
   */
  validate(bundle: ContractBundle): { code: 'CODE_INVALID'; message: string } | null {
    return this.guard(() => {
      const known = this.know(bundle);
      const loaded = this.load(known);
      return 'error' in loaded ? { code: 'CODE_INVALID' as const, message: loaded.error } : null;
    });
  }

  /** Frees every QuickJS object. The runtime cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    if (this.busy) throw new ContractError('CALL_INVALID', 'dispose() during a call');
    this.disposed = true;
    for (const slot of this.slots) this.unload(slot);
    this.byKey.clear();
  }

  // ---------------------------------------------------------------------------

  private guard<T>(fn: () => T): T {
    if (this.disposed) throw new ContractError('CALL_INVALID', 'the contract runtime has been disposed');
    if (this.busy) throw new ContractError('CALL_INVALID', 'the contract runtime is not re-entrant: a call is already running');
    this.busy = true;
    try {
      return fn();
    } finally {
      this.busy = false;
      this.meter = null;
    }
  }

  /** Validates and measures a bundle the first time this object is seen. */
  private know(bundle: ContractBundle): KnownBundle {
    const cached = this.known.get(bundle);
    if (cached && cached.code === bundle.code && cached.source === bundle.manifest) return cached;
    if (typeof bundle !== 'object' || bundle === null) throw new ContractError('BUNDLE_INVALID', 'bundle must be a ContractBundle');
    const valid = parseBundle({ manifest: bundle.manifest, code: bundle.code });
    const entry: KnownBundle = { code: bundle.code, source: bundle.manifest, manifest: valid.manifest, key: bundleMeasurement(valid) };
    this.known.set(bundle, entry);
    return entry;
  }

  private execute(
    bundle: ContractBundle,
    method: string,
    args: JsonValue[],
    ctx: CallContext,
    gasLimit: number,
    state: StateAccess,
    deploying: boolean,
  ): CallOutcome {
    checkCallContext(ctx);
    if (typeof gasLimit !== 'number' || !Number.isSafeInteger(gasLimit) || gasLimit <= 0) {
      throw new ContractError('CALL_INVALID', 'gasLimit must be a positive safe integer');
    }
    if (typeof method !== 'string') throw new ContractError('CALL_INVALID', 'method must be a string');
    if (typeof state !== 'object' || state === null) throw new ContractError('CALL_INVALID', 'state must be a StateAccess');
    const known = this.know(bundle);

    let argsJson: string;
    try {
      if (!Array.isArray(args)) throw new TypeError('not an array');
      argsJson = canonicalize(args);
    } catch {
      return outcomeFailed('INVALID_ARGS', 'arguments must be an array of canonical JSON values (safe integers only)', Math.min(GAS.CALL_BASE, gasLimit));
    }
    const argsBytes = utf8Length(argsJson);
    if (argsBytes > CALL_LIMITS.MAX_ARGS_BYTES) {
      return outcomeFailed('INVALID_ARGS', `arguments are ${argsBytes} bytes; the limit is ${CALL_LIMITS.MAX_ARGS_BYTES}`, Math.min(GAS.CALL_BASE, gasLimit));
    }
    const base = baseCostOfArgsBytes(argsBytes);
    if (base > gasLimit) return outcomeFailed('OUT_OF_GAS', `gas limit ${gasLimit} is below the base cost ${base} of this call`, gasLimit);

    let readonly = ctx.readonly;
    if (deploying) {
      if (!Object.prototype.hasOwnProperty.call(known.manifest.methods, INIT_METHOD)) {
        if (args.length > 0) return outcomeFailed('INVALID_ARGS', 'the bundle has no init method, so deployment takes no arguments', base);
        const loaded = this.load(known);
        if ('error' in loaded) return outcomeFailed('CODE_INVALID', loaded.error, base);
        return { status: 'success', result: null, gasUsed: base, events: [], error: null };
      }
    } else {
      const entry = callableMethod(known.manifest, method);
      if (!entry) {
        const why = method === INIT_METHOD ? 'init runs only once, at deployment' : `the manifest has no method "${method}"`;
        return outcomeFailed('UNKNOWN_METHOD', why.slice(0, CALL_LIMITS.MAX_ERROR_MESSAGE), base);
      }
      readonly = readonly || entry.readonly;
    }

    const loaded = this.load(known);
    if ('error' in loaded) return outcomeFailed('CODE_INVALID', loaded.error, base);
    return this.run(loaded.slot, method, args, argsJson, ctx, base, gasLimit, readonly, state);
  }

  private run(
    slot: Slot,
    method: string,
    callArgs: JsonValue[],
    argsJson: string,
    ctx: CallContext,
    base: number,
    gasLimit: number,
    readonly: boolean,
    state: StateAccess,
  ): CallOutcome {
    const { inst } = slot;
    const { layout } = this.engine;
    const image = slot.image!;
    slot.lastUse = ++this.clock;
    if (slot.dirty) {
      inst.restore(layout, image, slot.highWater);
      slot.dirty = false;
    }
    const meter = newMeter('call', base, fuelFor(gasLimit - base), readonly, state, image.top);
    this.meter = meter;
    slot.dirty = true;
    inst.i32[slot.counterAddr >> 2] = POLL_INTERVAL;

    const raw = slot.raw!;
    const args: number[] = [];
    let text: string | null = null;
    let escaped: string | null = null;
    let fuelLeft: number;
    try {
      args.push(raw.newString(method), raw.newString(ctx.contract), raw.newString(ctx.caller));
      args.push(raw.newNumber(ctx.blockHeight), raw.newNumber(ctx.blockTime), readonly ? raw.truePtr : raw.falsePtr);
      pushArguments(raw, args, callArgs, argsJson);
      // The contract runs on the call's budget, and so does turning an exception that
      // escaped the prelude into text (contract code can run there: getters on errors).
      inst.meter(meter.budget);
      // (Only a bundle whose top-level code filled the memory can run out this early.)
      const result = args.includes(0) ? { threw: true, value: 0 } : raw.call(slot.entry!.value, args);
      if (result.threw) {
        if (!meter.stopped) escaped = result.value === 0 ? 'out of memory' : (raw.toString(result.value) ?? 'out of memory');
      } else {
        text = raw.toString(result.value);
        if (text === null && !meter.stopped) escaped = 'out of memory';
      }
      fuelLeft = inst.fuel();
      inst.unmeter();
      raw.free(result.value);
      for (const arg of args) raw.free(arg);
    } catch (err) {
      // The engine trapped (its fuel ran out, or a host problem stopped it at once) or
      // failed (for example the host's native stack overflowed inside WebAssembly). It
      // stopped in the middle of whatever it was doing: restore the ready image before
      // any engine code runs again (while the fuel is negative none can).
      const trappedLeft = inst.fuel();
      this.meter = null;
      inst.restore(layout, image, Math.max(meter.highWater, inst.heapTop(layout)));
      inst.unmeter();
      inst.stackRestore(layout.stackHigh);
      slot.dirty = false;
      slot.highWater = 0;
      if (meter.hostFault) throw meter.hostFault.error;
      if (meter.fatal) return outcomeFailed(meter.fatal.code, meter.fatal.message, gasUsed(meter, meter.stopLeft));
      if (meter.oog || trappedLeft < 0) return outOfGas(gasLimit);
      // Nothing about a fault is deterministic, so there is no outcome.
      throw new ContractError('SANDBOX_FAULT', `the QuickJS engine failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    } finally {
      this.meter = null;
    }
    slot.highWater = Math.max(meter.highWater, inst.heapTop(layout));
    if (meter.hostFault) throw meter.hostFault.error;

    if (meter.fatal) return outcomeFailed(meter.fatal.code, meter.fatal.message, gasUsed(meter, meter.stopLeft));
    if (meter.oog || fuelLeft < 0) return outOfGas(gasLimit);
    let gas = gasUsed(meter, fuelLeft);
    if (escaped !== null) return classifyEscaped(escaped, gas);
    if (text === null || text.length === 0) return outcomeFailed('CONTRACT_ERROR', 'the call produced no result', gas);
    if (text[0] === 'E') {
      const [code, message] = JSON.parse(text.slice(1)) as [string, string];
      return outcomeFailed(isCallErrorCode(code) ? code : 'CONTRACT_ERROR', String(message), gas);
    }
    const json = text.slice(1);
    const bytes = utf8Length(json);
    if (bytes > CALL_LIMITS.MAX_VALUE_BYTES) {
      return outcomeFailed('VALUE_TOO_LARGE', `the return value is ${bytes} bytes; the limit is ${CALL_LIMITS.MAX_VALUE_BYTES}`, gas);
    }
    gas += GAS.RESULT_PER_BYTE * bytes;
    if (gas > gasLimit) return outOfGas(gasLimit);
    const result = parseJson(json);
    if (result === undefined) return outcomeFailed('VALUE_NOT_ENCODABLE', 'the return value is not canonical JSON', gas);
    return { status: 'success', result, gasUsed: gas, events: meter.events, error: null };
  }

  // --- bundle loading --------------------------------------------------------

  private load(known: KnownBundle): { slot: Slot } | { error: string } {
    const ready = this.byKey.get(known.key);
    if (ready) return { slot: ready };
    const failed = this.failures.get(known.key);
    if (failed !== undefined) return { error: failed };

    let target = this.slots.find((s) => s.key === null);
    if (!target) {
      target = this.slots.reduce((a, b) => (b.lastUse < a.lastUse ? b : a));
      this.unload(target);
    }
    let error: string | null;
    try {
      error = this.setup(target, known);
    } catch (err) {
      this.unload(target);
      throw err;
    }
    if (error !== null) {
      if (error.length > CALL_LIMITS.MAX_ERROR_MESSAGE) error = `${error.slice(0, CALL_LIMITS.MAX_ERROR_MESSAGE)}...`;
      this.unload(target);
      if (this.failures.size >= 256) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(known.key, error);
      return { error };
    }
    this.byKey.set(known.key, target);
    return { slot: target };
  }

  /** Builds a bundle's ready image on a pristine slot; returns an error message or null. */
  private setup(slot: Slot, known: KnownBundle): string | null {
    const { inst } = slot;
    const { layout } = this.engine;
    const runtime = inst.qjs.newRuntime();
    slot.runtime = runtime;
    runtime.setMaxStackSize(this.options.maxStackBytes);
    runtime.setInterruptHandler(() => false); // enables QuickJS's handler; Slot hooks answer it
    const context = runtime.newContext({ intrinsics: INTRINSICS });
    slot.context = context;
    slot.raw = new RawContext(context, inst);
    slot.counterAddr = slot.raw.ctxPtr + layout.counterOffset;
    const hostFns = HOST_OPS.map((op) => {
      const tag = (): undefined => undefined;
      slot.tags.set(tag, op);
      const handle = context.newFunction(`host_${op}`, tag);
      slot.handles.push(handle);
      return handle;
    });

    const meter = newMeter('setup', 0, fuelFor(this.options.setupGasLimit), true, null, inst.heapTop(layout));
    this.meter = meter;
    inst.i32[slot.counterAddr >> 2] = POLL_INTERVAL;
    const transient: QuickJSHandle[] = [];
    let failure: string | null;
    try {
      // The prelude and the bundle's top-level code run on the set-up budget.
      inst.meter(meter.budget);
      failure = this.evaluate(slot, known, hostFns, meter, transient);
      inst.unmeter();
    } catch (err) {
      // A fuel trap (or an engine fault) in the middle of QuickJS: none of its objects
      // can be freed properly, so the slot goes straight back to the pristine image.
      const fuelLeft = inst.fuel();
      this.meter = null;
      slot.highWater = Math.max(slot.highWater, meter.highWater);
      this.unload(slot, true);
      if (fuelLeft < 0) return this.setupGasExceeded();
      throw err;
    } finally {
      this.meter = null;
    }
    for (const handle of transient) if (handle.alive) handle.dispose();
    slot.highWater = Math.max(meter.highWater, inst.heapTop(layout));
    if (failure !== null) return failure;
    slot.image = inst.capture(layout);
    slot.key = known.key;
    // The first call restores too, which clears whatever set-up left above the heap end.
    slot.dirty = true;
    return null;
  }

  /** Runs the prelude and the bundle's module (metered); returns an error message or null. */
  private evaluate(slot: Slot, known: KnownBundle, hostFns: QuickJSHandle[], meter: Meter, transient: QuickJSHandle[]): string | null {
    const context = slot.context!;
    const prelude = context.evalCode(PRELUDE_SOURCE, 'cloister-prelude.js', { type: 'global', strict: true });
    if (prelude.error) throw new Error(`prelude failed: ${describeEscaped(context, prelude.error)}`);
    transient.push(prelude.value);
    const bound = context.callFunction(prelude.value, context.undefined, ...hostFns);
    if (bound.error) throw new Error(`prelude set-up failed: ${describeEscaped(context, bound.error)}`);
    transient.push(bound.value);

    const evaluated = context.evalCode(known.code, 'contract.js', { type: 'module' });
    if (evaluated.error) {
      // Where in the bundle: a syntax error or a top-level throw names its line and column.
      const message = this.setupFailure(meter) ?? `${describeEscaped(context, evaluated.error)}${locationIn(context, evaluated.error)}`;
      evaluated.error.dispose();
      return `contract.js failed to load: ${message}`;
    }
    transient.push(evaluated.value);
    // quickjs-emscripten returns the namespace, or a promise of it when the module awaits.
    const promise = context.getPromiseState(evaluated.value);
    if (promise.type !== 'fulfilled' || !promise.notAPromise) {
      if (promise.type === 'fulfilled') promise.value.dispose();
      if (promise.type === 'rejected') promise.error.dispose();
      return 'contract.js uses top-level await, which is not supported';
    }
    const methods = Object.keys(known.manifest.methods);
    const hMethods = context.newString(JSON.stringify(methods));
    transient.push(hMethods);
    const entry = context.callFunction(bound.value, context.undefined, evaluated.value, hMethods);
    if (entry.error) {
      const message = this.setupFailure(meter) ?? describeEscaped(context, entry.error);
      entry.error.dispose();
      return message;
    }
    slot.entry = entry.value;
    slot.handles.push(entry.value);
    return this.setupFailure(meter);
  }

  private setupGasExceeded(): string {
    return `top-level code exceeded the set-up gas limit of ${this.options.setupGasLimit}`;
  }

  private setupFailure(meter: Meter): string | null {
    if (meter.hostFault) throw meter.hostFault.error; // a host problem, not the bundle's
    if (meter.fatal) return `${meter.fatal.code}: ${meter.fatal.message}`;
    return null;
  }

  /**
   * Returns a slot to the pristine engine state, properly freeing its QuickJS objects
   * first unless the engine `trapped` (stopped in the middle of an operation): then
   * no engine code may run before the memory is restored, and the objects are simply
   * dropped with the memory that held them.
   */
  private unload(slot: Slot, trapped = false): void {
    const { inst } = slot;
    const { layout } = this.engine;
    if (slot.key !== null) this.byKey.delete(slot.key);
    if (slot.runtime) {
      if (!trapped) {
        if (slot.image && slot.dirty) inst.restore(layout, slot.image, slot.highWater);
        try {
          for (const handle of slot.handles) if (handle.alive) handle.dispose();
          slot.context?.dispose();
          slot.runtime.dispose();
        } catch {
          // Ignored: the pristine image below replaces whatever state is left.
        }
      }
      inst.restore(layout, this.engine.pristine, Math.max(slot.highWater, inst.heapTop(layout)));
      inst.unmeter();
      inst.stackRestore(layout.stackHigh);
    }
    slot.key = null;
    slot.image = null;
    slot.dirty = false;
    slot.highWater = 0;
    slot.runtime = null;
    slot.context = null;
    slot.raw = null;
    slot.entry = null;
    slot.handles = [];
    slot.tags.clear();
    slot.ops.clear();
  }

  // --- host side of the VM ---------------------------------------------------

  /** Stops the VM at its next poll point, uncatchably; its gas is counted up to here. */
  private stop(slot: Slot, meter: Meter): void {
    if (meter.stopped) return;
    meter.stopLeft = meter.left;
    meter.stopped = true;
    slot.inst.i32[slot.counterAddr >> 2] = 1;
  }

  private fatal(slot: Slot, meter: Meter, code: CallErrorCode, message: string): number {
    if (!meter.fatal && !meter.oog) meter.fatal = { code, message: message.slice(0, CALL_LIMITS.MAX_ERROR_MESSAGE) };
    this.stop(slot, meter);
    return 0;
  }

  /**
   * Takes `amount` gas from the call's fuel budget; false when it is exhausted. The
   * host API call then returns to the engine with negative fuel, so the engine traps
   * at its next step and the call ends with OUT_OF_GAS.
   */
  private charge(meter: Meter, amount: number): boolean {
    meter.left -= amount * FUEL.PER_GAS;
    if (meter.left >= 0) return true;
    meter.oog = true;
    return false;
  }

  private onInterrupt(slot: Slot): boolean {
    const meter = this.meter;
    if (!meter) return false;
    if (meter.stopped) return true;
    try {
      slot.inst.i32[slot.counterAddr >> 2] = POLL_INTERVAL;
      const top = slot.inst.heapTop(this.engine.layout);
      if (top > meter.highWater) meter.highWater = top;
      return false;
    } catch (error) {
      // Only a host problem (such as its own stack running out) can land here.
      meter.hostFault ??= { error };
      meter.stopped = true;
      return true;
    }
  }

  private opOf(slot: Slot, fnId: number): HostOp | undefined {
    let op = slot.ops.get(fnId);
    if (op === undefined && slot.context) {
      try {
        const fn = (slot.context as unknown as { getFunction(id: number): unknown }).getFunction(fnId);
        op = slot.tags.get(fn);
      } catch {
        op = undefined;
      }
      if (op !== undefined) slot.ops.set(fnId, op);
    }
    return op;
  }

  /**
   * A host API call from the contract. The host's own work here (reading arguments,
   * making result strings) runs unmetered and is charged by the GAS schedule instead;
   * the engine gets back whatever fuel is left after those charges.
   */
  private onHostCall(slot: Slot, fnId: number, argv: number): number {
    const meter = this.meter;
    if (!meter || meter.stopped) return 0;
    meter.left = slot.inst.fuel();
    slot.inst.unmeter();
    try {
      const op = this.opOf(slot, fnId);
      if (op === undefined) return 0;
      if (meter.mode === 'setup' || !meter.state) {
        return op === 'fail' ? this.hostFail(slot, meter, argv) : this.fatal(slot, meter, 'CODE_INVALID', 'the host API is not available in top-level code');
      }
      switch (op) {
        case 'get':
          return this.hostGet(slot, meter, argv);
        case 'set':
          return this.hostSet(slot, meter, argv);
        case 'delete':
          return this.hostDelete(slot, meter, argv);
        case 'emit':
          return this.hostEmit(slot, meter, argv);
        case 'fail':
          return this.hostFail(slot, meter, argv);
      }
    } catch (error) {
      // A host problem (the StateAccess threw, or the host's stack ran out): stop the
      // engine at its next step; run() rethrows the error.
      meter.hostFault ??= { error };
      meter.left = -1;
      return 0;
    } finally {
      slot.inst.meter(meter.left);
    }
  }

  private outOfMemory(slot: Slot, meter: Meter): number {
    return this.fatal(slot, meter, 'OUT_OF_MEMORY', 'out of memory');
  }

  /**
   * Reads a key argument (key, key.length) and checks it; null after a fatal error.
   * The prelude has checked that the key is valid Unicode; a U+0000 would cut the
   * text short, which the length comparison catches.
   */
  private keyArg(slot: Slot, meter: Meter, argv: number): { key: string; bytes: number } | null {
    const key = slot.raw!.argString(argv, 0);
    if (key === null) {
      this.outOfMemory(slot, meter);
      return null;
    }
    if (key.length !== slot.raw!.argNumber(argv, 1)) {
      this.fatal(slot, meter, 'INVALID_KEY', 'state keys must be valid Unicode without U+0000');
      return null;
    }
    const bytes = utf8Length(key);
    if (bytes === 0 || bytes > CALL_LIMITS.MAX_KEY_BYTES) {
      this.fatal(slot, meter, 'INVALID_KEY', `state keys must be 1 to ${CALL_LIMITS.MAX_KEY_BYTES} bytes of UTF-8; this one is ${bytes}`);
      return null;
    }
    return { key, bytes };
  }

  private hostGet(slot: Slot, meter: Meter, argv: number): number {
    const k = this.keyArg(slot, meter, argv);
    if (!k) return 0;
    const value = meter.state!.get(k.key);
    const json = value === null || value === undefined ? null : JSON.stringify(value);
    if (!this.charge(meter, GAS.STATE_READ_BASE + GAS.STATE_READ_PER_BYTE * (k.bytes + (json === null ? 0 : utf8Length(json))))) return 0;
    if (json === null) return 0;
    // Numbers (the most common state values) cross as numbers; everything else as JSON text.
    const handle = typeof value === 'number' ? slot.raw!.newNumber(value) : slot.raw!.newString(json);
    return handle === 0 ? this.outOfMemory(slot, meter) : handle;
  }

  /** The JSON argument at `index`: size-checked and parsed; undefined after a fatal error. */
  private jsonArg(slot: Slot, meter: Meter, argv: number, index: number, what: string): { value: JsonValue; bytes: number } | undefined {
    const json = slot.raw!.argString(argv, index);
    if (json === null) {
      this.outOfMemory(slot, meter);
      return undefined;
    }
    const bytes = utf8Length(json);
    if (bytes > CALL_LIMITS.MAX_VALUE_BYTES) {
      this.fatal(slot, meter, 'VALUE_TOO_LARGE', `${what} is ${bytes} bytes of canonical JSON; the limit is ${CALL_LIMITS.MAX_VALUE_BYTES}`);
      return undefined;
    }
    const value = parseJson(json);
    if (value === undefined) {
      this.fatal(slot, meter, 'VALUE_NOT_ENCODABLE', `${what} is not canonical JSON`);
      return undefined;
    }
    return { value, bytes };
  }

  private readonlyViolation(slot: Slot, meter: Meter, what: string): number {
    return this.fatal(slot, meter, 'READONLY_VIOLATION', `${what} is not allowed in a read-only call`);
  }

  private hostSet(slot: Slot, meter: Meter, argv: number): number {
    if (meter.readonly) return this.readonlyViolation(slot, meter, 'cloister.state.set');
    const k = this.keyArg(slot, meter, argv);
    if (!k) return 0;
    const v = this.jsonArg(slot, meter, argv, 2, 'the state value');
    if (!v) return 0;
    if (!this.charge(meter, GAS.STATE_WRITE_BASE + GAS.STATE_WRITE_PER_BYTE * (k.bytes + v.bytes))) return 0;
    meter.state!.set(k.key, v.value);
    return 0;
  }

  private hostDelete(slot: Slot, meter: Meter, argv: number): number {
    if (meter.readonly) return this.readonlyViolation(slot, meter, 'cloister.state.delete');
    const k = this.keyArg(slot, meter, argv);
    if (!k) return 0;
    if (!this.charge(meter, GAS.STATE_DELETE_BASE + GAS.STATE_WRITE_PER_BYTE * k.bytes)) return 0;
    meter.state!.delete(k.key);
    return 0;
  }

  private hostEmit(slot: Slot, meter: Meter, argv: number): number {
    if (meter.readonly) return this.readonlyViolation(slot, meter, 'cloister.emit');
    const name = slot.raw!.argString(argv, 0);
    if (name === null) return this.outOfMemory(slot, meter);
    if (!EVENT_NAME_RE.test(name)) return this.fatal(slot, meter, 'INVALID_EVENT', `event names must match ${EVENT_NAME_RE.source}`);
    if (meter.events.length >= CALL_LIMITS.MAX_EVENTS) {
      return this.fatal(slot, meter, 'LIMIT_EXCEEDED', `a call may emit at most ${CALL_LIMITS.MAX_EVENTS} events`);
    }
    const data = this.jsonArg(slot, meter, argv, 1, 'the event data');
    if (!data) return 0;
    if (!this.charge(meter, GAS.EMIT_BASE + GAS.EMIT_PER_BYTE * (utf8Length(name) + data.bytes))) return 0;
    meter.events.push({ name, data: data.value });
    return 0;
  }

  private hostFail(slot: Slot, meter: Meter, argv: number): number {
    const code = slot.raw!.argString(argv, 0);
    const message = slot.raw!.argString(argv, 1) ?? '';
    if (code === null) return this.outOfMemory(slot, meter);
    return this.fatal(slot, meter, isCallErrorCode(code) ? code : 'CONTRACT_ERROR', message);
  }
}

/**
 * Appends the jsonMask and the method's arguments for the prelude's entry():
 * primitives as VM values, arrays and objects as JSON text (bit i of the mask);
 * more than 30 arguments as one JSON text of the whole array (mask -1).
 */
const UNSAFE_C_STRING_RE = /[\u0000\p{Cs}]/u;

function pushArguments(raw: RawContext, out: number[], args: JsonValue[], argsJson: string): void {
  if (args.length > 30) {
    out.push(raw.newNumber(-1), raw.newString(argsJson));
    return;
  }
  let mask = 0;
  const values: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    // (C strings cannot carry U+0000 or lone surrogates: such strings go as JSON.)
    if (typeof arg === 'string' && !UNSAFE_C_STRING_RE.test(arg)) values.push(raw.newString(arg));
    else if (typeof arg === 'number') values.push(raw.newNumber(arg));
    else if (typeof arg === 'boolean') values.push(arg ? raw.truePtr : raw.falsePtr);
    else if (arg === null) values.push(raw.nullPtr);
    else {
      mask |= 1 << i;
      values.push(raw.newString(JSON.stringify(arg)));
    }
  }
  out.push(raw.newNumber(mask), ...values);
}

/**
 * Parses JSON text produced inside the VM and checks it against the canonical
 * rules again (a getter or toJSON can make JSON.stringify's output differ from
 * what the prelude checked). undefined when it does not pass.
 */
function parseJson(text: string): JsonValue | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isJsonValue(value, 0) ? value : undefined;
}

/** The rules of isCanonicalJsonValue (consensus), without building the encoding. */
function isJsonValue(value: unknown, depth: number): value is JsonValue {
  if (depth > 64) return false;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isSafeInteger(value);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (const item of value) if (!isJsonValue(item, depth + 1)) return false;
        return true;
      }
      for (const key in value) {
        if (!isJsonValue((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function newMeter(mode: 'setup' | 'call', base: number, budget: number, readonly: boolean, state: StateAccess | null, top: number): Meter {
  return {
    mode,
    base,
    budget,
    left: budget,
    stopped: false,
    stopLeft: budget,
    oog: false,
    fatal: null,
    hostFault: null,
    readonly,
    state,
    events: [],
    highWater: top,
  };
}

function checkCallContext(ctx: CallContext): void {
  if (typeof ctx !== 'object' || ctx === null) throw new ContractError('CALL_INVALID', 'ctx must be a CallContext');
  if (typeof ctx.contract !== 'string' || !CONTRACT_NAME_RE.test(ctx.contract)) {
    throw new ContractError('CALL_INVALID', `ctx.contract must match ${CONTRACT_NAME_RE.source}`);
  }
  if (typeof ctx.caller !== 'string' || ctx.caller.length > 1024 || UNSAFE_C_STRING_RE.test(ctx.caller)) {
    throw new ContractError('CALL_INVALID', 'ctx.caller must be a string of at most 1024 characters of valid Unicode without U+0000');
  }
  for (const field of ['blockHeight', 'blockTime'] as const) {
    const value = ctx[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new ContractError('CALL_INVALID', `ctx.${field} must be a non-negative safe integer`);
    }
  }
  if (typeof ctx.readonly !== 'boolean') throw new ContractError('CALL_INVALID', 'ctx.readonly must be a boolean');
}

/** Text of an exception that escaped the prelude's entry (rare: only when describing it failed). */
function describeEscaped(context: QuickJSContext, error: QuickJSHandle): string {
  try {
    const dumped = context.dump(error) as unknown;
    if (dumped !== null && typeof dumped === 'object') {
      const { name, message } = dumped as { name?: unknown; message?: unknown };
      if (typeof message === 'string') return typeof name === 'string' ? `${name}: ${message}` : message;
    }
    return String(dumped);
  } catch {
    return 'exception';
  }
}

/** " at contract.js:LINE:COLUMN" from an error's stack (QuickJS puts it there), or "" when it names no place in the bundle. */
function locationIn(context: QuickJSContext, error: QuickJSHandle): string {
  try {
    const dumped = context.dump(error) as { stack?: unknown } | null;
    const stack = dumped !== null && typeof dumped === 'object' && typeof dumped.stack === 'string' ? dumped.stack : '';
    const at = /contract\.js:(\d+)(?::(\d+))?/.exec(stack);
    return at ? ` at contract.js:${at[1]}${at[2] ? `:${at[2]}` : ''}` : '';
  } catch {
    return '';
  }
}

function classifyEscaped(text: string, gas: number): CallOutcome {
  const message = text.slice(0, CALL_LIMITS.MAX_ERROR_MESSAGE);
  if (text.includes('out of memory')) return outcomeFailed('OUT_OF_MEMORY', 'out of memory', gas);
  if (text.includes('stack overflow') || text.includes('Maximum call stack size exceeded')) return outcomeFailed('STACK_OVERFLOW', 'stack overflow', gas);
  return outcomeFailed('CONTRACT_ERROR', message, gas);
}
