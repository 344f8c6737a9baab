import { describe, expect, it } from 'vitest';
import {
  Ed25519Signer,
  ZERO_HASH,
  generateEd25519KeyPair,
  headerHash,
  quorumSize,
  verifyCertificate,
  voteMessage,
  type Vote,
} from '../../../consensus/index.js';
import {
  MAX_VALIDATION_WAITS,
  TendermintMachine,
  proposalMessage,
  proposerFor,
  type BftAction,
  type Proposal,
  type ProposalBlock,
  type SignedVote,
} from '../../../consensus/bft/index.js';

const CHAIN = 'unit-chain';
const signers = Array.from({ length: 4 }, () => new Ed25519Signer(generateEd25519KeyPair().privateKey));
const validators = signers.map((s) => s.publicKey);
// Node under test: a validator that is not the proposer of (1, 0) nor of (1, 1).
const meIndex = validators.findIndex((v, i) => v !== proposerFor(validators, 1, 0) && v !== proposerFor(validators, 1, 1) && i >= 0);
const me = signers[meIndex]!;

function block(tag: string, height = 1): ProposalBlock {
  return {
    header: {
      chainId: CHAIN, height, parentHash: ZERO_HASH, time: 0, proposer: validators[0]!,
      txRoot: ZERO_HASH, receiptsRoot: ZERO_HASH, stateRoot: ZERO_HASH.replace(/0$/, tag.slice(0, 1)),
      validatorSetHash: ZERO_HASH, policyHash: ZERO_HASH,
    },
    txs: [],
  };
}
const signerOf = (id: string): Ed25519Signer => signers[validators.indexOf(id)]!;
function proposal(b: ProposalBlock, round: number, polRound = -1) {
  const p: Proposal = { chainId: CHAIN, height: b.header.height, round, polRound, block: b };
  const proposer = proposerFor(validators, p.height, round);
  return { type: 'proposalReceived' as const, proposal: { proposal: p, proposer, signature: signerOf(proposer).sign(proposalMessage(p)) } };
}
function vote(i: number, type: Vote['type'], round: number, blockHash: string | null, height = 1): { type: 'voteReceived'; vote: SignedVote } {
  const v: Vote = { chainId: CHAIN, type, height, round, blockHash };
  return { type: 'voteReceived', vote: { vote: v, validator: validators[i]!, signature: signers[i]!.sign(voteMessage(v)) } };
}
const others = [0, 1, 2, 3].filter((i) => i !== meIndex);

function machine(): TendermintMachine {
  return new TendermintMachine({
    chainId: CHAIN, validators, self: me.publicKey, height: 1,
    timeouts: { propose: { baseMs: 100, incrementMs: 10 }, prevote: { baseMs: 50, incrementMs: 5 }, precommit: { baseMs: 50, incrementMs: 5 } },
  });
}
const of = <T extends BftAction['type']>(actions: BftAction[], t: T) => actions.filter((a): a is Extract<BftAction, { type: T }> => a.type === t);
/** Feeds input; answers signVote like the enclave would. */
function feed(m: TendermintMachine, input: Parameters<TendermintMachine['step']>[0]): BftAction[] {
  const all: BftAction[] = [];
  const queue = m.step(input);
  while (queue.length) {
    const a = queue.shift()!;
    all.push(a);
    if (a.type === 'signVote') queue.push(...m.step({ type: 'voteSigned', vote: a.vote, signature: me.sign(voteMessage(a.vote)) }));
  }
  return all;
}

