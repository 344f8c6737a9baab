import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_CONSENSUS_PARAMS,
  Ed25519Signer,
  ZERO_HASH,
  generateEd25519KeyPair,
  headerHash,
  proposalMessage,
  type BlockHeader,
  type Genesis,
  type Proposal,
  type Vote,
} from '../../../../consensus/index.js';
import type { ChainService } from '../../../../node/chain/chain-service.js';
import { ConsensusService } from '../../../../node/consensus/index.js';
import type { EnclaveHost } from '../../../../node/enclave/enclave-host.js';
import { silentLogger } from '../../../../node/log/logger.js';
import { Mempool } from '../../../../node/mempool/mempool.js';
import type { NetworkService } from '../../../../node/network/index.js';
import { encodeConsensusMessage } from '../../../../node/consensus/wire.js';

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
  policy: {},
  consensus: { ...DEFAULT_CONSENSUS_PARAMS },
};
const tip: BlockHeader = {
  chainId: CHAIN, height: 0, parentHash: ZERO_HASH, time: genesis.time, proposer: ZERO_HASH,
  txRoot: ZERO_HASH, receiptsRoot: ZERO_HASH, stateRoot: ZERO_HASH, validatorSetHash: ZERO_HASH, policyHash: ZERO_HASH,
};

/** A driver for validator 0 (proposer of height 1 round 0 is validator 1) over fakes that record what it asks. */
function harness() {
  const executed: BlockHeader[] = [];
  const votes: Vote[] = [];
  let validator: ((data: Uint8Array, from: string) => unknown) | undefined;
  let handler: ((e: { data: Uint8Array; from: string }) => void) | undefined;
  const chain = { tip, mempool: new Mempool(), identity: { publicKeys: { vote: signers[0]!.publicKey } } } as unknown as ChainService;
  const enclave = {
    executeBlock: async (req: { header: BlockHeader }) => {
      executed.push(req.header);
      return { header: req.header, blockHash: headerHash(req.header), included: [], txHashes: [], receipts: [], writeSet: [], excluded: [] };
    },
    signVote: async (vote: Vote) => {
      votes.push(vote);
      return { validator: signers[0]!.publicKey, signature: '00'.repeat(64) };
    },
  } as unknown as EnclaveHost;
  const network = {
    setConsensusValidator: (v: typeof validator) => (validator = v),
    onConsensus: (h: typeof handler) => {
      handler = h;
      return () => {};
    },
    publishConsensus: async () => 1,
  } as unknown as NetworkService;
  const service = new ConsensusService({
    genesis, chain, enclave, network,
    admitted: () => true,
    onBehind: () => {},
    clock: { now: () => NOW },
    log: silentLogger,
    onFatal: (err) => {
      throw err;
    },
  });
  service.start();
  const deliver = (proposal: Proposal): void => {
    const data = encodeConsensusMessage({
      type: 'proposal', chainId: CHAIN, seq: 1,
      proposal: { proposal, proposer: signers[1]!.publicKey, signature: signers[1]!.sign(proposalMessage(proposal)) },
    });
    const outcome = validator!(data, 'node-1') as { verdict: string };
    expect(outcome.verdict).toBe('accept');
    handler!({ data, from: 'node-1' });
  };
  return { service, executed, votes, deliver };
}

const running: ConsensusService[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.stop();
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

function proposalAt(time: number): Proposal {
  const header: BlockHeader = { ...tip, height: 1, parentHash: headerHash(tip), time, proposer: signers[1]!.publicKey };
  return { chainId: CHAIN, height: 1, round: 0, polRound: -1, block: { header, txs: [] } };
}

describe('the consensus driver', () => {
  it('re-executes a proposal in its enclave and prevotes for the block when the roots match', async () => {
    const h = harness();
    running.push(h.service);
    const proposal = proposalAt(NOW);
    h.deliver(proposal);
    await until(() => h.votes.length > 0);
    expect(h.executed).toHaveLength(1);
    expect(h.votes[0]).toMatchObject({ type: 'prevote', height: 1, round: 0, blockHash: headerHash(proposal.block.header) });
  });

  it('does not execute or vote for a proposal whose time is far ahead of its clock: it prevotes nil', async () => {
    const h = harness();
    running.push(h.service);
    h.deliver(proposalAt(NOW + 60_000));
    await until(() => h.votes.length > 0);
    expect(h.executed).toHaveLength(0);
    expect(h.votes[0]).toMatchObject({ type: 'prevote', height: 1, round: 0, blockHash: null });
  });
});
