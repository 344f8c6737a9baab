import { ChainError, canonicalize, type Genesis, type JsonValue } from '../../../consensus/index.js';
import { bundleMeasurement } from '../../bundle/index.js';
import { StateOverlay, type StateReader } from '../state.js';
import { applyActions, parseActions, type AppliedEvent, type ContractHost, type GovernanceAction } from './actions.js';
import { govError } from './errors.js';
import { govKey, memberByKey, readConfig, requiredApprovals, writeConfig, type GovernanceConfig, type GovernanceGenesis } from './records.js';

/**
 * Proposals and votes: the consortium's constitution (CCF's propose, vote,
 * resolve, apply). A member proposes a list of actions; members approve or
 * reject; when approvals reach the threshold the actions apply at once, in the
 * transaction of the deciding vote, all or nothing. A proposal is open for
 * PROPOSAL_LIFETIME_BLOCKS blocks after the one it was made in; the proposer
 * may withdraw it while it is open. Votes count only while their member is
 * one: a removed member's earlier vote no longer counts.
 */
export const PROPOSAL_LIFETIME_BLOCKS = 100_000;

export type ProposalState = 'open' | 'accepted' | 'rejected' | 'withdrawn' | 'expired' | 'failed';

export interface StoredProposal {
  id: number;
  /** The proposer's member id and key. */
  proposer: string;
  proposerKey: string;
  actions: GovernanceAction[];
  /** The height of the block the proposal was made in. */
  height: number;
  /** The last height at which it takes votes. */
  expiresAt: number;
  /** member id → true (approve) or false (reject). */
  votes: Record<string, boolean>;
  state: Exclude<ProposalState, 'expired'>;
  /** The height at which it was decided or withdrawn. */
  closedAt?: number;
  /** Why the actions did not apply, when the state is failed. */
  failure?: string;
}

/** A proposal as readers see it: its state at the height read (open past its last height reads expired), with its tally. */
export interface ProposalView extends Omit<StoredProposal, 'state' | 'actions'> {
  state: ProposalState;
  actions: JsonValue[];
  approvals: number;
  rejections: number;
  /** Approvals it needs (the threshold of the members now). */
  required: number;
}

export interface GovernanceContext {
  genesis: Genesis;
  height: number;
  /** The block's time, ms. */
  time: number;
  /** The hash of the block this one builds on. */
  parentHash: string;
  contracts: ContractHost;
}

export interface GovernanceOutcome {
  result: JsonValue;
  events: AppliedEvent[];
}

function readProposal(state: StateReader, id: unknown): StoredProposal {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw govError('GOV_PROPOSAL_NOT_FOUND', 'a proposal id is a positive integer');
  const text = state.read(govKey.proposal(id));
  if (text === undefined) throw govError('GOV_PROPOSAL_NOT_FOUND', `no proposal ${id}`);
  return JSON.parse(text) as StoredProposal;
}

function effectiveState(p: StoredProposal, height: number): ProposalState {
  return p.state === 'open' && height > p.expiresAt ? 'expired' : p.state;
}

function requireOpen(p: StoredProposal, height: number): void {
  const state = effectiveState(p, height);
  if (state === 'expired') throw govError('GOV_PROPOSAL_CLOSED', `proposal ${p.id} expired after height ${p.expiresAt}`);
  if (state !== 'open') throw govError('GOV_PROPOSAL_CLOSED', `proposal ${p.id} is ${state}`);
}

function requireMember(state: StateReader, ctx: GovernanceContext, from: string): { id: string } {
  const member = memberByKey(readConfig(state, ctx.genesis), from);
  if (!member) throw govError('GOV_NOT_MEMBER', `${from} is not a member of the consortium`);
  return member;
}

function store(state: StateOverlay, p: StoredProposal): void {
  state.write(govKey.proposal(p.id), canonicalize(p as unknown as JsonValue));
}

