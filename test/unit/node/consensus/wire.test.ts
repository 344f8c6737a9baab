import { describe, expect, it } from 'vitest';
import { Ed25519Signer, generateEd25519KeyPair, proposalMessage, voteMessage, type SignedVote, type Vote } from '../../../../consensus/index.js';
import { checkConsensusMessage, compactProposal, encodeConsensusMessage, type ConsensusCheckContext } from '../../../../node/consensus/wire.js';

const CHAIN = 'wire-test';
const keys = [generateEd25519KeyPair(), generateEd25519KeyPair()];
const signers = keys.map((k) => new Ed25519Signer(k.privateKey));
const outsider = new Ed25519Signer(generateEd25519KeyPair().privateKey);

function signedVote(signer: Ed25519Signer, over: Partial<Vote> = {}): SignedVote {
  const vote: Vote = { chainId: CHAIN, type: 'prevote', height: 5, round: 0, blockHash: 'ab'.repeat(32), ...over };
  return { vote, validator: signer.publicKey, signature: signer.sign(voteMessage(vote)) };
}

function bytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function ctx(over: Partial<ConsensusCheckContext> = {}): ConsensusCheckContext {
  return {
    chainId: CHAIN,
    validators: new Set(keys.map((k) => k.publicKey)),
    admitted: (key) => key === keys[0]!.publicKey,
    height: 5,
    ...over,
  };
}

describe('consensus message checks at the network edge', () => {
  it('accepts a vote signed by an admitted validator', () => {
    const data = encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: signedVote(signers[0]!) });
    expect(checkConsensusMessage(data, 'peer', ctx())).toMatchObject({ verdict: 'accept' });
  });

  it('rejects what no honest node sends, and says why', () => {
    const good = signedVote(signers[0]!);
    const cases: [string, Uint8Array, string][] = [
      ['not JSON', new TextEncoder().encode('{nope'), 'not_json'],
      ['an array', bytes([1, 2]), 'not_object'],
      ['no chain id', bytes({ type: 'vote', seq: 1, vote: good }), 'wrong_chain'],
      ['no seq', bytes({ type: 'vote', chainId: CHAIN, vote: good }), 'bad_seq'],
      ['an unknown type', bytes({ type: 'gossip', chainId: CHAIN, seq: 1 }), 'unknown_type'],
      ['a vote without signature', bytes({ type: 'vote', chainId: CHAIN, seq: 1, vote: { vote: good.vote, validator: good.validator } }), 'bad_vote'],
      ['a vote of an unknown type', bytes({ type: 'vote', chainId: CHAIN, seq: 1, vote: { ...good, vote: { ...good.vote, type: 'yes' } } }), 'bad_vote'],
      ['a proposal without block', bytes({ type: 'proposal', chainId: CHAIN, seq: 1, proposal: { proposal: { chainId: CHAIN, height: 5, round: 0, polRound: -1 }, proposer: good.validator, signature: 'aa' } }), 'bad_proposal'],
      ['a vote from outside the validator set', encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: signedVote(outsider) }), 'not_a_validator'],
      ['a forged signature', encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: { ...good, signature: signers[1]!.sign(voteMessage(good.vote)) } }), 'bad_signature'],
      ['a vote whose block hash was changed', encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: { ...good, vote: { ...good.vote, blockHash: null } } }), 'bad_signature'],
    ];
    for (const [what, data, reason] of cases) {
      expect(checkConsensusMessage(data, 'peer', ctx()), what).toMatchObject({ verdict: 'reject', reason });
    }
  });

  it('ignores what is nobody\'s fault: another chain, an old height, a validator not admitted yet', () => {
    const other = bytes({ type: 'vote', chainId: 'another', seq: 1, vote: signedVote(signers[0]!) });
    expect(checkConsensusMessage(other, 'peer', ctx())).toMatchObject({ verdict: 'ignore', reason: 'wrong_chain' });
    const old = encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: signedVote(signers[0]!, { height: 2 }) });
    expect(checkConsensusMessage(old, 'peer', ctx())).toMatchObject({ verdict: 'ignore', reason: 'old_height' });
    const unadmitted = encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: signedVote(signers[1]!) });
    expect(checkConsensusMessage(unadmitted, 'peer', ctx())).toMatchObject({ verdict: 'ignore', reason: 'signer_not_admitted' });
  });

  it('checks a compact proposal: signed header, a bounded list of 32-byte hashes', () => {
    const header = {
      chainId: CHAIN, height: 5, parentHash: 'aa'.repeat(32), time: 1, proposer: signers[0]!.publicKey,
      txRoot: 'bb'.repeat(32), receiptsRoot: 'cc'.repeat(32), stateRoot: 'dd'.repeat(32), validatorSetHash: 'ee'.repeat(32), policyHash: 'ff'.repeat(32),
    };
    const proposal = { chainId: CHAIN, height: 5, round: 0, polRound: -1, block: { header, txs: [] } };
    const signed = { proposal, proposer: signers[0]!.publicKey, signature: signers[0]!.sign(proposalMessage(proposal)) };
    const send = (hashes: string[]) =>
      checkConsensusMessage(encodeConsensusMessage({ type: 'proposal', chainId: CHAIN, seq: 1, proposal: compactProposal(signed, hashes) }), 'p', ctx({ maxBlockTxs: 2 }));
    expect(send(['01'.repeat(32)])).toMatchObject({ verdict: 'accept' });
    expect(send(['01'.repeat(32), '02'.repeat(32), '03'.repeat(32)])).toMatchObject({ verdict: 'reject', reason: 'bad_proposal' });
    expect(send(['not-a-hash'])).toMatchObject({ verdict: 'reject', reason: 'bad_proposal' });
    const forged = { ...signed, proposal: { ...proposal, block: { header: { ...header, stateRoot: '00'.repeat(32) }, txs: [] } } };
    const data = encodeConsensusMessage({ type: 'proposal', chainId: CHAIN, seq: 1, proposal: compactProposal(forged, []) });
    expect(checkConsensusMessage(data, 'p', ctx())).toMatchObject({ verdict: 'reject', reason: 'bad_signature' });
  });

  it('reports a validly signed message from far ahead as a sync hint, and still relays it', () => {
    const hints: [number, string][] = [];
    const ahead = encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: signedVote(signers[0]!, { height: 9 }) });
    const outcome = checkConsensusMessage(ahead, 'peer-x', ctx({ onAhead: (h, p) => hints.push([h, p]) }));
    expect(outcome.verdict).toBe('accept');
    expect(hints).toEqual([[9, 'peer-x']]);
  });
});
