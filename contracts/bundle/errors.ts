/**
 * Errors raised by the contract tooling itself (bundles, manifests, the sandbox
 * host). They are thrown to the caller, never recorded in a receipt: what a
 * contract call does wrong is a `CallOutcome` with status 'failed' (see
 * contracts/sandbox/errors.ts), not an exception.
 *
 * Callers branch on `code`, never on the message.
 */
export type ContractErrorCode =
  /** manifest.json is not JSON, or does not follow the manifest schema. */
  | 'MANIFEST_INVALID'
  /** The bundle directory, manifest.json or contract.js does not exist. */
  | 'BUNDLE_NOT_FOUND'
  /** The bundle object is malformed (not `{ manifest, code }`, extra fields, ...). */
  | 'BUNDLE_INVALID'
  /** contract.js is not acceptable text: invalid UTF-8, a byte order mark, a NUL character, too large. */
  | 'CODE_INVALID'
  /** A ContractRuntime method was called with arguments that the host should never produce
   *  (bad CallContext, non-integer gas limit, a call while another call is running, after dispose). */
  | 'CALL_INVALID'
  /** The QuickJS engine is not the pinned build, or its self-check at start-up failed. */
  | 'SANDBOX_UNSUPPORTED'
  /** The engine failed in a way that says nothing about the contract (for example the host's own
   *  stack overflowed inside WebAssembly). The sandbox was reset; the call has no outcome and must
   *  not be recorded. */
  | 'SANDBOX_FAULT';

export class ContractError extends Error {
  override readonly name = 'ContractError';
  constructor(
    readonly code: ContractErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isContractError(err: unknown): err is ContractError {
  return err instanceof ContractError;
}
