import type { BlockHeader, CommitCertificate, JsonValue, MerkleProof, Receipt, SignedTx, StateProof } from '../../consensus/index.js';
import type { ViewTransitionProof } from '../../contracts/index.js';

/**
 * The proof formats a node serves (chain_getReceiptProof, chain_getStateProof)
 * and `cloister receipt|state verify` checks offline: plain JSON, verified with
 * nothing but the consortium's genesis (and the vendor roots pinned in the
 * attestation library). Modelled on CCF's receipts (leaf, Merkle path,
 * signature, and what endorses the signer) and CometBFT's `/tx?prove=true`.
 */

/**
 * What a node knows of one certificate signer's enclave: the evidence that
 * binds its keys to its node and this chain (and the freshness value it was
 * made for), which the verifier checks against the vendor roots and the
 * attestation policy of the block's height.
 */
export interface SignerAttestation {
  /** The enclave's vote key: the key in the certificate. */
  validator: string;
  nodeId: string;
  publicKeys: Record<string, string>;
  /** The value the evidence's report_data binds beside the keys, chain and node. */
  freshness: string;
  /** The evidence, base64. */
  evidence: string;
  /**
   * Where the ledger records this evidence: the signer's `attest`
   * transaction, its path to the txRoot of the block that committed it, and
   * that block's header and certificate. The evidence then binds the block's
   * parent (freshness), so it was made at that height, and the verifier
   * judges it at that block's time. Absent when the ledger holds none yet for
   * this signer: the evidence is what the serving node verified (its own, or
   * the peer's at its last admission).
   */
  ledger?: {
    tx: SignedTx;
    txPath: MerkleProof;
    header: BlockHeader;
    certificate: CommitCertificate;
  };
}

/**
 * One governance change of the validators or the policy: block `proof.height`
 * (its header and certificate, signed by the set in force before it) and the
 * new records proved under its state root. They are in force from the next height.
 */
export interface ViewTransition {
  header: BlockHeader;
  certificate: CommitCertificate;
  proof: ViewTransitionProof;
}

/** A header with its commit certificate and what shows the certificate's signers were the validators of its height, attested. */
export interface CertifiedHeader {
  header: BlockHeader;
  certificate: CommitCertificate;
  /** Every change of the validators or the policy from the genesis up to below this height, in height order. */
  transitions: ViewTransition[];
  /** One per certificate signer. */
  attestations: SignerAttestation[];
}

export const RECEIPT_PROOF_KIND = 'cloister/receipt-proof/v1';
export const STATE_PROOF_KIND = 'cloister/state-proof/v1';

/** That a transaction is in a block, with its receipt exactly as the receipts root hashes it. */
export interface ReceiptProof {
  kind: typeof RECEIPT_PROOF_KIND;
  tx: SignedTx;
  /** The transaction hash's path to header.txRoot. */
  txPath: MerkleProof;
  receipt: Receipt;
  /** The receipt's path to header.receiptsRoot. */
  receiptPath: MerkleProof;
  block: CertifiedHeader;
}

/** That a public contract's key holds a value (or is absent, value null) in the state after a block. */
export interface StateValueProof {
  kind: typeof STATE_PROOF_KIND;
  contract: string;
  key: string;
  value: JsonValue | null;
  proof: StateProof;
  block: CertifiedHeader;
}

/** A certificate signer, as the verifier found it. */
export interface VerifiedSigner {
  validator: string;
  nodeId: string;
  platform: string;
  measurement: string;
  /** The block whose `attest` transaction carries the evidence (null: the serving node's copy, not on the ledger). */
  attestedAt: { height: number; time: number } | null;
}

/** What a verified header establishes. */
export interface VerifiedHeader {
  height: number;
  blockHash: string;
  time: number;
  signers: VerifiedSigner[];
}
