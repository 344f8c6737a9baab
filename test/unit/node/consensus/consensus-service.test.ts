import { afterEach, describe, expect, it } from 'vitest';
import {
  ChainError,
  DEFAULT_CONSENSUS_PARAMS,
  SIGN_STEP,
  Ed25519Signer,
  ZERO_HASH,
  generateEd25519KeyPair,
  headerHash,
  proposalMessage,
  signTx,
  checkTxStateless,
  txHash,
  txRootOf,
  verifyEquivocation,
  voteMessage,
  type SignedTx,
  type BlockHeader,
  type EquivocationEvidence,
  type LastSign,
  type Genesis,
  type Proposal,
  type Vote,
} from '../../../../consensus/index.js';
import { genesisChainView, type BlockResult } from '../../../../contracts/index.js';
import { ConsensusService, type ConsensusEnclave, type ConsensusNetwork, type ConsensusStore } from '../../../../node/consensus/index.js';
import { silentLogger } from '../../../../node/log/logger.js';
import { Mempool } from '../../../../node/mempool/mempool.js';
import type { LockRecord, OwnVotesRecord } from '../../../../node/storage/chain-store.js';
import { compactProposal, encodeConsensusMessage, type ConsensusMessage } from '../../../../node/consensus/wire.js';

const CHAIN = 'driver-test';
const NOW = 1_800_000_000_000;
const signers = Array.from({ length: 4 }, () => new Ed25519Signer(generateEd25519KeyPair().privateKey));
const genesis: Genesis = {
  chainId: CHAIN,
  time: NOW - 60_000,
  members: [],
  validators: signers.map((s, i) => ({ nodeId: `node-${i}`, voteKey: s.publicKey })),
  contracts: [],
  enclave: { measurements: {}, virtualRoots: [] },
  policy: { allowedPlatforms: ['virtual'], measurements: { virtual: ['ab'.repeat(48)] }, allowVirtual: true },
  consensus: { ...DEFAULT_CONSENSUS_PARAMS },
};
const tip: BlockHeader = {
  chainId: CHAIN, height: 0, parentHash: ZERO_HASH, time: genesis.time, proposer: ZERO_HASH,
  txRoot: ZERO_HASH, receiptsRoot: ZERO_HASH, stateRoot: ZERO_HASH, validatorSetHash: ZERO_HASH, policyHash: ZERO_HASH,
};

/** A store in memory with what consensus keeps: locks, own votes and evidence. */
class MemoryStore implements ConsensusStore {
  lock: LockRecord | undefined;
  ownVotes: OwnVotesRecord | undefined;
  readonly evidence = new Map<string, EquivocationEvidence>();
  async putLock(record: LockRecord): Promise<void> {
    this.lock = record;
  }
  async getLock(): Promise<LockRecord | undefined> {
    return this.lock;
  }
  async putOwnVotes(record: OwnVotesRecord): Promise<void> {
    this.ownVotes = record;
  }
  async getOwnVotes(): Promise<OwnVotesRecord | undefined> {
    return this.ownVotes;
  }
  async putEvidence(key: string, e: EquivocationEvidence): Promise<boolean> {
    if (this.evidence.has(key)) return false;
    this.evidence.set(key, e);
    return true;
  }
  async listEvidence(): Promise<EquivocationEvidence[]> {
    return [...this.evidence.values()];
  }
}

