import { canonicalize, checkTxStateless, receiptLeaf, verifyMerkleProof, type Genesis, type MerkleProof, type Receipt } from '../../consensus/index.js';
import { ProofError } from './errors.js';
import { NO_TX_LIMITS, isRecord } from './shape.js';
import { verifyCertifiedHeader, type VerifyOptions } from './verify-header.js';
import { RECEIPT_PROOF_KIND, type VerifiedHeader } from './types.js';

export interface VerifiedReceipt extends VerifiedHeader {
  txHash: string;
  receipt: Receipt;
}

const RECEIPT_KEYS = new Set(['txHash', 'index', 'status', 'gasUsed', 'result', 'events', 'error', 'sealed']);

function isMerkleProof(v: unknown): v is MerkleProof {
  return isRecord(v) && Number.isSafeInteger(v.index) && Number.isSafeInteger(v.size) && Array.isArray(v.path) && v.path.length <= 64;
}

/**
 * Verifies a receipt proof (chain_getReceiptProof, `cloister receipt export`)
 * offline against the consortium's genesis. Cheapest checks first:
 *  1. the proof's shape, and the receipt is for this transaction;
 *  2. the transaction's signature, and its chain is the genesis's;
 *  3. the block: its validators and policy followed from the genesis through
 *     the proof's governance changes, a quorum of their precommits, and each
 *     signer's evidence against the vendor roots and the policy of the height;
 *  4. the transaction's path to the header's txRoot;
 *  5. the receipt, exactly as hashed, and its path to receiptsRoot, at the
 *     transaction's index.
 * Throws a ProofError naming the first check that fails.
 */
export function verifyReceiptProof(raw: unknown, genesis: Genesis, options: VerifyOptions): VerifiedReceipt {
  // 1. Shape.
  if (!isRecord(raw) || raw.kind !== RECEIPT_PROOF_KIND) throw new ProofError('PROOF_MALFORMED', `not a receipt proof (kind must be "${RECEIPT_PROOF_KIND}")`);
  const { tx, txPath, receiptPath } = raw;
  const receipt = raw.receipt as Receipt;
  if (!isRecord(receipt) || Object.keys(receipt).some((k) => !RECEIPT_KEYS.has(k))) throw new ProofError('PROOF_MALFORMED', 'the receipt is not a receipt');
  if (!isMerkleProof(txPath) || !isMerkleProof(receiptPath)) throw new ProofError('PROOF_MALFORMED', 'txPath and receiptPath must be Merkle paths {index, size, path}');
  // 2. The transaction.
  let txHash: string;
  try {
    txHash = checkTxStateless(tx, genesis.chainId, NO_TX_LIMITS).hash;
  } catch (err) {
    const code = (err as { code?: string }).code === 'TX_WRONG_CHAIN' ? 'WRONG_CHAIN' : 'TX_INVALID';
    throw new ProofError(code, `the transaction: ${(err as Error).message}`);
  }
  if (receipt.txHash !== txHash) throw new ProofError('PROOF_MALFORMED', `the receipt is for transaction ${String(receipt.txHash)}, the proof's transaction is ${txHash}`);
  // 3. The block.
  const block = verifyCertifiedHeader(raw.block, genesis, options);
  // 4. The transaction is in it.
  if (!verifyMerkleProof(Buffer.from(txHash, 'hex'), txPath, block.header.txRoot)) {
    throw new ProofError('TX_PATH', `transaction ${txHash} is not in block ${block.height}: its path does not lead to the header's txRoot`);
  }
  // 5. This is its receipt.
  if (receiptPath.index !== txPath.index || receiptPath.size !== txPath.size || receipt.index !== txPath.index) {
    throw new ProofError('RECEIPT_PATH', `the receipt (index ${String(receipt.index)}, path ${receiptPath.index}/${receiptPath.size}) is not at the transaction's place (${txPath.index}/${txPath.size})`);
  }
  let leaf: Uint8Array;
  try {
    leaf = receiptLeaf(receipt);
  } catch (err) {
    throw new ProofError('PROOF_MALFORMED', `the receipt cannot be encoded canonically: ${(err as Error).message}`);
  }
  if (!verifyMerkleProof(leaf, receiptPath, block.header.receiptsRoot)) {
    throw new ProofError('RECEIPT_PATH', `the receipt of ${txHash} is not the one block ${block.height} commits to (status, gas, result, events or error differ)`);
  }
  const { header: _header, ...verified } = block;
  return { ...verified, txHash, receipt: JSON.parse(canonicalize(receipt as never)) as Receipt };
}
