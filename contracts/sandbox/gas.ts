/**
 * The gas schedule and per-call limits of the contract sandbox.
 *
 * Everything in this file is part of consensus: every node must use the same
 * numbers, or nodes disagree about gasUsed and about which calls run out of gas.
 * Changing a value is a protocol upgrade, like changing the engine build.
 *
 * How gas is counted (all of it deterministic, none of it measured in time):
 * - CALL_BASE once per call, plus ARGS_PER_BYTE for the canonical JSON of the arguments;
 * - PER_POLL for every "poll point" the QuickJS interpreter passes: each function call
 *   (including calls into built-ins) and each backward jump (loop iteration). QuickJS
 *   decrements a counter at exactly these points; the sandbox reads that counter, so
 *   the count is exact and the same on every machine for the same code and inputs;
 * - a fixed cost plus a cost per byte for each host API call (state access, events);
 * - RESULT_PER_BYTE for the canonical JSON of the return value.
 * When the total would exceed the caller's gas limit the call fails with
 * OUT_OF_GAS and gasUsed = gasLimit.
 *
 * What gas does not see: work done inside a single native built-in (for example
 * `bigArray.indexOf(x)`, `'x'.repeat(n)`, sorting without a comparator) costs one
 * poll however large its input; that work is bounded by the memory limit, not by
 * gas. Contracts are approved by governance; reviewers should look for such calls
 * on sizes a caller controls.
 */
export const GAS = Object.freeze({
  /** Every call: restoring the sandbox, decoding arguments, building the outcome. */
  CALL_BASE: 5_000,
  /** Per byte of the canonical JSON of the argument array. */
  ARGS_PER_BYTE: 2,
  /** Per byte of the canonical JSON of the return value. */
  RESULT_PER_BYTE: 2,
  /** Per interpreter poll point (one function call or one loop iteration, roughly 20-50 ns of work). */
  PER_POLL: 10,
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
   *  (PER_POLL per poll point; no host API is available there). */
  setupGasLimit: 20_000_000,
  /** Bundles kept compiled at once; each takes one WebAssembly instance (not consensus-relevant). */
  maxCachedBundles: 8,
});

/** QuickJS poll points between two calls of the interrupt handler (performance only, not consensus). */
export const POLL_INTERVAL = 1024;
