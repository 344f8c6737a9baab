/**
 * Governance (contracts/enclave/governance/ and the system contract):
 * proposals, votes and every action, executed by a real BlockExecutor and
 * sandbox on an in-memory state, as an enclave runs them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer, ZERO_HASH, canonicalize, genesisHash, isCanonicalJsonValue, parseGenesis, sha256Hex, type Genesis, type JsonValue } from '../../../consensus/index.js';
import { createVirtualEvidence, generateVirtualRoot, reportDataFor } from '../../../attestation/index.js';
import {
  LEDGER_ATTESTATION_REFRESH_MS,
  PROPOSAL_LIFETIME_BLOCKS,
  bundleMeasurement,
  handoverFreshness,
  ledgerAttestationFreshness,
  needsLedgerAttestation,
  readLedgerAttestation,
  systemTxGas,
  systemTxProblem,
  validatorsAt,
  chainViewAt,
  genesisChainView,
  loadBundleFromDir,
  type ContractBundle,
} from '../../../contracts/index.js';
import { GovernanceChain, VIRTUAL_MEASUREMENT, governanceGenesis } from '../../helpers/governance-chain.js';
import { newSigner } from '../../helpers/tx.js';

const alice = newSigner();
const bob = newSigner();
const carol = newSigner();
const dave = newSigner();
const outsider = newSigner();
const members = [
  { id: 'alice', signer: alice },
  { id: 'bob', signer: bob },
  { id: 'carol', signer: carol },
];

let counter: ContractBundle;
let counterV2: ContractBundle;
let token: ContractBundle;
let chain: GovernanceChain;

/** A governance action as the propose call's argument (a bundle's interfaces have no index signature: checked, not cast). */
function action(value: object): JsonValue {
  if (!isCanonicalJsonValue(value)) throw new TypeError('a governance action must be canonical JSON');
  return value;
}
const deploy = (bundle: ContractBundle, name = bundle.manifest.name, initArgs: JsonValue[] = []): JsonValue => action({ type: 'deployContract', name, bundle, initArgs });
const upgrade = (bundle: ContractBundle, name = bundle.manifest.name): JsonValue => action({ type: 'upgradeContract', name, bundle });

/** Proposes (with the proposer's approval) and has `voters` approve; returns the proposal id and its final state. */
function pass(c: GovernanceChain, actions: JsonValue[], voters = [bob]): { id: number; state: string } {
  const made = c.run(alice, 'consortium', 'propose', [actions, true]);
  expect(made.status, made.error?.message).toBe('success');
  const { id } = made.result as { id: number };
  let state = (made.result as { state: string }).state;
  for (const voter of voters) {
    if (state !== 'open') break;
    const voted = c.run(voter, 'consortium', 'vote', [id, true]);
    expect(voted.status, voted.error?.message).toBe('success');
    state = (voted.result as { state: string }).state;
  }
  return { id, state };
}

beforeAll(async () => {
  counter = await loadBundleFromDir(new URL('../../../contracts/examples/counter', import.meta.url).pathname);
  token = await loadBundleFromDir(new URL('../../../contracts/examples/token', import.meta.url).pathname);
  counterV2 = { manifest: counter.manifest, code: counter.code.replace('(cloister.state.get(KEY) ?? 0) + 1', '(cloister.state.get(KEY) ?? 0) + 10') };
});

beforeAll(async () => {
  chain = await GovernanceChain.create(governanceGenesis(members));
});
afterAll(() => chain.runtime.dispose());

