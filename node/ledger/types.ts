import type { BlockHeader, CommitCertificate, Receipt, SignedTx } from '../../consensus/index.js';
import type { ViewTransitionProof } from '../../contracts/index.js';

/** One block of a ledger as the verifier reads it, from a node's store, its RPC or an exported file. */
export interface LedgerBlock {
  header: BlockHeader;
  /** Null for the genesis block only. */
  certificate: CommitCertificate | null;
  txs: SignedTx[];
  /** The receipts exactly as the receipts root hashes them, in transaction order (the genesis block: its contracts' init). */
  receipts: Receipt[];
  /** When this block changed the validators or the policy: the new records proved under its state root. */
  transition?: ViewTransitionProof;
}

/** The first line of an exported ledger file; one LedgerBlock per line follows, in height order. */
export interface LedgerFileHeader {
  kind: typeof LEDGER_FILE_KIND;
  chainId: string;
  genesisHash: string;
  /** The last height in the file. */
  head: number;
}

export const LEDGER_FILE_KIND = 'cloister/ledger/v1';

/** Where blocks come from, with how many there are (for progress). */
export interface LedgerSource {
  describe: string;
  head: number;
  blocks(): AsyncIterable<LedgerBlock>;
  close(): Promise<void>;
}
