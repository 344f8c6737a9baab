import type { ReceiptProof, StateValueProof } from '../proofs/index.js';
import type { ViewTransitionProof } from '../../contracts/index.js';
import type { BlockHeader, CallAuth, CommitCertificate, ContractEvent, Genesis, JsonValue, SealedPayload, SignedTx } from '../../consensus/index.js';

/** A block as the JSON-RPC API returns it. */
export interface BlockView {
  hash: string;
  height: number;
  parentHash: string;
  time: number;
  proposer: string;
  txRoot: string;
  receiptsRoot: string;
  stateRoot: string;
  validatorSetHash: string;
  policyHash: string;
  chainId: string;
  /** Transaction hashes, or whole transactions when asked for. */
  transactions: string[] | TransactionView[];
  certificate: CommitCertificate | null;
  header: BlockHeader;
}

export type TransactionView = SignedTx & {
  hash: string;
  /** Null while the transaction waits in the mempool. */
  blockHeight: number | null;
  blockHash: string | null;
  index: number | null;
};

/** A sealed call's answer: {result} or {error}, sealed to the caller's result key (consensus openResult). */
export interface SealedCallView {
  sealed: string;
  gasUsed: number;
}

/**
 * An attestation token: a JWT (EdDSA, typ cloister-attestation+jwt) the
 * enclave signed with its token key (evidence.publicKeys.token), restating the
 * fresh evidence beside it; a relying party verifies both (attestation's
 * verifyEvidence, then verifyAttestationToken).
 */
export interface AttestationTokenView {
  token: string;
  evidence: EvidenceView;
}

/** The network encryption key, and this node's enclave's evidence binding it (as evidence.publicKeys.network). */
export interface EncryptionKeyView {
  generation: number;
  publicKey: string;
  evidence: EvidenceView;
}

export interface ReceiptView {
  txHash: string;
  status: 'success' | 'failed';
  blockHeight: number;
  blockHash: string;
  index: number;
  gasUsed: number;
  result: JsonValue;
  events: ContractEvent[];
  error?: { code: string; message: string };
  /** A sealed transaction's answer {result, events, error}, sealed to its sender (then result is null, events empty). */
  sealed?: string;
}

export interface CallResultView {
  result: JsonValue;
  gasUsed: number;
}

export interface EvidenceView {
  platform: string;
  measurement: string;
  /** The enclave's public keys that the evidence's report_data binds. */
  publicKeys: Record<string, string>;
  /** The node and chain the report_data binds (with the keys and the freshness: attestation's reportDataFor). */
  nodeId: string;
  chainId: string;
  /** The freshness value bound: the caller's nonce, or the one the node chose at start. */
  freshness: string;
  reportData: string;
  /** The raw evidence, base64. */
  evidence: string;
  /** The declared virtual vendor root (virtual platform only), PEM. */
  virtualRoot?: string;
}

export interface ContractView {
  name: string;
  measurement: string;
  manifest: JsonValue;
}

export interface StatusView {
  chainId: string;
  nodeId: string;
  height: number;
  headHash: string;
  headTime: number;
  platform: string;
  measurement: string;
  mempoolSize: number;
  genesisHash: string;
  /** Consensus: the height being decided, its round and step. */
  consensus?: { height: number; round: number; step: string };
  /** Validators in the genesis, and how many other nodes are connected and admitted now. */
  validators?: number;
  connectedPeers?: number;
  admittedPeers?: number;
  /** Fetching missed blocks from a peer. */
  syncing?: boolean;
  /**
   * The consortium secret in this node's enclave: the committed generations it
   * holds, and those it lacks (it is receiving them from a peer by attested release).
   */
  secrets?: { held: number[]; missing: number[] };
}

/**
 * Lets the caller refuse a view before it is built: `reserve` is called with
 * an upper bound of the bytes a block's transactions will take as JSON, before
 * they are read, and rejects to refuse them (the RPC's response budget).
 */
export interface ViewBudget {
  reserve(bytes: number): Promise<void>;
}

/**
 * What the JSON-RPC server needs from the chain. Every method validates its
 * inputs and throws a ChainError (typed code) on bad input; the RPC edge maps
 * codes to JSON-RPC errors.
 */
export interface ChainApi {
  status(): StatusView;
  blockNumber(): number;
  getBlockByNumber(height: number, fullTransactions: boolean, budget?: ViewBudget): Promise<BlockView | null>;
  getBlockByHash(hash: string, fullTransactions: boolean, budget?: ViewBudget): Promise<BlockView | null>;
  /** Accepts a signed transaction into the mempool and returns its hash. */
  sendTransaction(tx: unknown): Promise<string>;
  getTransaction(hash: string): Promise<TransactionView | null>;
  getTransactionReceipt(hash: string): Promise<ReceiptView | null>;
  /** The next nonce for the sender, counting transactions waiting in the mempool. */
  getNonce(address: string): Promise<number>;
  /** A read-only call, as the anonymous caller, or as the caller whose signature `auth` carries (checked in the enclave). */
  call(contract: string, method: string, args: JsonValue[], auth?: CallAuth): Promise<CallResultView>;
  /** A read-only call to a confidential contract, sealed to the network key; the answer is sealed to the caller. */
  sealedCall(contract: string, sealed: SealedPayload): Promise<SealedCallView>;
  getEncryptionKey(nonce?: string): Promise<EncryptionKeyView>;
  getGenesis(): Genesis;
  getAttestationToken(nonce: string, audience?: string): Promise<AttestationTokenView>;
  /** The enclave's evidence: made at start, or fresh for the caller's `nonce`. */
  getEvidence(nonce?: string): EvidenceView | Promise<EvidenceView>;
  listContracts(): ContractView[];
  /** Everything a client needs to verify offline that a committed transaction and its receipt are in the ledger (null: not committed here). */
  getReceiptProof(hash: string): Promise<ReceiptProof | null>;
  /** A public contract's key (its value, or its absence) proved under the state root of a recent height (the head when absent). */
  getStateProof(contract: string, key: string, height?: number): Promise<StateValueProof>;
  /** The blocks that changed the validators or the policy, from `fromHeight`, with the new records proved under their state roots. */
  getViewTransitions(fromHeight: number, limit: number): Promise<ViewTransitionProof[]>;
}