describe('proposals', () => {
  it('a proposal passes with a strict majority: deployed, callable from the next block, its measurement shown', () => {
    const made = chain.run(alice, 'consortium', 'propose', [[deploy(counter)], true]);
    expect(made).toMatchObject({ status: 'success', result: { id: 1, state: 'open' } });
    expect(made.events.map((e) => e.name)).toEqual(['ProposalCreated']);
    const shown = chain.call('consortium', 'proposal', [1]) as Record<string, unknown>;
    expect(shown).toMatchObject({ state: 'open', approvals: 1, rejections: 0, required: 2, proposer: 'alice' });
    expect(shown['actions']).toEqual([{ type: 'deployContract', name: 'counter', initArgs: [], measurement: bundleMeasurement(counter), version: '1.0.0', codeBytes: counter.code.length }]);

    const calledEarly = chain.run(bob, 'counter', 'increment', []);
    expect(calledEarly.error?.code).toBe('UNKNOWN_CONTRACT');

    const decided = chain.run(bob, 'consortium', 'vote', [1, true]);
    expect(decided).toMatchObject({ status: 'success', result: { id: 1, state: 'accepted' } });
    expect(decided.events.map((e) => e.name)).toEqual(['Voted', 'ProposalAccepted', 'ContractDeployed']);
    expect(decided.events[2]!.data).toEqual({ name: 'counter', measurement: bundleMeasurement(counter) });
    expect(chain.run(carol, 'counter', 'increment', [])).toMatchObject({ status: 'success', result: 1 });
    expect(chain.call('consortium', 'proposal', [1])).toMatchObject({ state: 'accepted', approvals: 2, closedAt: chain.height - 1 });
  });

  it('an upgrade keeps the state and runs the new code; a retired contract is gone and its name is not used again', () => {
    expect(pass(chain, [upgrade(counterV2, 'counter')]).state).toBe('accepted');
    expect(chain.run(carol, 'counter', 'increment', [])).toMatchObject({ status: 'success', result: 11 });
    expect(chain.call('counter', 'get')).toBe(11);

    expect(pass(chain, [{ type: 'retireContract', name: 'counter' }]).state).toBe('accepted');
    expect(chain.run(carol, 'counter', 'increment', []).error?.code).toBe('UNKNOWN_CONTRACT');
    const again = chain.run(alice, 'consortium', 'propose', [[deploy(counter)], true]);
    expect(again.error).toMatchObject({ code: 'GOV_ACTION_INVALID' });
    expect(again.error!.message).toMatch(/retired contract/);
  });

  it('a deployment runs the contract\'s init with its arguments', () => {
    expect(pass(chain, [deploy(token, 'token', [dave.publicKey])]).state).toBe('accepted');
    expect(chain.call('token', 'owner')).toBe(dave.publicKey);
  });

  it("a contract's init runs only when the proposal passes: an init that throws fails the proposal, with the contract's line", () => {
    const manifest = { ...counter.manifest, name: 'fussy', methods: { ...counter.manifest.methods, init: { readonly: false } } };
    const fussy = { manifest, code: counter.code + "\nexport function init(limit) {\n  if (limit > 10) throw new Error('limit too high');\n}\n" };
    const made = chain.run(alice, 'consortium', 'propose', [[deploy(fussy as ContractBundle, 'fussy', [99])], true]);
    expect(made).toMatchObject({ status: 'success', result: { state: 'open' } });
    const decided = chain.run(bob, 'consortium', 'vote', [(made.result as { id: number }).id, true]);
    expect(decided.result).toMatchObject({ state: 'failed' });
    const failure = (chain.call('consortium', 'proposal', [(made.result as { id: number }).id]) as { failure: string }).failure;
    expect(failure).toMatch(/action 1: deploying "fussy" failed: CONTRACT_ERROR: limit too high \(at contract\.js:\d+:\d+\)/);
    expect(chain.run(carol, 'fussy', 'increment', []).error?.code).toBe('UNKNOWN_CONTRACT');
  });

  it('rejected once the threshold is out of reach; withdrawn by its proposer; neither applies anything', () => {
    const before = chain.governanceRecords().filter(([k]) => k.startsWith('k:'));
    const made = chain.run(alice, 'consortium', 'propose', [[deploy(counter, 'counter2')]]);
    const { id } = made.result as { id: number };
    chain.run(bob, 'consortium', 'vote', [id, false]);
    expect(chain.run(carol, 'consortium', 'vote', [id, false])).toMatchObject({ result: { id, state: 'rejected' } });

    const second = (chain.run(alice, 'consortium', 'propose', [[deploy(counter, 'counter3')]]).result as { id: number }).id;
    expect(chain.run(bob, 'consortium', 'withdraw', [second]).error?.code).toBe('GOV_NOT_PROPOSER');
    expect(chain.run(alice, 'consortium', 'withdraw', [second])).toMatchObject({ result: { id: second, state: 'withdrawn' } });
    expect(chain.run(bob, 'consortium', 'vote', [second, true]).error).toMatchObject({ code: 'GOV_PROPOSAL_CLOSED', message: `proposal ${second} is withdrawn` });
    expect(chain.governanceRecords().filter(([k]) => k.startsWith('k:'))).toEqual(before);
  });

  it('expires after its lifetime: it reads expired and takes no more votes', () => {
    const { id } = chain.run(alice, 'consortium', 'propose', [[{ type: 'setThreshold', threshold: 3 }]]).result as { id: number };
    const later = chain.block([chain.tx(bob, 'consortium', 'vote', [id, true])], 'propose', chain.height + PROPOSAL_LIFETIME_BLOCKS + 1);
    expect(later.receipts[0]!.error).toMatchObject({ code: 'GOV_PROPOSAL_CLOSED' });
    expect(later.receipts[0]!.error!.message).toMatch(/expired after height/);
    expect(chain.call('consortium', 'proposal', [id])).toMatchObject({ state: 'expired' });
    expect(chain.call('consortium', 'proposals', ['expired'])).toEqual([expect.objectContaining({ id })]);
  });

  it('a proposal that no longer applies when it passes fails with the reason, and applies nothing', () => {
    const first = (chain.run(alice, 'consortium', 'propose', [[deploy(counter, 'twin')]]).result as { id: number }).id;
    const second = (chain.run(alice, 'consortium', 'propose', [[{ type: 'addMember', id: 'dave', publicKey: dave.publicKey }, deploy(counter, 'twin')]]).result as { id: number }).id;
    for (const voter of [alice, bob]) chain.run(voter, 'consortium', 'vote', [first, true]);
    chain.run(alice, 'consortium', 'vote', [second, true]);
    const failed = chain.run(bob, 'consortium', 'vote', [second, true]);
    expect(failed).toMatchObject({ status: 'success', result: { id: second, state: 'failed' } });
    const view = chain.call('consortium', 'proposal', [second]) as { failure: string };
    expect(view.failure).toMatch(/action 2: a contract named "twin" is deployed already/);
    // Its first action (adding dave) did not apply either.
    expect((chain.call('consortium', 'members') as { members: unknown[] }).members).toHaveLength(3);
  });
});

