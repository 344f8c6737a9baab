import { ChainError, genesisHash, isHexOfLength, isSealedTx, merkleProof, receiptLeaf, type Genesis, type JsonValue } from '../../consensus/index.js';
import { ledgerAttestationFreshness, stateKey, type AdmissionClaim } from '../../contracts/index.js';
import { RECEIPT_PROOF_KIND, STATE_PROOF_KIND, type CertifiedHeader, type ReceiptProof, type SignerAttestation, type StateValueProof, type ViewTransition } from '../proofs/index.js';
import type { EnclaveHost } from '../enclave/enclave-host.js';
import { receiptAsHashed, type ChainStore, type StoredBlock, type StoredReceipt } from '../storage/chain-store.js';

export interface ProofBuilderOptions {
  genesis: Genesis;
  store: Pick<ChainStore, 'getBlock' | 'getTx' | 'getReceipts' | 'viewTransitions' | 'ledgerAttestationAt'>;
  enclave: Pick<EnclaveHost, 'stateProof'>;
  /** Evidence this node knows for these enclave vote keys (its own enclave's, and admitted peers'), where the ledger has none. */
  attestations: (voteKeys: readonly string[]) => Promise<SignerAttestation[]>;
  /** Resolves once every block the enclave committed so far is written (a proof's header is then stored). */
  durable: () => Promise<void>;
  /** Is the contract confidential (its state is stored encrypted: nothing public to prove)? */
  isConfidential: (contract: string) => boolean;
}

/**
 * Assembles the proofs a node serves from what it stored: the block's header
 * and certificate, the Merkle paths, the governance changes of the validators
 * and policy since the genesis (kept at commit) and the signers' evidence.
 * The node vouches for nothing here: a client verifies all of it (node/proofs).
 */
export class ProofBuilder {
  readonly #genesisHash: string;

  constructor(private readonly o: ProofBuilderOptions) {
    this.#genesisHash = genesisHash(o.genesis);
  }

  async receiptProof(txHash: string): Promise<ReceiptProof | null> {
    if (!isHexOfLength(txHash, 32)) return null;
    const stored = await this.o.store.getTx(txHash);
    if (!stored) return null;
    const block = await this.#block(stored.height);
    const receipts = await this.o.store.getReceipts(block.txHashes);
    if (receipts.some((r) => r === undefined)) throw new ChainError('NOT_FOUND', `block ${stored.height} lacks a receipt`);
    const own = (receipts as StoredReceipt[]).map(receiptAsHashed);
    return {
      kind: RECEIPT_PROOF_KIND,
      tx: stored.tx,
      txPath: merkleProof(block.txHashes.map((h) => Buffer.from(h, 'hex')), stored.index),
      receipt: own[stored.index]!,
      receiptPath: merkleProof(own.map(receiptLeaf), stored.index),
      block: await this.#certified(block),
    };
  }

  async stateProof(contract: string, key: string, height: number | null): Promise<StateValueProof> {
    if (this.o.isConfidential(contract)) {
      throw new ChainError('STATE_PROOF_CONFIDENTIAL', `contract ${contract} is confidential: its state is stored encrypted, there is no public value to prove`);
    }
    const proved = await this.o.enclave.stateProof(stateKey.contract(contract, key), height);
    await this.o.durable();
    const block = await this.#block(proved.height);
    return {
      kind: STATE_PROOF_KIND,
      contract,
      key,
      value: proved.value === null ? null : (JSON.parse(proved.value) as JsonValue),
      proof: proved.proof,
      block: await this.#certified(block),
    };
  }

  async #block(height: number): Promise<StoredBlock> {
    const block = await this.o.store.getBlock(height);
    if (!block) throw new ChainError('NOT_FOUND', `block ${height} is not stored`);
    if (!block.certificate) throw new ChainError('NOT_FOUND', `block ${height} is the genesis block: it has no certificate to prove with`);
    return block;
  }

  async #certified(block: StoredBlock): Promise<CertifiedHeader> {
    const records = await this.o.store.viewTransitions(block.header.height);
    const transitions: ViewTransition[] = [];
    for (const proof of records) {
      const at = await this.#block(proof.height);
      transitions.push({ header: at.header, certificate: at.certificate!, proof });
    }
    const signers = block.certificate!.signatures.map((s) => s.validator);
    const onLedger = (await Promise.all(signers.map((key) => this.#ledgerAttestation(key, block.header.height)))).filter((a) => a !== null);
    const missing = signers.filter((key) => !onLedger.some((a) => a.validator === key));
    const fromNode = missing.length > 0 ? await this.o.attestations(missing) : [];
    return { header: block.header, certificate: block.certificate!, transitions, attestations: [...onLedger, ...fromNode] };
  }

  /** The signer's last `attest` transaction committed at or below `height`, with what proves it is in the ledger. */
  async #ledgerAttestation(voteKey: string, height: number): Promise<SignerAttestation | null> {
    const found = await this.o.store.ledgerAttestationAt(voteKey, height);
    if (!found) return null;
    const [stored, block] = await Promise.all([this.o.store.getTx(found.txHash), this.o.store.getBlock(found.height)]);
    if (!stored || !block?.certificate || isSealedTx(stored.tx)) return null;
    const claim = stored.tx.args[0] as unknown as AdmissionClaim;
    return {
      validator: voteKey,
      nodeId: claim.nodeId,
      publicKeys: claim.publicKeys,
      freshness: ledgerAttestationFreshness(this.#genesisHash, block.header.parentHash),
      evidence: claim.evidence,
      ledger: {
        tx: stored.tx,
        txPath: merkleProof(block.txHashes.map((h) => Buffer.from(h, 'hex')), stored.index),
        header: block.header,
        certificate: block.certificate,
      },
    };
  }
}