/** A driver for validator 0 (proposer of height 1 round 0 is validator 1) over fakes that record what it asks. */
function harness(
  fetchTxs?: (peer: string, hashes: string[]) => Promise<(SignedTx | null)[]>,
  opts: { lastSign?: LastSign; executedOnly?: boolean; onStalled?: () => void } = {},
) {
  const executed: { header: BlockHeader; txs: SignedTx[] }[] = [];
  const votes: Vote[] = [];
  const refusals: Vote[] = [];
  let validator: Parameters<ConsensusNetwork['setConsensusValidator']>[0] | undefined;
  let handler: Parameters<ConsensusNetwork['onConsensus']>[0] | undefined;
  const mempool = new Mempool();
  const chain = { tip, mempool, commitExecuted: async () => {}, keepProposalTxs: () => {} };
  const enclave: ConsensusEnclave = {
    executeBlock: async (req) => {
      executed.push(req);
      const result: BlockResult = {
        header: req.header, blockHash: headerHash(req.header), included: [], txHashes: [], receipts: [], writeSet: [], excluded: [], nonces: [], contractsChanged: false, nextValidators: null, added: [],
      };
      return result;
    },
    proposeBlock: async () => {
      throw new Error('validator 0 does not propose at height 1 round 0');
    },
    signVote: async (vote) => {
      // As the enclave: a vote for a block is signed only once this enclave executed that block.
      if (opts.executedOnly && vote.blockHash !== null && !executed.some((e) => headerHash(e.header) === vote.blockHash)) {
        refusals.push(vote);
        throw new ChainError('BLOCK_NOT_VALIDATED', `block ${vote.blockHash} was not executed and validated by this enclave`);
      }
      votes.push(vote);
      return { signature: '00'.repeat(64) };
    },
    signProposal: async () => ({ signature: '00'.repeat(64) }),
  };
  const published: ConsensusMessage[] = [];
  const network: ConsensusNetwork = {
    setConsensusValidator: (v) => (validator = v),
    onConsensus: (h) => {
      handler = h;
      return () => {};
    },
    publishConsensus: async (data) => {
      published.push(JSON.parse(new TextDecoder().decode(data)) as ConsensusMessage);
      return 1;
    },
  };
  const store = new MemoryStore();
  const service = new ConsensusService({
    view: () => genesisChainView(genesis),
    nodeId: genesis.validators[0]!.nodeId,
    chain,
    enclave,
    store,
    selfKey: signers[0]!.publicKey,
    signer: { lastSign: opts.lastSign ?? null, lock: null },
    network,
    admitted: () => true,
    onBehind: () => {},
    ...(opts.onStalled ? { onStalled: opts.onStalled } : {}),
    doubleSignCheckMs: 0,
    ...(fetchTxs ? { fetchTxs } : {}),
    clock: { now: () => NOW },
    log: silentLogger,
    onFatal: (err) => {
      throw err;
    },
  });
  const started = service.start();
  const deliver = async (proposal: Proposal, from = 'node-1'): Promise<void> => {
    await started;
    const signed = { proposal, proposer: signers[1]!.publicKey, signature: signers[1]!.sign(proposalMessage(proposal)) };
    const data = encodeConsensusMessage({ type: 'proposal', chainId: CHAIN, seq: 1, proposal: compactProposal(signed, proposal.block.txs.map(txHash)) });
    const outcome = validator!(data, from);
    expect(outcome.verdict).toBe('accept');
    handler!({ data, from });
  };
  /** Hands a raw gossip message to the driver as the network would: validated, then (when accepted) delivered. */
  const gossip = (data: Uint8Array, from: string): string => {
    const { verdict } = validator!(data, from);
    if (verdict === 'accept') handler!({ data, from });
    return verdict;
  };
  return { service, started, executed, votes, refusals, deliver, gossip, mempool, store, published };
}