describe('refusals: a clear code, and nothing changes but the sender\'s nonce', () => {
  const cases: [string, () => ReturnType<GovernanceChain['tx']>, string, RegExp][] = [
    ['a non-member proposes', () => chain.tx(outsider, 'consortium', 'propose', [[{ type: 'setThreshold', threshold: 1 }]]), 'GOV_NOT_MEMBER', /not a member/],
    ['an unknown action', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'mintMoney' }]]), 'GOV_ACTION_INVALID', /action 1: unknown action "mintMoney"/],
    ['a rotation before the chain has a secret', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'rotateSecret' }]]), 'GOV_ACTION_INVALID', /no consortium secret yet/],
    ['a member id that would not key its votes', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'addMember', id: '__proto__', publicKey: dave.publicKey }]]), 'GOV_ACTION_INVALID', /not "__proto__"/],
    ['a node id that is not one', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'addNode', nodeId: 'node 5', voteKey: alice.publicKey }]]), 'GOV_ACTION_INVALID', /nodeId must be a node id/],
    ['a malformed bundle', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'deployContract', name: 'x', bundle: { manifest: {}, code: 'x' } }]]), 'GOV_ACTION_INVALID', /bundle is not valid/],
    [
      'a bundle that does not load',
      () => chain.tx(alice, 'consortium', 'propose', [[deploy({ manifest: counter.manifest, code: 'export function increment( {' }, 'broken')]]),
      'GOV_ACTION_INVALID',
      /does not load/,
    ],
    ['an empty proposal', () => chain.tx(alice, 'consortium', 'propose', [[]]), 'GOV_ACTION_INVALID', /1 to 32 actions/],
    ['a reserved name', () => chain.tx(alice, 'consortium', 'propose', [[deploy(counter, 'consortium')]]), 'GOV_ACTION_INVALID', /reserved/],
    ['upgrading a contract that is not deployed', () => chain.tx(alice, 'consortium', 'propose', [[upgrade(counter, 'nope')]]), 'GOV_ACTION_INVALID', /no contract named "nope"/],
    ['a threshold above the members', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'setThreshold', threshold: 4 }]]), 'GOV_ACTION_INVALID', /exceed the 3 members/],
    ['removing a member who is not one', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'removeMember', id: 'zed' }]]), 'GOV_ACTION_INVALID', /"zed" is not a member/],
    ['blocks larger than the genesis allows', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'setConsensus', params: { maxBlockBytes: 8 * 1024 * 1024 } }]]), 'GOV_ACTION_INVALID', /maxBlockBytes cannot go above/],
    ['an unknown consensus parameter', () => chain.tx(alice, 'consortium', 'propose', [[{ type: 'setConsensus', params: { speed: 9 } }]]), 'GOV_ACTION_INVALID', /unknown consensus parameter "speed"/],
    ['a vote on no proposal', () => chain.tx(alice, 'consortium', 'vote', [999, true]), 'GOV_PROPOSAL_NOT_FOUND', /no proposal 999/],
    ['a vote that is not a boolean', () => chain.tx(alice, 'consortium', 'vote', [1, 'yes']), 'GOV_ACTION_INVALID', /approve: true or false/],
    ['a vote on a closed proposal', () => chain.tx(carol, 'consortium', 'vote', [1, true]), 'GOV_PROPOSAL_CLOSED', /proposal 1 is accepted/],
    ['a method the system contract does not have', () => chain.tx(alice, 'consortium', 'seize', []), 'SYSTEM_TX_REFUSED', /no method "seize"/],
  ];
  for (const [what, make, code, message] of cases) {
    it(what, () => {
      const before = chain.governanceRecords();
      const tx = make();
      const { receipts } = chain.block([tx]);
      expect(receipts[0]).toMatchObject({ status: 'failed', error: { code } });
      expect(receipts[0]!.error!.message).toMatch(message);
      expect(chain.governanceRecords()).toEqual(before);
      expect(chain.nonce(tx.from)).toBe(tx.nonce + 1);
    });
  }

  it('a second vote by the same member', () => {
    const { id } = chain.run(alice, 'consortium', 'propose', [[{ type: 'setThreshold', threshold: 2 }]]).result as { id: number };
    chain.run(bob, 'consortium', 'vote', [id, false]);
    expect(chain.run(bob, 'consortium', 'vote', [id, true]).error).toMatchObject({ code: 'GOV_ALREADY_VOTED' });
    chain.run(alice, 'consortium', 'withdraw', [id]);
  });

  it('a transaction whose gas limit is below what it uses is left out of the block', () => {
    const args: JsonValue[] = [[{ type: 'setThreshold', threshold: 2 }]];
    const tx = chain.tx(alice, 'consortium', 'propose', args, { gasLimit: systemTxGas(args) - 1 });
    const { excluded, receipts } = chain.block([tx]);
    expect(receipts).toEqual([]);
    expect(excluded[0]).toMatchObject({ code: 'TX_GAS_LIMIT' });
    expect(excluded[0]!.message).toMatch(`below the ${systemTxGas(args)} gas`);
  });
});

