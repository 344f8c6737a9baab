import { describe, expect, it } from 'vitest';
import {
  Ed25519Signer,
  ZERO_HASH,
  generateEd25519KeyPair,
  headerHash,
  precommitFor,
  quorumSize,
  voteMessage,
  type BlockHeader,
  type CommitCertificate,
} from '../../../../consensus/index.js';
import { checkCertifiedBlock, type CertifiedBlock } from '../../../../node/consensus/index.js';

const CHAIN = 'sync-test';
const signers = Array.from({ length: 4 }, () => new Ed25519Signer(generateEd25519KeyPair().privateKey));
const validators = signers.map((s) => s.publicKey);
const quorum = quorumSize(4);
const outsider = new Ed25519Signer(generateEd25519KeyPair().privateKey);

const tip: BlockHeader = {
  chainId: CHAIN, height: 7, parentHash: ZERO_HASH, time: 1_000, proposer: ZERO_HASH,
  txRoot: ZERO_HASH, receiptsRoot: ZERO_HASH, stateRoot: ZERO_HASH, validatorSetHash: ZERO_HASH, policyHash: ZERO_HASH,
};
const header: BlockHeader = { ...tip, height: 8, parentHash: headerHash(tip), time: 2_000, stateRoot: 'ab'.repeat(32) };

function certify(h: BlockHeader, by: Ed25519Signer[], round = 0): CommitCertificate {
  const hash = headerHash(h);
  const message = voteMessage(precommitFor(CHAIN, h.height, round, hash));
  return { height: h.height, round, blockHash: hash, signatures: by.map((s) => ({ validator: s.publicKey, signature: s.sign(message) })) };
}

const check = (block: unknown): string | null => checkCertifiedBlock(block as Partial<CertifiedBlock>, tip, CHAIN, validators, quorum);

describe('a synced block and its commit certificate', () => {
  it('accepts the next block with 2f+1 precommits from distinct validators', () => {
    expect(check({ header, txs: [], certificate: certify(header, signers.slice(0, 3)) })).toBeNull();
    expect(check({ header, txs: [], certificate: certify(header, signers, 2) })).toBeNull();
  });

  it('refuses, saying why, anything else', () => {
    const good = certify(header, signers.slice(0, 3));
    const other = { ...header, stateRoot: 'cd'.repeat(32) };
    const cases: [string, unknown, string][] = [
      ['nothing', null, 'not a block'],
      ['a block further ahead', { header: { ...header, height: 9 }, txs: [], certificate: good }, 'not the next height'],
      ['another chain', { header: { ...header, chainId: 'x' }, txs: [], certificate: good }, 'another chain'],
      ['no transaction list', { header, certificate: good }, 'no transaction list'],
      ['another parent', { header: { ...header, parentHash: 'ee'.repeat(32) }, txs: [], certificate: certify({ ...header, parentHash: 'ee'.repeat(32) }, signers) }, 'does not extend our tip'],
      ['no certificate', { header, txs: [] }, 'no certificate for this header'],
      ['a certificate for another block of that height', { header, txs: [], certificate: certify(other, signers) }, 'no certificate for this header'],
      ['a malformed signature entry', { header, txs: [], certificate: { ...good, signatures: [{ validator: 'x' }] } }, 'malformed certificate'],
      ['only f+1 precommits', { header, txs: [], certificate: certify(header, signers.slice(0, 2)) }, 'certificate does not verify'],
      ['one signer counted twice', { header, txs: [], certificate: { ...good, signatures: [...good.signatures.slice(0, 2), good.signatures[0]!] } }, 'certificate does not verify'],
      ['a signer outside the validator set', { header, txs: [], certificate: certify(header, [...signers.slice(0, 2), outsider]) }, 'certificate does not verify'],
      ['a certificate for another round than its signatures', { header, txs: [], certificate: { ...good, round: 1 } }, 'certificate does not verify'],
    ];
    for (const [what, block, why] of cases) expect(check(block), what).toBe(why);
  });
});
