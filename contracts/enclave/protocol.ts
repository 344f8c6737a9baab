import type { BlockHeader, CallAuth, CommitCertificate, Genesis, GenesisValidator, JsonValue, LastSign, Receipt, SealedPayload, SignedTx, SignedVote, SignerLock, StateProof, Vote } from '../../consensus/index.js';
import type { ExcludedTx } from './executor.js';
import type { AdmissionClaim } from './peer-evidence.js';
import type { SealedRelease } from './secret-release.js';
import type { StateWrite } from './state.js';
import type { ChainView } from './chain-view.js';

/**
 * The ecalls: the only way the host reaches the enclave. Each request and each
 * response crosses the boundary as bytes (UTF-8 JSON); no object is shared.
 * The enclave parses every request itself (ecall-parse.ts) and trusts none of
 * it: blocks are re-executed, state is checked against a certified root,
 * votes against its own safety rules. Calls are batched per block, never per
 * transaction.
 */
export type EcallRequest =
  | UnsealRequest
  | InitRequest
  | { type: 'proposeBlock'; time: number; txs: unknown[] }
  | { type: 'executeBlock'; header: BlockHeader; txs: unknown[] }
  | { type: 'commitBlock'; blockHash: string; certificate: CommitCertificate }
  | CallRequest
  | SealedCallRequest
  | { type: 'getEvidence'; freshness: string }
  | { type: 'admissionEvidence'; challenge: string }
  | { type: 'getEncryptionKey'; freshness: string }
  | { type: 'getAttestationToken'; freshness: string; audience: string | null; now: number }
  | { type: 'secretChallenge' }
  | { type: 'secretRequest'; nonce: string }
  | ReleaseSecretRequest
  | { type: 'acceptSecret'; release: SealedRelease }
  | { type: 'admitTxs'; txs: unknown[] }
  | { type: 'nonces'; addresses: string[] }
  | { type: 'signVote'; vote: Vote; justification: SignedVote[] }
  | { type: 'signProposal'; proposal: ProposalToSign }
  | { type: 'listContracts' }
  /** A proof of a state key (its full key, e.g. c:<contract>:<key>) at a recent committed height, the head when null. */
  | { type: 'stateProof'; key: string; height: number | null }
  /**
   * A validator's enclave hands its place to its successor (a new program's
   * enclave on the same node): it checks the successor's claim and returns
   * the `handover` transaction signed with its vote key, with this nonce.
   */
  | { type: 'signHandover'; claim: AdmissionClaim; nonce: number; now: number };

export type EcallType = EcallRequest['type'];

export interface UnsealRequest {
  type: 'unseal';
  /** Every sealed blob the host kept (the enclave takes the newest that opens); none on a new node. */
  sealed: string[];
}

export interface UnsealResponse {
  publicKeys: Record<string, string>;
  sealed: string;
  /** Index of the blob the identity was opened from (null: a new identity); the host writes the next seal elsewhere. */
  from: number | null;
  /** The safety state: where a restarted validator resumes consensus. */
  lastSign: LastSign | null;
  lock: SignerLock | null;
}

export interface InitRequest {
  type: 'init';
  genesis: Genesis;
  nodeId: string;
  /** A value the evidence binds, so old evidence cannot be replayed as new. */
  freshness: string;
  /**
   * The last committed block, its commit certificate (null for the genesis
   * block) and the state after it; null on a fresh chain. The enclave rebuilds
   * the state tree and refuses state whose root is not the header's, and a
   * header that is not certified by the validators (or is not this genesis).
   */
  resume: { header: BlockHeader; certificate: CommitCertificate | null; state: [string, string][] } | null;
}

export interface CallRequest {
  type: 'call';
  contract: string;
  method: string;
  args: JsonValue[];
  /** The caller's signature over this call (consensus/chain/call-auth.ts), or null for the anonymous caller. */
  auth: CallAuth | null;
}

/** A read-only call to a confidential contract: method, arguments and the optional auth sealed to the network key. */
export interface SealedCallRequest {
  type: 'sealedCall';
  contract: string;
  sealed: SealedPayload;
}

/** The answer to a sealed call: {result} or {error: {code, message}}, sealed to the caller's result key. */
export interface SealedCallResponse {
  sealed: string;
  gasUsed: number;
}

