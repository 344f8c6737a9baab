import { canonicalize, type JsonValue } from '../../consensus/index.js';

/**
 * The gas schedule and per-call limits of the contract sandbox.
 *
 * Everything in this file is part of consensus: every node must use the same
 * numbers, or nodes disagree about gasUsed and about which calls run out of gas.
 * Changing a value is a protocol upgrade, like changing the engine build.
 *
 * How gas is counted (all of it deterministic, none of it measured in time):
 * - CALL_BASE once per call, plus ARGS_PER_BYTE for the canonical JSON of the arguments
 *   (callBaseCost);
 * - the engine's own work, as fuel: the QuickJS WebAssembly binary is rewritten so
 *   that every function entry and every loop iteration of the compiled engine takes
 *   FUEL.PER_STEP, and every memory.copy / memory.fill takes FUEL.PER_STEP plus one per
 *   2^FUEL.BULK_BYTE_SHIFT bytes (wasm-fuel.ts). This sees everything the contract
 *   makes the engine do: the interpreter, every built-in (`indexOf`, `normalize`,
 *   BigInt arithmetic, `sort`, JSON, regexps), operators on long strings, property
 *   lookups, allocation and garbage collection. FUEL.PER_GAS fuel make one gas;
 * - a fixed cost plus a cost per byte for each host API call (state access, events),
 *   taken from the same budget at the moment of the call;
 * - RESULT_PER_BYTE for the canonical JSON of the return value.
 * When the budget is exhausted the engine traps at its next step and the call fails
 * with OUT_OF_GAS and gasUsed = gasLimit.
 */
export const GAS = Object.freeze({
  /** Every call: restoring the sandbox, decoding arguments, building the outcome. */
  CALL_BASE: 5_000,
  /** Per byte of the canonical JSON of the argument array. */
  ARGS_PER_BYTE: 2,
  /** Per byte of the canonical JSON of the return value. */
  RESULT_PER_BYTE: 2,
  /** cloister.state.get: fixed part. */
  STATE_READ_BASE: 500,
  /** cloister.state.get: per byte of key plus value read. */
  STATE_READ_PER_BYTE: 2,
  /** cloister.state.set: fixed part (a write is stored by every node and kept forever). */
  STATE_WRITE_BASE: 2_000,
  /** cloister.state.set: per byte of key plus value written. */
  STATE_WRITE_PER_BYTE: 10,
  /** cloister.state.delete (and state.set(key, null)): fixed part; plus STATE_WRITE_PER_BYTE per key byte. */
  STATE_DELETE_BASE: 1_000,
  /** cloister.emit: fixed part. */
  EMIT_BASE: 500,
  /** cloister.emit: per byte of event name plus canonical JSON data. */
  EMIT_PER_BYTE: 5,
});

/**
 * The fuel schedule: what the instrumented engine charges for its own work. PER_STEP
 * and BULK_BYTE_SHIFT are compiled into the instrumented binary (whose SHA-256 is
 * pinned in engine-build.ts); PER_GAS converts fuel to gas.
 */
export const FUEL = Object.freeze({
  /** Fuel per function entry and per loop iteration of the compiled engine. */
  PER_STEP: 1,
  /** memory.copy and memory.fill take PER_STEP + (length >> BULK_BYTE_SHIFT) fuel. */
  BULK_BYTE_SHIFT: 5,
  /** Fuel per unit of gas (the fuel a call uses is rounded up to whole gas). */
  PER_GAS: 1,
});

/** The gas a call costs before it runs: CALL_BASE + ARGS_PER_BYTE per byte of the arguments' canonical JSON. */
export function baseCostOfArgsBytes(argsBytes: number): number {
  return GAS.CALL_BASE + GAS.ARGS_PER_BYTE * argsBytes;
}

/**
 * The base cost of calling a method with `args`, exactly as ContractRuntime.call
 * charges it before the contract runs: a transaction whose gas limit is below this
 * fails with OUT_OF_GAS without running. Pure. Throws the canonical encoder's error
 * when `args` is not an array of canonical JSON values; such a call, like one whose
 * arguments exceed CALL_LIMITS.MAX_ARGS_BYTES, fails with INVALID_ARGS instead
 * (charged CALL_BASE, or the gas limit if lower).
 */
export function callBaseCost(args: readonly JsonValue[]): number {
  if (!Array.isArray(args)) throw new TypeError('args must be an array');
  return baseCostOfArgsBytes(Buffer.byteLength(canonicalize(args), 'utf8'));
}

/**
 * Limits checked on every call; also part of consensus. Violations fail the call
 * with the error code given in contracts/sandbox/errors.ts.
 */
export const CALL_LIMITS = Object.freeze({
  /** State keys: 1..256 bytes of UTF-8, valid Unicode, no U+0000 (INVALID_KEY). */
  MAX_KEY_BYTES: 256,
  /** A state value, an event's data or a return value, as canonical JSON (VALUE_TOO_LARGE). */
  MAX_VALUE_BYTES: 64 * 1024,
  /** The canonical JSON of the argument array (INVALID_ARGS). */
  MAX_ARGS_BYTES: 64 * 1024,
  /** Events per call (LIMIT_EXCEEDED). */
  MAX_EVENTS: 256,
  /** Error messages recorded in an outcome are cut to this many characters. */
  MAX_ERROR_MESSAGE: 1_000,
});

/** Event names follow the same rule as method names. */
export const EVENT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Engine defaults, overridable through SandboxOptions. These are consensus
 * parameters too: every node must run with the same values.
 */
export const DEFAULT_SANDBOX_OPTIONS = Object.freeze({
  /** Heap available to one call, roughly: the instance's linear memory is 8 MiB + this. */
  memoryLimitBytes: 32 * 1024 * 1024,
  /** QuickJS stack limit (about 300 nested plain calls). Kept small so that QuickJS reports
   *  STACK_OVERFLOW long before the host's own native stack, whose use per QuickJS frame
   *  depends on V8's compiler tier, could overflow inside WebAssembly: measured worst cases
   *  use about 6 bytes of native stack per byte of QuickJS stack, and 64 KiB stays safe with
   *  a host stack as small as 300 KiB (node --stack-size=300). */
  maxStackBytes: 64 * 1024,
  /** Gas for evaluating contract.js's top-level code once, when a bundle is loaded
   *  (fuel only: no host API is available there). */
  setupGasLimit: 20_000_000,
  /** Bundles kept compiled at once; each takes one WebAssembly instance (not consensus-relevant). */
  maxCachedBundles: 8,
});

/** QuickJS poll points between two calls of the interrupt handler, which stops the VM after a
 *  fatal API error and tracks the heap's high-water mark (performance only, not consensus:
 *  poll points cost no gas). */
export const POLL_INTERVAL = 1024;