describe('members, threshold, policy and parameters', () => {
  let c: GovernanceChain;
  beforeAll(async () => {
    c = await GovernanceChain.create(governanceGenesis(members));
  });
  afterAll(() => c.runtime.dispose());

  it('adding a member raises the majority; a removed member\'s vote stops counting', () => {
    expect(c.view().threshold).toBe(2);
    expect(pass(c, [{ type: 'addMember', id: 'dave', publicKey: dave.publicKey }]).state).toBe('accepted');
    expect(c.view().threshold).toBe(3);
    expect(c.call('consortium', 'members')).toMatchObject({ threshold: 3, members: [{ id: 'alice' }, { id: 'bob' }, { id: 'carol' }, { id: 'dave' }] });

    // dave approves a proposal, then is removed: his approval no longer counts towards it.
    const { id } = c.run(alice, 'consortium', 'propose', [[{ type: 'setConsensus', params: { maxBlockTxs: 500 } }]]).result as { id: number };
    c.run(dave, 'consortium', 'vote', [id, true]);
    expect(pass(c, [{ type: 'removeMember', id: 'dave' }], [bob, carol]).state).toBe('accepted');
    expect(c.call('consortium', 'proposal', [id])).toMatchObject({ approvals: 0, required: 2, state: 'open', votes: { dave: true } });
    expect(c.run(dave, 'consortium', 'vote', [id, true]).error?.code).toBe('GOV_NOT_MEMBER');
    expect(c.run(bob, 'consortium', 'vote', [id, true])).toMatchObject({ result: { state: 'open' } });
    expect(c.run(carol, 'consortium', 'vote', [id, true])).toMatchObject({ result: { state: 'accepted' } });
    expect(c.view().consensus.maxBlockTxs).toBe(500);
  });

  it('a threshold set by governance replaces the majority', () => {
    expect(pass(c, [{ type: 'setThreshold', threshold: 3 }]).state).toBe('accepted');
    expect(c.view().threshold).toBe(3);
    expect(pass(c, [{ type: 'setThreshold', threshold: 1 }], [bob, carol]).state).toBe('accepted');
    // One member alone now passes a proposal, as in `cloister dev`.
    expect(c.run(alice, 'consortium', 'propose', [[{ type: 'setThreshold', threshold: 2 }], true])).toMatchObject({ result: { state: 'accepted' } });
  });

  it('allowing and retiring a measurement changes the policy and its hash, from the next block on', () => {
    const before = c.view();
    const next = 'cd'.repeat(48);
    expect(pass(c, [{ type: 'allowMeasurement', platform: 'virtual', measurement: next }]).state).toBe('accepted');
    const allowed = c.view();
    expect(allowed.policy.measurements.virtual).toEqual([VIRTUAL_MEASUREMENT, next].sort());
    expect(allowed.policyHash).not.toBe(before.policyHash);
    expect(pass(c, [{ type: 'retireMeasurement', platform: 'virtual', measurement: VIRTUAL_MEASUREMENT }]).state).toBe('accepted');
    expect(c.view().policy.measurements.virtual).toEqual([next]);
    const last = c.run(alice, 'consortium', 'propose', [[{ type: 'retireMeasurement', platform: 'virtual', measurement: next }]]);
    expect(last.error).toMatchObject({ code: 'GOV_ACTION_INVALID' });
    expect(last.error!.message).toMatch(/last allowed measurement/);
    const otherPlatform = c.run(alice, 'consortium', 'propose', [[{ type: 'allowMeasurement', platform: 'sev-snp', measurement: 'ef'.repeat(48) }]]);
    expect(otherPlatform.error!.message).toMatch(/does not allow the platform sev-snp/);
  });

  it('setPolicy replaces the policy; an invalid one is refused', () => {
    const policy = { allowedPlatforms: ['virtual', 'sev-snp'], allowVirtual: true, allowDebug: false, measurements: { virtual: [VIRTUAL_MEASUREMENT], 'sev-snp': ['01'.repeat(48)] } };
    expect(pass(c, [{ type: 'setPolicy', policy }]).state).toBe('accepted');
    expect(canonicalize(c.view().policy as unknown as JsonValue)).toBe(canonicalize(policy));
    const bad = c.run(alice, 'consortium', 'propose', [[{ type: 'setPolicy', policy: { allowedPlatforms: ['mainframe'] } }]]);
    expect(bad.error).toMatchObject({ code: 'GOV_ACTION_INVALID' });
  });

  it('adding and removing a validator changes the set from the next height; the set of earlier heights is kept for a restart', () => {
    const before = c.view();
    const node = { nodeId: '12D3KooWQsyhJ2gR4m5uHpWCsN8gKVFU3Gd1aXbKxF7f3JdZK8QE', voteKey: newSigner().publicKey };
    const { height } = (() => {
      const made = c.run(alice, 'consortium', 'propose', [[{ type: 'addNode', ...node }], true]);
      const { id } = made.result as { id: number };
      const decided = c.run(bob, 'consortium', 'vote', [id, true]);
      expect(decided.result).toMatchObject({ state: 'accepted' });
      expect(decided.events.find((e) => e.name === 'NodeAdded')!.data).toEqual({ ...node, fromHeight: c.height + 1 });
      return { height: c.height };
    })();
    const after = c.view();
    expect(after.validators).toEqual([...before.validators, node]);
    expect(after.quorum).toBe(2);
    expect(after.validatorSetHash).not.toBe(before.validatorSetHash);
    // The block that added it was certified by the set before; the next one by the new set.
    expect(validatorsAt(c.state, c.genesis, height)).toEqual(before.validators);
    expect(validatorsAt(c.state, c.genesis, height + 1)).toEqual(after.validators);

    const dup = c.run(alice, 'consortium', 'propose', [[{ type: 'addNode', ...node }]]);
    expect(dup.error!.message).toMatch(/is a validator already/);
    const badKey = c.run(alice, 'consortium', 'propose', [[{ type: 'addNode', nodeId: node.nodeId.replace('Q', 'R'), voteKey: '00'.repeat(32) }]]);
    expect(badKey.error).toMatchObject({ code: 'GOV_ACTION_INVALID' });
    expect(c.run(alice, 'consortium', 'propose', [[{ type: 'removeNode', nodeId: 'nobody' }]]).error!.message).toMatch(/not a validator/);

    expect(pass(c, [{ type: 'removeNode', nodeId: node.nodeId }]).state).toBe('accepted');
    expect(c.view().validators).toEqual(before.validators);
    expect(c.view().validatorSetHash).toBe(before.validatorSetHash);
    const last = c.run(alice, 'consortium', 'propose', [[{ type: 'removeNode', nodeId: before.validators[0]!.nodeId }]]);
    expect(last.error!.message).toMatch(/the last validator cannot be removed/);
  });

  it('the view read back from the state is the genesis view until governance changes something', async () => {
    const fresh = await GovernanceChain.create(governanceGenesis(members));
    try {
      expect(fresh.view()).toEqual(genesisChainView(fresh.genesis));
      expect(chainViewAt(c.genesis, c.state)).toEqual(c.view());
      expect(c.view().validatorSetHash).toBe(genesisChainView(c.genesis).validatorSetHash);
    } finally {
      fresh.runtime.dispose();
    }
  });
});