/**
 * A peer's enclave asks this one for the consortium secret (secret-release.ts):
 * its claim (evidence binding its keys to the nonce this enclave issued), the
 * node the transport authenticated, and the host's time (the enclave never
 * takes a time earlier than its last committed block's).
 */
export interface ReleaseSecretRequest {
  type: 'releaseSecret';
  nonce: string;
  peerNodeId: string;
  claim: AdmissionClaim;
  now: number;
}

/** The network encryption key of the newest generation, and evidence of this enclave binding it (as publicKeys.network). */
export interface EncryptionKeyResponse {
  generation: number;
  publicKey: string;
  identity: EnclaveIdentity;
}

/** What the enclave holds of the consortium secret. */
export interface SecretStatus {
  /** Generations committed on the ledger that this enclave does not hold: the host fetches them from a peer. */
  missing: number[];
  /** Generations committed and held. */
  held: number[];
}

export interface ProposalToSign {
  chainId: string;
  height: number;
  round: number;
  polRound: number;
  blockHash: string;
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
  /** The safety state after init (a resumed head's certificate may have moved the last signature forward). */
  signer: { lastSign: LastSign | null; lock: SignerLock | null };
  /** The identity sealed again when init changed the safety state; the host stores it. */
  sealed: string | null;
  /** Present when the enclave built the genesis block (a fresh chain). */
  genesisBlock: { header: BlockHeader; receipts: Receipt[]; writeSet: StateWrite[] } | null;
  secrets: SecretStatus;
  /** The chain view of the next block (the genesis, with what governance changed since). */
  view: ChainView;
}

export interface BlockResult {
  header: BlockHeader;
  blockHash: string;
  /** Positions, in the request's transaction list, of the transactions in the block (in block order). */
  included: number[];
  txHashes: string[];
  receipts: Receipt[];
  /** The state changes, opaque to the host: it stores them and hands them back at start. */
  writeSet: StateWrite[];
  excluded: ExcludedTx[];
  /** Senders whose next nonce this block moves, with the new next nonce (what the mempool needs). */
  nonces: [address: string, nextNonce: number][];
  /** True when the block deploys, upgrades or retires a contract (the host then asks listContracts again). */
  contractsChanged: boolean;
  /** The validators of the next height when this block changes them (governance: a node added or removed); null otherwise. */
  nextValidators: GenesisValidator[] | null;
  /** Transactions the proposing enclave put first in its block itself (a system transaction: the secret's commitment). */
  added: SignedTx[];
}

export interface CommitResult {
  height: number;
  /**
   * The identity sealed again when the certificate showed this enclave's key
   * signed a later slot than its sealed record (another copy of it, or a
   * restored backup): the record moved past it, and the host stores the seal.
   */
  sealed: string | null;
  secrets: SecretStatus;
  /** The chain view of the next block, when this block changed it (governance); null otherwise. */
  view: ChainView | null;
  /**
   * When this block changed the validators or the attestation policy (what
   * the next header commits to): their values proved under this block's
   * state root, kept by the host so that proofs and ledger checks can follow
   * the change from the genesis without the state. Null otherwise.
   */
  viewTransition: ViewTransitionProof | null;
}

/** A state value (canonical JSON text; null when absent) with its proof under a state root. */
export interface ProvedStateValue {
  value: string | null;
  proof: StateProof;
}

/**
 * The validator set and the attestation policy records (g:validators,
 * g:policy) after block `height`, proved under its header's state root: the
 * view of height + 1 is the genesis with these records. A record that is
 * absent (null) means the genesis setting.
 */
export interface ViewTransitionProof {
  height: number;
  validators: ProvedStateValue;
  policy: ProvedStateValue;
}

/** The answer to a stateProof ecall. */
export interface StateProofResult {
  height: number;
  value: string | null;
  proof: StateProof;
}

/** The enclave's verdict on one transaction offered to the mempool, with its sender's committed next nonce. */
export type { AdmissionClaim, SealedRelease };

export type AdmissionResult = { ok: true; hash: string; size: number; nonce: number } | { ok: false; code: string; message: string };

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

/** Decodes UTF-8 JSON bytes. The result is unchecked: the receiving side parses it (ecall-parse.ts in the enclave). */
export function decodeMessage<T>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}
