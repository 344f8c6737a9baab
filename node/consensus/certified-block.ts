import {
  headerHash,
  isHexOfLength,
  verifyCertificate,
  type BlockHeader,
  type CommitCertificate,
  type SignedTx,
} from '../../consensus/index.js';

/** A committed block as block sync carries it. */
export interface CertifiedBlock {
  header: BlockHeader;
  txs: SignedTx[];
  certificate: CommitCertificate;
}

/**
 * Checks a block a peer sent during sync, cheapest first: null when it is the
 * next block after `tip` and carries a commit certificate of `quorum`
 * precommits, from distinct genesis validators, for exactly its header;
 * otherwise what is wrong. (Its transactions are checked by re-execution.)
 */
export function checkCertifiedBlock(
  block: Partial<CertifiedBlock> | null | undefined,
  tip: BlockHeader,
  chainId: string,
  validators: readonly string[],
  quorum: number,
): string | null {
  if (typeof block !== 'object' || block === null) return 'not a block';
  const { header, txs, certificate } = block;
  if (typeof header !== 'object' || header === null || header.height !== tip.height + 1) return 'not the next height';
  if (header.chainId !== chainId) return 'another chain';
  if (!Array.isArray(txs)) return 'no transaction list';
  let hash: string;
  try {
    hash = headerHash(header);
  } catch {
    return 'malformed header';
  }
  if (header.parentHash !== headerHash(tip)) return 'does not extend our tip';
  const c = certificate as Partial<CommitCertificate> | undefined;
  if (!c || c.height !== header.height || c.blockHash !== hash || !Number.isSafeInteger(c.round) || !Array.isArray(c.signatures)) {
    return 'no certificate for this header';
  }
  if (c.signatures.some((s) => typeof s !== 'object' || s === null || !isHexOfLength(s.validator, 32) || typeof s.signature !== 'string')) {
    return 'malformed certificate';
  }
  if (!verifyCertificate(chainId, c as CommitCertificate, validators, quorum)) return 'certificate does not verify';
  return null;
}
