import type { JsonValue } from '../../consensus/index.js';
import type { CallErrorCode } from './errors.js';

/**
 * The contract's key-value state, as the executor exposes it to one call. The
 * executor buffers writes per transaction and drops them when the outcome is
 * 'failed', so the sandbox never rolls anything back itself. Values handed to
 * set() are canonical JSON (safe integers only) and never null: state.set(key, null)
 * in a contract is a delete. Exceptions thrown here are host faults: they abort
 * the call and are rethrown by ContractRuntime.call.
 */
export interface StateAccess {
  get(key: string): JsonValue | null;
  set(key: string, value: JsonValue): void;
  delete(key: string): void;
}

/** What consensus tells a call about its surroundings. */
export interface CallContext {
  /** The deployed contract's name (cloister.contract). */
  contract: string;
  /** The sender's public key, lowercase hex (cloister.caller). */
  caller: string;
  /** Height of the block being executed (cloister.block.height). */
  blockHeight: number;
  /** Block time in milliseconds since the epoch, chosen by consensus (cloister.block.time). */
  blockTime: number;
  /** A query or other read-only execution: writes and events fail even for non-readonly methods. */
  readonly: boolean;
}

export interface CallEvent {
  name: string;
  data: JsonValue;
}

export interface CallOutcome {
  status: 'success' | 'failed';
  /** The method's return value (undefined becomes null); null when failed. */
  result: JsonValue;
  gasUsed: number;
  /** Events in emission order; always [] when failed. */
  events: CallEvent[];
  error: { code: CallErrorCode; message: string } | null;
}

export interface SandboxOptions {
  /** Heap available to one call, roughly (default 32 MiB; 1 MiB..1 GiB). Consensus parameter. */
  memoryLimitBytes?: number;
  /** QuickJS stack limit in bytes (default 64 KiB; 16 KiB..128 KiB; 128 KiB needs a host stack of
   *  at least 600 KiB, e.g. a Worker with resourceLimits.stackSizeMb). Consensus parameter. */
  maxStackBytes?: number;
  /** Gas for a bundle's top-level code, metered like a call's (default 20,000,000). Consensus parameter. */
  setupGasLimit?: number;
  /** Bundles kept compiled, one WebAssembly instance each (default 8; 1..64). */
  maxCachedBundles?: number;
  /** Expected SHA-256 of the QuickJS WebAssembly binary; defaults to the pinned build. Whatever
   *  it is, the binary after fuel instrumentation must match METERED_WASM_SHA256. */
  engineSha256?: string;
}