describe('TendermintMachine', () => {
  it('rotates the proposer and grows timeouts with the round', () => {
    expect(proposerFor(validators, 1, 0)).toBe(validators[1]);
    expect(proposerFor(validators, 1, 3)).toBe(validators[0]);
    const m = machine();
    const t0 = of(feed(m, { type: 'start' }), 'scheduleTimeout')[0]!;
    expect(t0).toMatchObject({ kind: 'propose', height: 1, round: 0, durationMs: 100 });
    feed(m, { type: 'timeout', kind: 'propose', height: 1, round: 0 });
    for (const i of others) feed(m, vote(i, 'prevote', 0, null));
    feed(m, { type: 'timeout', kind: 'prevote', height: 1, round: 0 });
    for (const i of others) feed(m, vote(i, 'precommit', 0, null));
    const next = feed(m, { type: 'timeout', kind: 'precommit', height: 1, round: 0 });
    expect(m.snapshot.round).toBe(1);
    expect(of(next, 'scheduleTimeout')[0]).toMatchObject({ kind: 'propose', round: 1, durationMs: 110 });
  });

  it('takes new timeouts (governance changed the parameters) for the timeouts it schedules from then on', () => {
    const m = machine();
    expect(of(feed(m, { type: 'start' }), 'scheduleTimeout')[0]).toMatchObject({ kind: 'propose', round: 0, durationMs: 100 });
    m.setTimeouts({ prevote: { baseMs: 700, incrementMs: 50 }, propose: { baseMs: 900, incrementMs: 450 } });
    feed(m, { type: 'timeout', kind: 'propose', height: 1, round: 0 });
    let acts: BftAction[] = [];
    for (const i of others) acts.push(...feed(m, vote(i, 'prevote', 0, null)));
    expect(of(acts, 'scheduleTimeout')).toEqual([expect.objectContaining({ kind: 'prevote', round: 0, durationMs: 700 })]);
    feed(m, { type: 'timeout', kind: 'prevote', height: 1, round: 0 });
    for (const i of others) feed(m, vote(i, 'precommit', 0, null));
    acts = feed(m, { type: 'timeout', kind: 'precommit', height: 1, round: 0 });
    expect(of(acts, 'scheduleTimeout')[0]).toMatchObject({ kind: 'propose', round: 1, durationMs: 1350 });
  });

  it('validates before voting, prevotes nil for an invalid block, commits with a verifiable certificate', () => {
    const m = machine();
    feed(m, { type: 'start' });
    const b = block('a');
    const hash = headerHash(b.header);
    const acts = feed(m, proposal(b, 0));
    expect(of(acts, 'validateProposal')).toHaveLength(1);
    expect(of(acts, 'signVote')).toHaveLength(0); // waits for the enclave
    const voted = feed(m, { type: 'proposalValidated', height: 1, blockHash: hash, valid: true });
    expect(of(voted, 'signVote')[0]!.vote).toMatchObject({ type: 'prevote', blockHash: hash });
    for (const i of others.slice(0, 2)) feed(m, vote(i, 'prevote', 0, hash));
    expect(m.snapshot).toMatchObject({ step: 'precommit', lockedValue: hash, lockedRound: 0, validValue: hash });
    let commit: BftAction[] = [];
    for (const i of others.slice(0, 2)) commit = feed(m, vote(i, 'precommit', 0, hash));
    const c = of(commit, 'commit')[0]!;
    expect(c.height).toBe(1);
    expect(verifyCertificate(CHAIN, c.certificate, validators, quorumSize(4))).toBe(true);
    expect(m.snapshot).toMatchObject({ height: 2, round: 0, lockedValue: null });

    const m2 = machine();
    feed(m2, { type: 'start' });
    feed(m2, proposal(b, 0));
    const nil = feed(m2, { type: 'proposalValidated', height: 1, blockHash: hash, valid: false });
    expect(of(nil, 'signVote')[0]!.vote).toMatchObject({ type: 'prevote', blockHash: null });
  });

  it('waits past the propose timeout for a received proposal still being executed, then prevotes as its verdict says; nil after a few more timeouts', () => {
    const b = block('e');
    const hash = headerHash(b.header);
    // Executed slowly (the enclave under load): the propose timeout fires while it is pending.
    const m = machine();
    feed(m, { type: 'start' });
    feed(m, proposal(b, 0));
    const waited = feed(m, { type: 'timeout', kind: 'propose', height: 1, round: 0 });
    expect(of(waited, 'signVote')).toHaveLength(0);
    expect(of(waited, 'scheduleTimeout')).toEqual([expect.objectContaining({ kind: 'propose', round: 0 })]);
    expect(m.snapshot.step).toBe('propose');
    const voted = feed(m, { type: 'proposalValidated', height: 1, blockHash: hash, valid: true });
    expect(of(voted, 'signVote')[0]!.vote).toMatchObject({ type: 'prevote', round: 0, blockHash: hash });

    // An execution that never ends is waited for a bounded number of timeouts, then the round goes on with nil.
    const slow = machine();
    feed(slow, { type: 'start' });
    feed(slow, proposal(b, 0));
    for (let k = 0; k < MAX_VALIDATION_WAITS; k++) expect(of(feed(slow, { type: 'timeout', kind: 'propose', height: 1, round: 0 }), 'signVote')).toHaveLength(0);
    const nil = feed(slow, { type: 'timeout', kind: 'propose', height: 1, round: 0 });
    expect(of(nil, 'signVote')[0]!.vote).toMatchObject({ type: 'prevote', round: 0, blockHash: null });

    // No proposal at all: the timeout is the paper's (line 57), nil at once.
    const none = machine();
    feed(none, { type: 'start' });
    expect(of(feed(none, { type: 'timeout', kind: 'propose', height: 1, round: 0 }), 'signVote')[0]!.vote).toMatchObject({ type: 'prevote', blockHash: null });
  });

  it('decides a block that changes the validator set, then counts the next height under the new set only', () => {
    const newcomer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    const leaving = others[2]!;
    const next = [...validators.filter((_, i) => i !== leaving), newcomer.publicKey];
    const m = machine();
    feed(m, { type: 'start' });
    const b = block('a');
    const hash = headerHash(b.header);
    feed(m, proposal(b, 0));
    feed(m, { type: 'proposalValidated', height: 1, blockHash: hash, valid: true, nextValidators: next });
    // A vote for height 2 from the validator that is leaving arrives early: held against the old set, then dropped.
    feed(m, vote(leaving, 'prevote', 0, null, 2));
    for (const i of others.slice(0, 2)) feed(m, vote(i, 'prevote', 0, hash));
    let commit: BftAction[] = [];
    for (const i of others.slice(0, 2)) commit = feed(m, vote(i, 'precommit', 0, hash));
    expect(of(commit, 'commit')[0]!.height).toBe(1);
    expect(m.validators).toEqual(next);
    expect(m.quorum).toBe(quorumSize(4));
    expect(m.proposer(2, 0)).toBe(proposerFor(next, 2, 0));
    // At height 2 the leaver's vote does not count, the newcomer's does.
    const v: Vote = { chainId: CHAIN, type: 'prevote', height: 2, round: 0, blockHash: null };
    feed(m, vote(leaving, 'prevote', 0, null, 2));
    feed(m, { type: 'voteReceived', vote: { vote: v, validator: newcomer.publicKey, signature: newcomer.sign(voteMessage(v)) } });
    expect(m.rounds()[0]!.senders).toEqual([next.indexOf(newcomer.publicKey)]);
    expect(m.rounds()[0]!.prevotes).toEqual({ nil: 1 });
  });

  it('a locked validator prevotes nil for a different fresh proposal, but follows a newer proof of lock', () => {
    const m = machine();
    feed(m, { type: 'start' });
    const a = block('a');
    const ha = headerHash(a.header);
    feed(m, proposal(a, 0));
    feed(m, { type: 'proposalValidated', height: 1, blockHash: ha, valid: true });
    for (const i of others.slice(0, 2)) feed(m, vote(i, 'prevote', 0, ha));
    expect(m.snapshot.lockedValue).toBe(ha);
    for (const i of others) feed(m, vote(i, 'precommit', 0, null));
    feed(m, { type: 'timeout', kind: 'precommit', height: 1, round: 0 });
    expect(m.snapshot.round).toBe(1);
    const bb = block('b');
    const hb = headerHash(bb.header);
    feed(m, proposal(bb, 1));
    const v = feed(m, { type: 'proposalValidated', height: 1, blockHash: hb, valid: true });
    expect(of(v, 'signVote')[0]!.vote).toMatchObject({ round: 1, type: 'prevote', blockHash: null });
    // Round 2: b re-proposed with a proof of lock from round 1 (2f+1 prevotes for b in round 1).
    for (const i of others) feed(m, vote(i, 'prevote', 1, hb));
    expect(m.snapshot.validValue).toBe(hb); // line 36 updates validValue even when not precommitting
    for (const i of others) feed(m, vote(i, 'precommit', 1, null));
    feed(m, { type: 'timeout', kind: 'precommit', height: 1, round: 1 });
    const acts = feed(m, proposal(bb, 2, 1));
    expect(of(acts, 'signVote')[0]!.vote).toMatchObject({ round: 2, type: 'prevote', blockHash: hb });
  });

  it('ignores non-validators, bad signatures, wrong heights; reports equivocation once and does not count it', () => {
    const m = machine();
    feed(m, { type: 'start' });
    const outsider = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    const v: Vote = { chainId: CHAIN, type: 'prevote', height: 1, round: 0, blockHash: null };
    expect(feed(m, { type: 'voteReceived', vote: { vote: v, validator: outsider.publicKey, signature: outsider.sign(voteMessage(v)) } })).toEqual([]);
    const forged = vote(others[0]!, 'prevote', 0, null);
    forged.vote.signature = signers[others[1]!]!.sign(voteMessage(v));
    expect(feed(m, forged)).toEqual([]);
    expect(feed(m, vote(others[0]!, 'prevote', 0, null, 7))).toEqual([]);
    const i = others[0]!;
    feed(m, vote(i, 'prevote', 0, null));
    const ev = feed(m, vote(i, 'prevote', 0, 'ab'.repeat(32)));
    expect(of(ev, 'equivocation')[0]!.evidence).toMatchObject({ kind: 'vote', validator: validators[i], round: 0, voteType: 'prevote' });
    expect(of(feed(m, vote(i, 'prevote', 0, 'cd'.repeat(32))), 'equivocation')).toHaveLength(0);
    // Only one prevote counted: with my own nil prevote and one more, 2f+1 nil is reached only by a third validator.
    feed(m, { type: 'timeout', kind: 'propose', height: 1, round: 0 });
    expect(m.snapshot.step).toBe('prevote');
    feed(m, vote(others[1]!, 'prevote', 0, null));
    expect(m.snapshot.step).toBe('precommit');
  });

  it('skips to a higher round on f+1 messages from it, and jumps ahead on a synced block', () => {
    const m = machine();
    feed(m, { type: 'start' });
    feed(m, vote(others[0]!, 'prevote', 5, null));
    expect(m.snapshot.round).toBe(0);
    feed(m, vote(others[1]!, 'precommit', 5, null));
    expect(m.snapshot.round).toBe(5);
    const b = block('z');
    const hash = headerHash(b.header);
    const cert = {
      height: 1, round: 0, blockHash: hash,
      signatures: [0, 1, 2].map((i) => ({ validator: validators[i]!, signature: signers[i]!.sign(voteMessage({ chainId: CHAIN, type: 'precommit', height: 1, round: 0, blockHash: hash })) })),
    };
    feed(m, { type: 'blockCommittedBySync', block: b, certificate: { ...cert, signatures: cert.signatures.slice(0, 2) } });
    expect(m.snapshot.height).toBe(1); // 2 < 2f+1: refused
    feed(m, { type: 'blockCommittedBySync', block: b, certificate: cert });
    expect(m.snapshot).toMatchObject({ height: 2, round: 0 });
  });

  it('n = 1 commits alone', () => {
    const s = new Ed25519Signer(generateEd25519KeyPair().privateKey);
    const m = new TendermintMachine({ chainId: CHAIN, validators: [s.publicKey], self: s.publicKey, height: 1 });
    const acts = m.step({ type: 'start' });
    expect(of(acts, 'buildProposal')[0]).toMatchObject({ height: 1, round: 0 });
    const b = { ...block('q'), header: { ...block('q').header, proposer: s.publicKey } };
    const queue = m.step({ type: 'proposalBuilt', height: 1, round: 0, block: b });
    const seen: BftAction[] = [];
    while (queue.length) {
      const a = queue.shift()!;
      seen.push(a);
      if (a.type === 'signProposal') queue.push(...m.step({ type: 'proposalSigned', proposal: a.proposal, signature: s.sign(proposalMessage(a.proposal)) }));
      if (a.type === 'signVote') queue.push(...m.step({ type: 'voteSigned', vote: a.vote, signature: s.sign(voteMessage(a.vote)) }));
    }
    const c = of(seen, 'commit')[0]!;
    expect(verifyCertificate(CHAIN, c.certificate, [s.publicKey], 1)).toBe(true);
    expect(m.snapshot.height).toBe(2);
  });
});

