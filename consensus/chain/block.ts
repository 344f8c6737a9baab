import { canonicalBytes, type JsonValue } from '../encoding/canonical-json.js';
import { sha256Hex } from '../crypto/hash.js';
import { signingMessage } from '../crypto/signing.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { merkleRoot } from '../crypto/merkle.js';
import type { SignedTx } from './transaction.js';

export interface BlockHeader {
  chainId: string;
  height: number;
  /** Hash of the previous header; 64 zeros for the genesis block. */
  parentHash: string;
  /** Milliseconds since the Unix epoch, chosen by the proposer, never below the parent's. */
  time: number;
  /** Public key of the proposing enclave, lowercase hex. */
  proposer: string;
  txRoot: string;
  receiptsRoot: string;
  stateRoot: string;
  validatorSetHash: string;
  policyHash: string;
}

export interface ContractEvent {
  contract: string;
  name: string;
  data: JsonValue;
}

export type ReceiptStatus = 'success' | 'failed';

/** What execution produced for one transaction; its canonical encoding is a receipts-root leaf. */
export interface Receipt {
  txHash: string;
  index: number;
  status: ReceiptStatus;
  gasUsed: number;
  result: JsonValue;
  events: ContractEvent[];
  error: { code: string; message: string } | null;
}

export type VoteType = 'prevote' | 'precommit';

export interface Vote {
  chainId: string;
  type: VoteType;
  height: number;
  round: number;
  /** The block voted for, or null for a nil vote. */
  blockHash: string | null;
}

export interface VoteSignature {
  /** The signing enclave's public key. */
  validator: string;
  signature: string;
}

/** 2f+1 precommits for one block: the proof that it is committed and final. */
export interface CommitCertificate {
  height: number;
  round: number;
  blockHash: string;
  signatures: VoteSignature[];
}

export interface Block {
  header: BlockHeader;
  txs: SignedTx[];
  certificate: CommitCertificate;
}

export const ZERO_HASH = '0'.repeat(64);

export function headerHash(header: BlockHeader): string {
  return sha256Hex(canonicalBytes(header));
}

export function txRootOf(txHashes: readonly string[]): string {
  return merkleRoot(txHashes.map((h) => Buffer.from(h, 'hex')));
}

export function receiptLeaf(receipt: Receipt): Uint8Array {
  return canonicalBytes(receipt);
}

export function receiptsRootOf(receipts: readonly Receipt[]): string {
  return merkleRoot(receipts.map(receiptLeaf));
}

export function voteMessage(vote: Vote): Uint8Array {
  return signingMessage('vote', vote);
}

export function precommitFor(chainId: string, height: number, round: number, blockHash: string): Vote {
  return { chainId, type: 'precommit', height, round, blockHash };
}

/**
 * Checks a commit certificate against a validator set: every signature is a
 * precommit for this block by a distinct member, and they reach the quorum.
 */
export function verifyCertificate(
  chainId: string,
  certificate: CommitCertificate,
  validators: readonly string[],
  quorum: number,
): boolean {
  const members = new Set(validators);
  const seen = new Set<string>();
  const message = voteMessage(precommitFor(chainId, certificate.height, certificate.round, certificate.blockHash));
  for (const { validator, signature } of certificate.signatures) {
    if (!members.has(validator) || seen.has(validator)) return false;
    if (!verifyEd25519(validator, message, signature)) return false;
    seen.add(validator);
  }
  return seen.size >= quorum;
}

/** Quorum for n validators tolerating f = floor((n-1)/3) Byzantine ones: 2f+1. */
export function quorumSize(n: number): number {
  const f = Math.floor((n - 1) / 3);
  return 2 * f + 1;
}