describe('the genesis members', () => {
  it('are each listed once, and none is "__proto__" (member ids key the votes)', () => {
    const genesis = governanceGenesis(members) as unknown as Record<string, unknown>;
    const twice = { ...genesis, members: [...(genesis['members'] as unknown[]), { id: 'alice', publicKey: dave.publicKey }] };
    expect(() => parseGenesis(JSON.parse(JSON.stringify(twice)))).toThrow(/member "alice" is listed twice/);
    const proto = { ...genesis, members: [{ id: '__proto__', publicKey: dave.publicKey }] };
    expect(() => parseGenesis(JSON.parse(JSON.stringify(proto)))).toThrow(/cannot be "__proto__"/);
    expect(parseGenesis(JSON.parse(JSON.stringify(genesis)))).toBeDefined();
  });
});

describe('replaying the ledger', () => {
  it('re-executing the committed blocks from the genesis rebuilds the same state and the same chain view', async () => {
    const genesis = governanceGenesis(members);
    const live = await GovernanceChain.create(genesis);
    const replay = await GovernanceChain.create(genesis);
    try {
      const ledger: { txs: ReturnType<GovernanceChain['tx']>[]; height: number }[] = [];
      const record = (outcome: { txs: ReturnType<GovernanceChain['tx']>[]; height: number }): void => {
        ledger.push(outcome);
      };
      record(live.block([live.tx(alice, 'consortium', 'propose', [[deploy(counter), { type: 'addMember', id: 'dave', publicKey: dave.publicKey }], true])]));
      record(live.block([live.tx(bob, 'consortium', 'vote', [1, true])]));
      record(live.block([live.tx(carol, 'counter', 'increment', []), live.tx(alice, 'consortium', 'propose', [[{ type: 'setConsensus', params: { timeoutProposeMs: 4000 } }], true])]));
      record(live.block([live.tx(bob, 'consortium', 'vote', [2, true]), live.tx(dave, 'consortium', 'vote', [2, true])]));
      record(live.block([live.tx(alice, 'consortium', 'propose', [[upgrade(counterV2, 'counter')], true])]));
      record(live.block([live.tx(carol, 'consortium', 'vote', [3, false]), live.tx(dave, 'consortium', 'vote', [3, true]), live.tx(bob, 'consortium', 'vote', [3, true])]));

      for (const block of ledger) replay.block(block.txs, 'validate', block.height);
      expect(replay.state.root).toBe(live.state.root);
      expect(replay.view()).toEqual(live.view());
      expect(live.view().consensus.timeoutProposeMs).toBe(4000);
      expect(live.view().members.map((m) => m.id)).toEqual(['alice', 'bob', 'carol', 'dave']);
      expect(live.call('consortium', 'proposal', [3])).toMatchObject({ state: 'accepted' });
    } finally {
      live.runtime.dispose();
      replay.runtime.dispose();
    }
  });
});