const running: ConsensusService[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.stop();
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

function proposalAt(time: number, txs: SignedTx[] = []): Proposal {
  const header: BlockHeader = { ...tip, height: 1, parentHash: headerHash(tip), time, proposer: signers[1]!.publicKey, txRoot: txRootOf(txs.map(txHash)) };
  return { chainId: CHAIN, height: 1, round: 0, polRound: -1, block: { header, txs } };
}

const user = new Ed25519Signer(generateEd25519KeyPair().privateKey);
const userTx = (nonce: number): SignedTx =>
  signTx({ chainId: CHAIN, from: user.publicKey, nonce, contract: 'counter', method: 'increment', args: [], gasLimit: 1000 }, user);

describe('the consensus driver', () => {
  it('re-executes a proposal in its enclave and prevotes for the block when the roots match', async () => {
    const h = harness();
    running.push(h.service);
    const proposal = proposalAt(NOW);
    await h.deliver(proposal);
    await until(() => h.votes.length > 0);
    expect(h.executed).toHaveLength(1);
    expect(h.votes[0]).toMatchObject({ type: 'prevote', height: 1, round: 0, blockHash: headerHash(proposal.block.header) });
  });

  it('rebuilds a proposal gossiped by hash from its mempool, fetching the transactions it lacks from the relaying peer', async () => {
    const asked: [string, string[]][] = [];
    const [held, lacked] = [userTx(0), userTx(1)];
    const h = harness(async (peer, hashes) => {
      asked.push([peer, hashes]);
      return hashes.map((hash) => (hash === txHash(lacked) ? lacked : null));
    });
    running.push(h.service);
    h.mempool.add(checkTxStateless(held, CHAIN), 0);
    await h.deliver(proposalAt(NOW, [held, lacked]));
    await until(() => h.votes.length > 0);
    expect(asked).toEqual([['node-1', [txHash(lacked)]]]);
    expect(h.executed[0]!.txs).toEqual([held, lacked]);
    expect(h.votes[0]!.blockHash).not.toBeNull();
  });

  it('rebuilds a block relayed again by another peer from what it rebuilt, without fetching again', async () => {
    const asked: string[] = [];
    const lacked = userTx(0);
    const h = harness(async (peer, hashes) => {
      asked.push(peer);
      return hashes.map(() => lacked);
    });
    running.push(h.service);
    const proposal = proposalAt(NOW, [lacked]);
    await h.deliver(proposal, 'node-1');
    await until(() => h.votes.length > 0);
    await h.deliver(proposal, 'node-2');
    await h.deliver(proposal, 'node-3');
    expect(asked).toEqual(['node-1']);
    expect(h.executed).toHaveLength(1);
  });

  it('asks the proposer\'s node when the relaying peer lacks a transaction too', async () => {
    const asked: string[] = [];
    const tx = userTx(0);
    const h = harness(async (peer, hashes) => {
      asked.push(peer);
      return hashes.map(() => (peer === 'node-1' ? tx : null));
    });
    running.push(h.service);
    await h.deliver(proposalAt(NOW, [tx]), 'node-3');
    await until(() => h.votes.length > 0);
    expect(asked).toEqual(['node-3', 'node-1']);
    expect(h.executed[0]!.txs).toEqual([tx]);
  });

  it('drops a proposal when a fetched transaction is not the one its hash names', async () => {
    let fetched = false;
    const h = harness(async (_peer, hashes) => {
      fetched = true;
      return hashes.map(() => userTx(7));
    });
    running.push(h.service);
    await h.deliver(proposalAt(NOW, [userTx(0)]));
    await until(() => fetched);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(h.executed).toHaveLength(0);
    expect(h.votes).toHaveLength(0);
  });

  it('does not execute or vote for a proposal whose time is far ahead of its clock: it prevotes nil', async () => {
    const h = harness();
    running.push(h.service);
    await h.deliver(proposalAt(NOW + 60_000));
    await until(() => h.votes.length > 0);
    expect(h.executed).toHaveLength(0);
    expect(h.votes[0]).toMatchObject({ type: 'prevote', height: 1, round: 0, blockHash: null });
  });
});

describe('a height that does not commit', () => {
  it('asks for the peers\' heights (onStalled) when no commit comes, so a node that missed its height\'s last votes can sync', async () => {
    let stalled!: () => void;
    const asked = new Promise<void>((r) => (stalled = r));
    const h = harness(undefined, { onStalled: () => stalled() });
    running.push(h.service);
    await h.started;
    // No proposal ever comes: the stall timer (2 s) fires and asks.
    await asked;
  });
});

describe('a restarted validator', () => {
  it('signs its last vote again once it has executed that vote\'s block, from the proposal peers send again', async () => {
    const proposal = proposalAt(NOW);
    const blockHash = headerHash(proposal.block.header);
    // Killed after its enclave signed this prevote, before anyone received it: the enclave will sign only that, and only once it executed the block.
    const h = harness(undefined, { lastSign: { height: 1, round: 0, step: SIGN_STEP.prevote, value: blockHash }, executedOnly: true });
    running.push(h.service);
    await h.started;
    await until(() => h.refusals.length > 0);
    expect(h.votes).toHaveLength(0);
    // The proposal comes back (a peer's gossip tick): the block is executed, then the same prevote signed and sent.
    await h.deliver(proposal);
    await until(() => h.votes.length > 0);
    expect(h.executed.map((e) => headerHash(e.header))).toContain(blockHash);
    expect(h.votes[0]).toMatchObject({ type: 'prevote', height: 1, round: 0, blockHash });
    await until(() => h.published.some((m) => m.type === 'vote' && m.vote.vote.blockHash === blockHash));
  });
});

describe('equivocation evidence', () => {
  it('two different signed votes of one validator for one slot are kept, gossiped and listed, once', async () => {
    const h = harness();
    running.push(h.service);
    await h.started;
    const vote = (blockHash: string | null): Uint8Array => {
      const v: Vote = { chainId: CHAIN, type: 'prevote', height: 1, round: 0, blockHash };
      const sv = { vote: v, validator: signers[2]!.publicKey, signature: signers[2]!.sign(voteMessage(v)) };
      return encodeConsensusMessage({ type: 'vote', chainId: CHAIN, seq: 1, vote: sv });
    };
    expect(h.gossip(vote('ab'.repeat(32)), 'node-2')).toBe('accept');
    expect(h.gossip(vote('cd'.repeat(32)), 'node-2')).toBe('accept');
    expect(h.gossip(vote(null), 'node-2')).toBe('accept');
    await until(() => h.store.evidence.size > 0);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    const kept = [...h.store.evidence.values()];
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatchObject({ kind: 'prevote', validator: signers[2]!.publicKey, height: 1, round: 0 });
    expect(verifyEquivocation(kept[0], CHAIN, new Set(genesis.validators.map((v) => v.voteKey)))).toBe(true);
    expect(h.service.evidence()).toEqual(kept);
    expect(h.published.filter((m) => m.type === 'evidence')).toHaveLength(1);

    // Evidence gossiped by a peer is checked before it is kept: forged evidence is rejected.
    const forged = { ...kept[0]!, second: { ...kept[0]!.second, signature: 'ee'.repeat(64) } };
    expect(h.gossip(encodeConsensusMessage({ type: 'evidence', chainId: CHAIN, seq: 2, evidence: forged }), 'node-3')).toBe('reject');
  });
});