/** The view of a proposal: deployments show their measurement and size instead of the code. */
export function viewOf(p: StoredProposal, state: StateReader, genesis: GovernanceGenesis, height: number): ProposalView {
  const config = readConfig(state, genesis);
  const current = new Set(config.members.map((m) => m.id));
  const counted = Object.entries(p.votes).filter(([member]) => current.has(member));
  const actions = p.actions.map((a): JsonValue => {
    if (a.type !== 'deployContract' && a.type !== 'upgradeContract') return a as unknown as JsonValue;
    const { bundle, ...rest } = a;
    return { ...rest, measurement: bundleMeasurement(bundle), version: bundle.manifest.version, codeBytes: Buffer.byteLength(bundle.code, 'utf8') } as unknown as JsonValue;
  });
  return {
    ...p,
    actions,
    state: effectiveState(p, height),
    approvals: counted.filter(([, approve]) => approve).length,
    rejections: counted.filter(([, approve]) => !approve).length,
    required: requiredApprovals(config),
  };
}

/**
 * Tallies a proposal after a vote and, when it has enough approvals, applies
 * its actions (all or none): accepted, or failed with the reason. Rejected
 * once so many members rejected that the threshold is out of reach.
 */
function decide(state: StateOverlay, ctx: GovernanceContext, p: StoredProposal): AppliedEvent[] {
  const config = readConfig(state, ctx.genesis);
  const members = new Set(config.members.map((m) => m.id));
  const votes = Object.entries(p.votes).filter(([member]) => members.has(member));
  const approvals = votes.filter(([, approve]) => approve).length;
  const rejections = votes.length - approvals;
  const required = requiredApprovals(config);
  if (approvals >= required) {
    const layer = new StateOverlay(state);
    const after = structuredClone(config);
    try {
      const events = applyActions(p.actions, layer, after, ctx.contracts, ctx.height);
      withinStartupLimits(after, ctx.genesis);
      writeConfig(layer, config, after, ctx.height + 1);
      layer.mergeInto(state);
      Object.assign(p, { state: 'accepted', closedAt: ctx.height });
      return [{ name: 'ProposalAccepted', data: { id: p.id } }, ...events];
    } catch (err) {
      if (!(err instanceof ChainError) || err.code !== 'GOV_ACTION_INVALID') throw err;
      Object.assign(p, { state: 'failed', closedAt: ctx.height, failure: err.message });
      return [{ name: 'ProposalFailed', data: { id: p.id, reason: err.message } }];
    }
  }
  if (rejections > config.members.length - required) {
    Object.assign(p, { state: 'rejected', closedAt: ctx.height });
    return [{ name: 'ProposalRejected', data: { id: p.id } }];
  }
  return [];
}

/** `propose(actions, approve?)`: a member's proposal; with approve true the proposer's approval comes with it. */
export function propose(state: StateOverlay, ctx: GovernanceContext, from: string, args: JsonValue[]): GovernanceOutcome {
  if (args.length < 1 || args.length > 2 || (args.length === 2 && typeof args[1] !== 'boolean')) {
    throw govError('GOV_ACTION_INVALID', 'propose takes (actions, approve?)');
  }
  const member = requireMember(state, ctx, from);
  const actions = parseActions(args[0]);
  // Checked against the chain as it is now, on a layer that is dropped: a proposal that could not apply today is refused.
  const checked = structuredClone(readConfig(state, ctx.genesis));
  applyActions(actions, new StateOverlay(state), checked, ctx.contracts, ctx.height, 'check');
  withinStartupLimits(checked, ctx.genesis);
  const next = state.read(govKey.nextProposal);
  const id = next === undefined ? 1 : (JSON.parse(next) as number);
  state.write(govKey.nextProposal, String(id + 1));
  const proposal: StoredProposal = {
    id,
    proposer: member.id,
    proposerKey: from,
    actions,
    height: ctx.height,
    expiresAt: ctx.height + PROPOSAL_LIFETIME_BLOCKS,
    votes: {},
    state: 'open',
  };
  const events: AppliedEvent[] = [{ name: 'ProposalCreated', data: { id, proposer: member.id } }];
  if (args[1] === true) {
    proposal.votes[member.id] = true;
    events.push(...decide(state, ctx, proposal));
  }
  store(state, proposal);
  return { result: { id, state: proposal.state }, events };
}

