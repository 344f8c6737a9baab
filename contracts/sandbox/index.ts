export { ContractRuntime } from './runtime.js';
export type { StateAccess, CallContext, CallOutcome, CallEvent, SandboxOptions } from './types.js';
export { CALL_ERROR_CODES, isCallErrorCode, type CallErrorCode } from './errors.js';
export { GAS, FUEL, CALL_LIMITS, EVENT_NAME_RE, DEFAULT_SANDBOX_OPTIONS, POLL_INTERVAL, callBaseCost } from './gas.js';
export { FIXED_MEMORY_BYTES } from './engine.js';
export { QUICKJS_WASM_SHA256, METERED_WASM_SHA256 } from './engine-build.js';
