import { TopicValidatorResult } from '@libp2p/gossipsub';
import { parseSignedTx, type SignedTx } from '../../consensus/index.js';

export { TopicValidatorResult };

/** Accept: deliver and relay. Ignore: drop, nobody blamed. Reject: drop and lower the sender's score. */
export type Verdict = 'accept' | 'ignore' | 'reject';

export interface ValidationOutcome<T> {
  verdict: Verdict;
  /** A short machine-readable reason, for logs and counters. */
  reason: string;
  value?: T;
}

export function toTopicResult(verdict: Verdict): TopicValidatorResult {
  switch (verdict) {
    case 'accept':
      return TopicValidatorResult.Accept;
    case 'reject':
      return TopicValidatorResult.Reject;
    default:
      return TopicValidatorResult.Ignore;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 + JSON parse; undefined when either fails. Never throws. */
export function parseJsonBytes(data: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(utf8.decode(data)) as unknown };
  } catch {
    return { ok: false };
  }
}

export interface TxBatchLimits {
  maxBytes: number;
  maxTxs: number;
}

/**
 * Stateless checks of a tx gossip message, cheapest first:
 * size → UTF-8/JSON → envelope shape → chain id → every tx's shape (parseSignedTx)
 * → tx chain ids → duplicate transactions inside the batch.
 * Signatures are not checked here (see the `txBatchValidator` hook).
 */
export function validateTxBatch(data: Uint8Array, chainId: string, limits: TxBatchLimits): ValidationOutcome<SignedTx[]> {
  if (data.length === 0) return { verdict: 'reject', reason: 'empty' };
  if (data.length > limits.maxBytes) return { verdict: 'reject', reason: 'too_large' };
  const parsed = parseJsonBytes(data);
  if (!parsed.ok) return { verdict: 'reject', reason: 'not_json' };
  const raw = parsed.value;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { verdict: 'reject', reason: 'not_object' };
  const obj = raw as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length !== 2 || typeof obj.chainId !== 'string' || !Array.isArray(obj.txs)) {
    return { verdict: 'reject', reason: 'bad_envelope' };
  }
  if (obj.chainId !== chainId) return { verdict: 'ignore', reason: 'wrong_chain' };
  const list = obj.txs as unknown[];
  if (list.length === 0) return { verdict: 'reject', reason: 'empty_batch' };
  if (list.length > limits.maxTxs) return { verdict: 'reject', reason: 'too_many_txs' };
  const txs: SignedTx[] = [];
  const signatures = new Set<string>();
  for (const item of list) {
    let tx: SignedTx;
    try {
      tx = parseSignedTx(item);
    } catch {
      return { verdict: 'reject', reason: 'malformed_tx' };
    }
    if (tx.chainId !== chainId) return { verdict: 'reject', reason: 'tx_wrong_chain' };
    // ed25519 signatures are deterministic: the same signed tx twice has the same signature.
    if (signatures.has(tx.signature)) return { verdict: 'reject', reason: 'duplicate_tx' };
    signatures.add(tx.signature);
    txs.push(tx);
  }
  return { verdict: 'accept', reason: 'ok', value: txs };
}

/**
 * A pluggable consensus-message validator. It runs after the size cap. It must
 * not throw (a throw counts as `ignore`, not as the sender's fault).
 */
export type ConsensusValidator = (
  data: Uint8Array,
  fromPeerId: string,
) => Verdict | ValidationOutcome<unknown> | Promise<Verdict | ValidationOutcome<unknown>>;

/**
 * The default consensus check until consensus supplies its own: a UTF-8 JSON
 * object with a string `type`; a `chainId` other than ours is ignored.
 */
export function defaultConsensusValidator(chainId: string): ConsensusValidator {
  return (data) => {
    const parsed = parseJsonBytes(data);
    if (!parsed.ok) return { verdict: 'reject', reason: 'not_json' };
    const v = parsed.value;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { verdict: 'reject', reason: 'not_object' };
    const obj = v as Record<string, unknown>;
    if (typeof obj.type !== 'string') return { verdict: 'reject', reason: 'no_type' };
    if (obj.chainId !== undefined && obj.chainId !== chainId) return { verdict: 'ignore', reason: 'wrong_chain' };
    return { verdict: 'accept', reason: 'ok' };
  };
}

export function normalizeOutcome<T>(r: Verdict | ValidationOutcome<T>): ValidationOutcome<T> {
  return typeof r === 'string' ? { verdict: r, reason: r } : r;
}