/** `vote(id, approve)`: a member's vote, once per proposal. */
export function vote(state: StateOverlay, ctx: GovernanceContext, from: string, args: JsonValue[]): GovernanceOutcome {
  if (args.length !== 2 || typeof args[1] !== 'boolean') throw govError('GOV_ACTION_INVALID', 'vote takes (proposal id, approve: true or false)');
  const member = requireMember(state, ctx, from);
  const proposal = readProposal(state, args[0]);
  requireOpen(proposal, ctx.height);
  if (Object.prototype.hasOwnProperty.call(proposal.votes, member.id)) {
    throw govError('GOV_ALREADY_VOTED', `${member.id} already voted on proposal ${proposal.id}`);
  }
  proposal.votes[member.id] = args[1];
  const events: AppliedEvent[] = [{ name: 'Voted', data: { id: proposal.id, member: member.id, approve: args[1] } }];
  events.push(...decide(state, ctx, proposal));
  store(state, proposal);
  return { result: { id: proposal.id, state: proposal.state }, events };
}

/** `withdraw(id)`: the proposer takes an open proposal back. */
export function withdraw(state: StateOverlay, ctx: GovernanceContext, from: string, args: JsonValue[]): GovernanceOutcome {
  if (args.length !== 1) throw govError('GOV_ACTION_INVALID', 'withdraw takes (proposal id)');
  requireMember(state, ctx, from);
  const proposal = readProposal(state, args[0]);
  requireOpen(proposal, ctx.height);
  if (proposal.proposerKey !== from) throw govError('GOV_NOT_PROPOSER', `only ${proposal.proposer} withdraws proposal ${proposal.id}`);
  Object.assign(proposal, { state: 'withdrawn', closedAt: ctx.height });
  store(state, proposal);
  return { result: { id: proposal.id, state: proposal.state }, events: [{ name: 'ProposalWithdrawn', data: { id: proposal.id } }] };
}

/** One proposal at a height (GOV_PROPOSAL_NOT_FOUND when there is none). */
export function proposalAt(state: StateReader, genesis: GovernanceGenesis, height: number, id: unknown): ProposalView {
  return viewOf(readProposal(state, id), state, genesis, height);
}

/** Most proposals one listing looks at (newest first): a listing's cost stays bounded however long the history. */
export const MAX_PROPOSALS_SCANNED = 1000;

/** The newest proposals first, at most `limit`, optionally only those in one state (among the newest MAX_PROPOSALS_SCANNED). */
export function listProposals(state: StateReader, genesis: GovernanceGenesis, height: number, filter: { state?: ProposalState; limit: number }): ProposalView[] {
  const next = state.read(govKey.nextProposal);
  const newest = next === undefined ? 0 : (JSON.parse(next) as number) - 1;
  const out: ProposalView[] = [];
  for (let id = newest; id >= 1 && id > newest - MAX_PROPOSALS_SCANNED && out.length < filter.limit; id--) {
    const view = proposalAt(state, genesis, height, id);
    if (filter.state === undefined || view.state === filter.state) out.push(view);
  }
  return out;
}

/**
 * What governance cannot raise: a node sizes its network's message limit from
 * the genesis's maxBlockBytes when it starts (a proposal carries its block),
 * so larger blocks would not reach the other validators.
 */
function withinStartupLimits(config: GovernanceConfig, genesis: Genesis): void {
  if (config.consensus.maxBlockBytes > genesis.consensus.maxBlockBytes) {
    throw govError('GOV_ACTION_INVALID', `maxBlockBytes cannot go above the genesis's ${genesis.consensus.maxBlockBytes} (the nodes' network message limit is set from it)`);
  }
}
