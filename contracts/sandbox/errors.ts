/**
 * Why a contract call failed. Every code is a deterministic outcome: the same
 * bundle, method, arguments, context, gas limit and state give the same code,
 * message and gasUsed on every node. (Host problems are exceptions instead:
 * see ContractError in contracts/bundle/errors.ts.)
 */
export type CallErrorCode =
  /** Gas ran out (or the limit was below the base cost). gasUsed = gasLimit. */
  | 'OUT_OF_GAS'
  /** The sandbox's fixed memory was exhausted (an allocation failed). */
  | 'OUT_OF_MEMORY'
  /** The QuickJS stack limit was reached (deep recursion). */
  | 'STACK_OVERFLOW'
  /** The contract threw an exception that nothing caught; the message is the error's message. */
  | 'CONTRACT_ERROR'
  /** The method is not in the manifest, or is `init` (which only runs at deployment). */
  | 'UNKNOWN_METHOD'
  /** Arguments are not an array of canonical JSON values, or are larger than MAX_ARGS_BYTES;
   *  or init arguments were given to a bundle without init. */
  | 'INVALID_ARGS'
  /** contract.js does not compile as an ES module, its top-level code threw or ran out of
   *  setup gas, or it does not export a function for every method in the manifest. */
  | 'CODE_INVALID'
  /** state.set / state.delete / emit in a read-only call (fatal even if the contract catches it). */
  | 'READONLY_VIOLATION'
  /** A state value, event data or return value is not canonical JSON: floats, NaN, undefined,
   *  BigInt, functions, class instances, Promises, or nesting deeper than 64 (fatal). */
  | 'VALUE_NOT_ENCODABLE'
  /** A state value, event data or return value is larger than MAX_VALUE_BYTES (fatal). */
  | 'VALUE_TOO_LARGE'
  /** A state key is not a string of 1..256 UTF-8 bytes of valid Unicode without U+0000 (fatal). */
  | 'INVALID_KEY'
  /** An event name is not a string matching EVENT_NAME_RE (fatal). */
  | 'INVALID_EVENT'
  /** More than MAX_EVENTS events in one call (fatal). */
  | 'LIMIT_EXCEEDED';

export const CALL_ERROR_CODES: readonly CallErrorCode[] = Object.freeze([
  'OUT_OF_GAS',
  'OUT_OF_MEMORY',
  'STACK_OVERFLOW',
  'CONTRACT_ERROR',
  'UNKNOWN_METHOD',
  'INVALID_ARGS',
  'CODE_INVALID',
  'READONLY_VIOLATION',
  'VALUE_NOT_ENCODABLE',
  'VALUE_TOO_LARGE',
  'INVALID_KEY',
  'INVALID_EVENT',
  'LIMIT_EXCEEDED',
]);

export function isCallErrorCode(value: unknown): value is CallErrorCode {
  return typeof value === 'string' && (CALL_ERROR_CODES as readonly string[]).includes(value);
}