describe('TendermintMachine resuming after a restart', () => {
  const timeouts = { propose: { baseMs: 100, incrementMs: 10 }, prevote: { baseMs: 50, incrementMs: 5 }, precommit: { baseMs: 50, incrementMs: 5 } };
  const resumed = (resume: NonNullable<ConstructorParameters<typeof TendermintMachine>[0]['resume']>) =>
    new TendermintMachine({ chainId: CHAIN, validators, self: me.publicKey, height: 1, timeouts, resume });
  const own = (type: Vote['type'], round: number, blockHash: string | null): SignedVote => {
    const v: Vote = { chainId: CHAIN, type, height: 1, round, blockHash };
    return { vote: v, validator: me.publicKey, signature: me.sign(voteMessage(v)) };
  };

  it('stays in the round of its last signature, signs that prevote again, and decides with the others there', () => {
    // The others wait in round 0 (locked, in precommit) for a third vote: a restarted validator
    // that went on to round 1 would leave them there for good.
    const b = block('a');
    const hash = headerHash(b.header);
    const m = resumed({ round: 0, last: { step: 'prevote', blockHash: hash } });
    const started = feed(m, { type: 'start' });
    expect(of(started, 'buildProposal')).toHaveLength(0);
    expect(of(started, 'signVote').map((a) => a.vote)).toEqual([expect.objectContaining({ type: 'prevote', round: 0, blockHash: hash })]);
    expect(m.snapshot).toMatchObject({ round: 0, step: 'prevote' });

    feed(m, proposal(b, 0));
    for (const i of others.slice(0, 2)) feed(m, vote(i, 'prevote', 0, hash));
    const locked = feed(m, { type: 'proposalValidated', height: 1, blockHash: hash, valid: true });
    const precommit = of(locked, 'signVote')[0]!;
    expect(precommit.vote).toMatchObject({ type: 'precommit', round: 0, blockHash: hash });
    expect(precommit.justification).toHaveLength(3);
    let decided: BftAction[] = [];
    for (const i of others.slice(0, 2)) decided = feed(m, vote(i, 'precommit', 0, hash));
    expect(of(decided, 'commit')[0]!.certificate).toMatchObject({ height: 1, round: 0, blockHash: hash });
  });

  it('sends the votes it kept again and does not sign one it holds', () => {
    const prevote = own('prevote', 1, null);
    const precommit = own('precommit', 1, null);
    const m = resumed({ round: 1, last: { step: 'precommit', blockHash: null }, votes: [own('prevote', 0, null), prevote, precommit] });
    const started = feed(m, { type: 'start' });
    expect(of(started, 'signVote')).toHaveLength(0);
    expect(of(started, 'broadcastVote').map((a) => a.vote.signature)).toEqual([own('prevote', 0, null).signature, prevote.signature, precommit.signature]);
    expect(m.snapshot).toMatchObject({ round: 1, step: 'precommit' });
    // 2f+1 precommits (ours kept) start the precommit timeout, as if there had been no restart.
    let acts: BftAction[] = [];
    for (const i of others.slice(0, 2)) acts = feed(m, vote(i, 'precommit', 1, null));
    expect(of(acts, 'scheduleTimeout')).toEqual([expect.objectContaining({ kind: 'precommit', round: 1 })]);
  });

  it('ignores kept votes that are not its own or not validly signed', () => {
    const forged = { ...own('prevote', 0, null), signature: own('prevote', 0, ZERO_HASH.replace(/0$/, '1')).signature };
    const others0 = vote(others[0]!, 'prevote', 0, null).vote;
    const m = resumed({ round: 0, last: { step: 'prevote', blockHash: null }, votes: [forged, others0] });
    const started = feed(m, { type: 'start' });
    expect(of(started, 'signVote').map((a) => a.vote)).toEqual([expect.objectContaining({ type: 'prevote', round: 0, blockHash: null })]);
    expect(of(started, 'broadcastVote')).toHaveLength(1); // the new signature only
  });

  it('does not build a second proposal for a round it proposed in: the propose timeout runs', () => {
    const round = [0, 1, 2, 3].find((r) => proposerFor(validators, 1, r) === me.publicKey)!;
    const m = resumed({ round, last: { step: 'proposal', blockHash: headerHash(block('a').header) } });
    const started = feed(m, { type: 'start' });
    expect(of(started, 'buildProposal')).toHaveLength(0);
    expect(of(started, 'signProposal')).toHaveLength(0);
    expect(of(started, 'scheduleTimeout')).toEqual([expect.objectContaining({ kind: 'propose', round })]);
    const nil = feed(m, { type: 'timeout', kind: 'propose', height: 1, round });
    expect(of(nil, 'signVote')[0]!.vote).toMatchObject({ type: 'prevote', round, blockHash: null });
  });

  it('restores its lock with the locked block and proof of lock however late the round', () => {
    const b = block('a');
    const hash = headerHash(b.header);
    const sp = proposal(b, 40).proposal;
    const prevotes = [0, 1, 2].map((i) => {
      const v: Vote = { chainId: CHAIN, type: 'prevote', height: 1, round: 40, blockHash: hash };
      return { vote: v, validator: validators[i]!, signature: signers[i]!.sign(voteMessage(v)) };
    });
    const m = resumed({ round: 41, last: { step: 'prevote', blockHash: null }, lock: { round: 40, blockHash: hash, proposal: sp, prevotes } });
    // With its proof of lock, the locked block is also the valid value it would re-propose.
    expect(m.snapshot).toMatchObject({ lockedValue: hash, lockedRound: 40, validValue: hash, validRound: 40 });
  });

  it('refuses a resume state that cannot be', () => {
    const hash = headerHash(block('a').header);
    expect(() => resumed({ round: 0, last: { step: 'prevote', blockHash: hash }, lock: { round: 1, blockHash: hash } })).toThrow(TypeError);
    expect(() => resumed({ round: 0, last: { step: 'vote' as 'prevote', blockHash: hash } })).toThrow(TypeError);
    expect(() => resumed({ round: -1, last: { step: 'prevote', blockHash: hash } })).toThrow(TypeError);
  });
});
