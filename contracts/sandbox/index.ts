export { ContractRuntime } from './runtime.js';
export type { StateAccess, CallContext, CallOutcome, CallEvent, SandboxOptions } from './types.js';
export { CALL_ERROR_CODES, isCallErrorCode, type CallErrorCode } from './errors.js';
export { GAS, CALL_LIMITS, EVENT_NAME_RE, DEFAULT_SANDBOX_OPTIONS, POLL_INTERVAL } from './gas.js';
export { QUICKJS_WASM_SHA256, FIXED_MEMORY_BYTES } from './engine.js';
