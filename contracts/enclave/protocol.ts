import type { BlockHeader, Genesis, JsonValue, Receipt, SignedTx, Vote } from '../../consensus/index.js';
import type { ExcludedTx } from './executor.js';
import type { StateWrite } from './state.js';

/**
 * The ecalls: the only way the host reaches the enclave. Each request and each
 * response crosses the boundary as bytes (UTF-8 JSON); no object is shared.
 * Calls are batched per block, never per transaction.
 */
export type EcallRequest =
  | { type: 'unseal'; sealed: string | null }
  | InitRequest
  | { type: 'proposeBlock'; parent: BlockHeader; time: number; txs: SignedTx[] }
  | { type: 'executeBlock'; parent: BlockHeader; header: BlockHeader; txs: SignedTx[] }
  | { type: 'commitBlock'; blockHash: string }
  | { type: 'call'; contract: string; method: string; args: JsonValue[]; caller: string }
  | { type: 'getEvidence'; freshness: string }
  | { type: 'admitTxs'; txs: unknown[] }
  | { type: 'signVote'; vote: Vote }
  | { type: 'signProposal'; proposal: { chainId: string; height: number; round: number; polRound: number; blockHash: string } }
  | { type: 'listContracts' };

export interface InitRequest {
  type: 'init';
  genesis: Genesis;
  nodeId: string;
  /** A value the evidence binds, so old evidence cannot be replayed as new. */
  freshness: string;
  /** The last committed block and the state after it; null on a fresh chain. */
  resume: { header: BlockHeader; state: [string, string][] } | null;
}

export interface EnclaveIdentity {
  /** The enclave's public keys by purpose (hex). The private keys never leave the enclave. */
  publicKeys: Record<string, string>;
  platform: string;
  measurement: string;
  reportData: string;
  /** base64 */
  evidence: string;
}

export interface InitResponse {
  identity: EnclaveIdentity;
  /** Present when the enclave built the genesis block (a fresh chain). */
  genesisBlock: { header: BlockHeader; receipts: Receipt[]; writeSet: StateWrite[] } | null;
}

export interface BlockResult {
  header: BlockHeader;
  blockHash: string;
  /** Positions, in the request's transaction list, of the transactions in the block (in block order). */
  included: number[];
  txHashes: string[];
  receipts: Receipt[];
  writeSet: StateWrite[];
  excluded: ExcludedTx[];
}

/** The enclave's verdict on one transaction offered to the mempool. */
export type AdmissionResult = { ok: true; hash: string; size: number } | { ok: false; code: string; message: string };

export interface ContractInfo {
  name: string;
  measurement: string;
  manifest: JsonValue;
}

export type EcallResponse =
  | { ok: true; value: unknown }
  | { ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

/** Requests from the enclave to its platform (the virtual "hardware", or the host's TEE driver). */
export type OcallRequest = { type: 'getReport'; reportData: string } | { type: 'getSealingKey' };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeMessage(message: unknown): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify(message));
}

export function decodeMessage<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}
