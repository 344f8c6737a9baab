import { canonicalBytes, type SignedTx } from '../../consensus/index.js';

/** Versioned gossip topic and protocol names. Bump the version on any incompatible format change. */
export function txTopic(chainId: string): string {
  return `/cloister/${chainId}/tx/1`;
}
export function consensusTopic(chainId: string): string {
  return `/cloister/${chainId}/consensus/1`;
}
export function syncProtocol(chainId: string): string {
  return `/cloister/${chainId}/sync/1`;
}
export function admissionProtocol(chainId: string): string {
  return `/cloister/${chainId}/admission/1`;
}
export function secretProtocol(chainId: string): string {
  return `/cloister/${chainId}/secret/1`;
}
export function txPushProtocol(chainId: string): string {
  return `/cloister/${chainId}/tx-push/1`;
}

/** A tx gossip message: canonical JSON of `{ chainId, txs }`. */
export interface TxBatchMessage {
  chainId: string;
  txs: SignedTx[];
}

export function encodeTxBatch(chainId: string, txs: SignedTx[]): Uint8Array {
  return canonicalBytes({ chainId, txs });
}

/**
 * Splits `txs` into encoded batches of at most `maxBytes` and `maxTxs` each,
 * in order, with the number of transactions in each (a push acknowledges them
 * by position). A single transaction that alone exceeds `maxBytes` is returned
 * in `tooLarge` instead (it can never be gossiped).
 */
export function splitTxBatches(
  chainId: string,
  txs: SignedTx[],
  maxBytes: number,
  maxTxs: number,
): { batches: Uint8Array[]; counts: number[]; tooLarge: SignedTx[] } {
  const overhead = encodeTxBatch(chainId, []).length;
  const batches: Uint8Array[] = [];
  const counts: number[] = [];
  const tooLarge: SignedTx[] = [];
  let current: SignedTx[] = [];
  let size = overhead;
  const flush = (): void => {
    if (current.length > 0) {
      batches.push(encodeTxBatch(chainId, current));
      counts.push(current.length);
    }
    current = [];
    size = overhead;
  };
  for (const tx of txs) {
    const len = canonicalBytes(tx).length + 1; // + the comma
    if (overhead + len > maxBytes) {
      tooLarge.push(tx);
      continue;
    }
    if (size + len > maxBytes || current.length >= maxTxs) flush();
    current.push(tx);
    size += len;
  }
  flush();
  return { batches, counts, tooLarge };
}