/** An enclave's claim: its keys and virtual evidence (under `root`) binding them to the node, the chain and `freshness`. */
function virtualClaim(
  root: ReturnType<typeof generateVirtualRoot>,
  genesis: Genesis,
  options: { nodeId: string; voteKey: string; freshness: string; measurement?: string | undefined },
): JsonValue {
  const publicKeys = { vote: options.voteKey, encryption: 'ee'.repeat(32) };
  const evidence = createVirtualEvidence({
    rootPrivateKeyPem: root.privateKeyPem,
    measurement: Buffer.from(options.measurement ?? VIRTUAL_MEASUREMENT, 'hex'),
    reportData: reportDataFor({ publicKeys, chainId: genesis.chainId, nodeId: options.nodeId, freshness: options.freshness }),
  });
  return { nodeId: options.nodeId, publicKeys, evidence: Buffer.from(evidence).toString('base64') };
}

describe('a validator hands its place over to its successor enclave (rolling upgrade)', () => {
  const root = generateVirtualRoot();
  const oldEnclave = new Ed25519Signer('07'.repeat(32));
  const successor = newSigner();
  let h: GovernanceChain;
  beforeAll(async () => {
    const genesis = governanceGenesis(members);
    h = await GovernanceChain.create({ ...genesis, enclave: { ...genesis.enclave, virtualRoots: [root.publicKeyPem] } });
  });
  afterAll(() => h.runtime.dispose());

  /** The successor's claim: its keys and virtual evidence binding them to `nodeId` and this handover. */
  function claimFor(options: { nodeId?: string; measurement?: string; fromVoteKey?: string; voteKey?: string } = {}): JsonValue {
    const nodeId = options.nodeId ?? 'node-1';
    const freshness = handoverFreshness(genesisHash(h.genesis), nodeId, options.fromVoteKey ?? oldEnclave.publicKey);
    return virtualClaim(root, h.genesis, { nodeId, voteKey: options.voteKey ?? successor.publicKey, freshness, measurement: options.measurement });
  }

  const refusals: [string, () => ReturnType<GovernanceChain['tx']>, RegExp][] = [
    ['signed by a key that holds no validator place', () => h.tx(alice, 'consortium', 'handover', [claimFor()]), /only a validator's enclave hands its place over/],
    ['a claim for another node', () => h.tx(oldEnclave, 'consortium', 'handover', [claimFor({ nodeId: 'node-2' })]), /must be for node node-1/],
    ['a program the policy does not allow', () => h.tx(oldEnclave, 'consortium', 'handover', [claimFor({ measurement: 'cd'.repeat(48) })]), /MEASUREMENT_NOT_ALLOWED/],
    ['evidence made for another handover (replayed)', () => h.tx(oldEnclave, 'consortium', 'handover', [claimFor({ fromVoteKey: alice.publicKey })]), /REPORT_DATA_MISMATCH/],
    ['a successor with the same key', () => h.tx(oldEnclave, 'consortium', 'handover', [claimFor({ voteKey: oldEnclave.publicKey })]), /same vote key/],
  ];
  for (const [what, make, message] of refusals) {
    it(`refuses ${what}, and changes nothing`, () => {
      const before = h.view();
      const { receipts } = h.block([make()]);
      expect(receipts[0]).toMatchObject({ status: 'failed', error: { code: 'GOV_HANDOVER_INVALID' } });
      expect(receipts[0]!.error!.message).toMatch(message);
      expect(h.view()).toEqual(before);
    });
  }

  it('takes the successor key from the next height, keeping the node its place in the set', () => {
    const before = h.view();
    const { receipts } = h.block([h.tx(oldEnclave, 'consortium', 'handover', [claimFor()])]);
    expect(receipts[0]).toMatchObject({ status: 'success', result: { nodeId: 'node-1', voteKey: successor.publicKey, fromHeight: h.height + 1 } });
    expect(h.view().validators).toEqual([{ nodeId: 'node-1', voteKey: successor.publicKey }]);
    expect(validatorsAt(h.state, h.genesis, h.height)).toEqual(before.validators);
    // The old key holds no place any more: it cannot hand over again.
    const again = h.block([h.tx(oldEnclave, 'consortium', 'handover', [claimFor()])]);
    expect(again.receipts[0]!.error!.message).toMatch(/only a validator's enclave/);
  });
});

describe("a validator's attestation on the ledger (attest)", () => {
  const root = generateVirtualRoot();
  const enclave = new Ed25519Signer('07'.repeat(32));
  let h: GovernanceChain;
  beforeAll(async () => {
    const genesis = governanceGenesis(members);
    h = await GovernanceChain.create({ ...genesis, enclave: { ...genesis.enclave, virtualRoots: [root.publicKeyPem] } });
  });
  afterAll(() => h.runtime.dispose());

  /** The enclave's claim, with virtual evidence bound to the parent of the block that includes it (the helper's blocks have none: zeros). */
  function claimFor(options: { nodeId?: string; measurement?: string; parentHash?: string; voteKey?: string } = {}): JsonValue {
    const freshness = ledgerAttestationFreshness(genesisHash(h.genesis), options.parentHash ?? ZERO_HASH);
    return virtualClaim(root, h.genesis, { nodeId: options.nodeId ?? 'node-1', voteKey: options.voteKey ?? enclave.publicKey, freshness, measurement: options.measurement });
  }

  const refusals: [string, () => ReturnType<GovernanceChain['tx']>, RegExp][] = [
    ['sent by a key that is not a validator', () => h.tx(alice, 'consortium', 'attest', [claimFor({ voteKey: alice.publicKey })]), /only a validator's enclave/],
    ['a claim for another node', () => h.tx(enclave, 'consortium', 'attest', [claimFor({ nodeId: 'node-2' })]), /must be for node node-1/],
    ['a program the policy does not allow', () => h.tx(enclave, 'consortium', 'attest', [claimFor({ measurement: 'cd'.repeat(48) })]), /MEASUREMENT_NOT_ALLOWED/],
    ['evidence made for another block (replayed)', () => h.tx(enclave, 'consortium', 'attest', [claimFor({ parentHash: 'ab'.repeat(32) })]), /REPORT_DATA_MISMATCH/],
  ];
  for (const [what, make, message] of refusals) {
    it(`refuses ${what}, and records nothing`, () => {
      const { receipts } = h.block([make()]);
      expect(receipts[0]).toMatchObject({ status: 'failed', error: { code: 'ATTESTATION_REFUSED' } });
      expect(receipts[0]!.error!.message).toMatch(message);
      expect(readLedgerAttestation(h.state, enclave.publicKey)).toBeUndefined();
    });
  }

  it('records the platform, measurement and evidence hash at the block, which a proposer refreshes after the interval', () => {
    const claim = claimFor() as { evidence: string };
    const { receipts, height } = h.block([h.tx(enclave, 'consortium', 'attest', [claim])]);
    expect(receipts[0]).toMatchObject({ status: 'success', events: [{ name: 'ValidatorAttested' }] });
    const record = readLedgerAttestation(h.state, enclave.publicKey)!;
    expect(record).toMatchObject({ height, nodeId: 'node-1', platform: 'virtual', measurement: VIRTUAL_MEASUREMENT });
    expect(record.evidenceHash).toBe(sha256Hex(Buffer.from(claim.evidence, 'base64')));
    expect(needsLedgerAttestation(h.state, enclave.publicKey, VIRTUAL_MEASUREMENT, record.time + 1000)).toBe(false);
    expect(needsLedgerAttestation(h.state, enclave.publicKey, VIRTUAL_MEASUREMENT, record.time + LEDGER_ATTESTATION_REFRESH_MS)).toBe(true);
    expect(needsLedgerAttestation(h.state, enclave.publicKey, 'cd'.repeat(48), record.time + 1000)).toBe(true);
  });

  it('is not a method clients may send', () => {
    expect(systemTxProblem('attest')).toMatchObject({ code: 'TX_UNKNOWN_METHOD' });
  });
});

describe('rotating the consortium secret', () => {
  const enclave = new Ed25519Signer('07'.repeat(32));
  let r: GovernanceChain;
  beforeAll(async () => {
    r = await GovernanceChain.create(governanceGenesis(members));
  });
  afterAll(() => r.runtime.dispose());
  const commit = (generation: number, key = newSigner().publicKey) => r.block([r.tx(enclave, 'consortium', 'commitSecret', [generation, key])]).receipts[0]!;

  it('asks for the next generation; a validator\'s enclave commits it once; older generations stay committed', () => {
    expect(commit(2).error!.message).toMatch(/commitSecret takes \(1,/);
    expect(commit(1).status).toBe('success');
    expect(commit(2).error!.message).toMatch(/a generation governance asked for/);
    expect(pass(r, [{ type: 'rotateSecret' }]).state).toBe('accepted');
    expect(r.state.read('g:secretRequested')).toBe('2');
    const pending = r.run(alice, 'consortium', 'propose', [[{ type: 'rotateSecret' }]]);
    expect(pending.error!.message).toMatch(/generation 2 of the consortium secret is being made already/);
    expect(r.block([r.tx(alice, 'consortium', 'commitSecret', [2, newSigner().publicKey])]).receipts[0]!.error!.message).toMatch(/only a validator's enclave/);
    expect(commit(3).error!.message).toMatch(/commitSecret takes \(2,/);
    expect(commit(2).status).toBe('success');
    expect(r.state.read('g:secretRequested')).toBeUndefined();
    expect(commit(2).error!.code).toBe('SYSTEM_TX_REFUSED');
    expect(r.state.read('s:secret:1')).toBeDefined();
    expect(pass(r, [{ type: 'rotateSecret' }]).state).toBe('accepted');
    expect(r.state.read('g:secretRequested')).toBe('3');
  });
});
