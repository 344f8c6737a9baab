/** Shape checks shared by the proof verifiers (their input is untrusted JSON). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A transaction in a proof or a ledger is checked for its signature and chain only: the size and gas limits were the chain's to apply. */
export const NO_TX_LIMITS = { maxTxBytes: Number.MAX_SAFE_INTEGER, maxGasLimit: Number.MAX_SAFE_INTEGER } as const;
