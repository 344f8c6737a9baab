import { canonicalBytes, type JsonValue } from '../encoding/canonical-json.js';
import { sha256Hex } from '../crypto/hash.js';
import { signingMessage } from '../crypto/signing.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { merkleRoot } from '../crypto/merkle.js';
import { isHexOfLength } from '../encoding/hex.js';
import { ChainError } from '../errors.js';
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
  /**
   * A sealed transaction's answer {result, events, error}, sealed to its sender
   * (consensus/chain/confidential.ts, sealResult): then result is null, events
   * empty and error, when it failed, only says so. Absent for public transactions.
   */
  sealed?: string;
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

/**
 * Quorum for n validators tolerating f = floor((n-1)/3) Byzantine ones:
 * ceil((n+f+1)/2), the smallest size whose any two sets share f+1 validators
 * (so at least one honest one), while the n-f honest ones still make one.
 * It is 2f+1 when n = 3f+1 (4 → 3, 7 → 5); for the other sizes governance can
 * make it is more: 5 → 4, 6 → 4, 3 → 2, 2 → 2 (2f+1 would let two disjoint
 * halves of 5 validators, or one of 3, commit different blocks).
 */
export function quorumSize(n: number): number {
  const f = Math.floor((n - 1) / 3);
  return Math.ceil((n + f + 1) / 2);
}

const HEADER_KEYS = ['chainId', 'height', 'parentHash', 'time', 'proposer', 'txRoot', 'receiptsRoot', 'stateRoot', 'validatorSetHash', 'policyHash'];
const HASH_FIELDS = ['parentHash', 'proposer', 'txRoot', 'receiptsRoot', 'stateRoot', 'validatorSetHash', 'policyHash'] as const;

function isRecord(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(obj);
  return own.length === keys.length && own.every((k) => keys.includes(k));
}

function nonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Checks that `raw` is exactly a block header (every field, no other, hashes as
 * 32 bytes of lowercase hex) and returns a clean copy. `what` names it in the
 * error (ChainError BLOCK_INVALID).
 */
export function parseBlockHeader(raw: unknown, what = 'header'): BlockHeader {
  const fail = (why: string): never => {
    throw new ChainError('BLOCK_INVALID', `${what}: ${why}`);
  };
  if (!isRecord(raw) || !exactKeys(raw, HEADER_KEYS)) return fail(`must have exactly the fields ${HEADER_KEYS.join(', ')}`);
  if (typeof raw.chainId !== 'string' || raw.chainId.length === 0 || raw.chainId.length > 64) fail('chainId');
  if (!nonNegativeInt(raw.height)) fail('height must be a non-negative integer');
  if (!nonNegativeInt(raw.time)) fail('time must be a non-negative integer');
  for (const field of HASH_FIELDS) if (!isHexOfLength(raw[field], 32)) fail(`${field} must be 32 bytes of lowercase hex`);
  return {
    chainId: raw.chainId as string,
    height: raw.height as number,
    parentHash: raw.parentHash as string,
    time: raw.time as number,
    proposer: raw.proposer as string,
    txRoot: raw.txRoot as string,
    receiptsRoot: raw.receiptsRoot as string,
    stateRoot: raw.stateRoot as string,
    validatorSetHash: raw.validatorSetHash as string,
    policyHash: raw.policyHash as string,
  };
}

/** Checks the shape of a vote (not its signature); throws ChainError BLOCK_INVALID. */
export function parseVote(raw: unknown, what = 'vote'): Vote {
  const fail = (why: string): never => {
    throw new ChainError('BLOCK_INVALID', `${what}: ${why}`);
  };
  if (!isRecord(raw) || !exactKeys(raw, ['chainId', 'type', 'height', 'round', 'blockHash'])) return fail('must be {chainId, type, height, round, blockHash}');
  if (typeof raw.chainId !== 'string') fail('chainId');
  if (raw.type !== 'prevote' && raw.type !== 'precommit') fail('type must be prevote or precommit');
  if (!nonNegativeInt(raw.height) || !nonNegativeInt(raw.round)) fail('height and round must be non-negative integers');
  if (raw.blockHash !== null && !isHexOfLength(raw.blockHash, 32)) fail('blockHash must be null or 32 bytes of lowercase hex');
  return { chainId: raw.chainId as string, type: raw.type as VoteType, height: raw.height as number, round: raw.round as number, blockHash: raw.blockHash as string | null };
}

/** Checks the shape of a commit certificate (not its signatures); throws ChainError CERTIFICATE_INVALID. */
export function parseCommitCertificate(raw: unknown, maxSignatures = 1024): CommitCertificate {
  const fail = (why: string): never => {
    throw new ChainError('CERTIFICATE_INVALID', `certificate: ${why}`);
  };
  if (!isRecord(raw) || !exactKeys(raw, ['height', 'round', 'blockHash', 'signatures'])) return fail('must be {height, round, blockHash, signatures}');
  if (!nonNegativeInt(raw.height) || !nonNegativeInt(raw.round)) fail('height and round must be non-negative integers');
  if (!isHexOfLength(raw.blockHash, 32)) fail('blockHash must be 32 bytes of lowercase hex');
  if (!Array.isArray(raw.signatures) || raw.signatures.length > maxSignatures) fail(`signatures must be an array of at most ${maxSignatures}`);
  const signatures = (raw.signatures as unknown[]).map((s): VoteSignature => {
    if (!isRecord(s) || !exactKeys(s, ['validator', 'signature']) || !isHexOfLength(s.validator, 32) || !isHexOfLength(s.signature, 64)) {
      return fail('each signature must be {validator: 32-byte hex, signature: 64-byte hex}');
    }
    return { validator: s.validator as string, signature: s.signature as string };
  });
  return { height: raw.height as number, round: raw.round as number, blockHash: raw.blockHash as string, signatures };
}
