import type { JsonValue } from '../../consensus/index.js';
import type { ChainView } from '../../contracts/index.js';
import { defineMethod, type RpcMethod } from './method.js';
import * as s from './schemas.js';

/** What the governance methods read: the system contract's read-only methods, through the enclave's call path. */
export interface GovernanceApi {
  call(contract: string, method: string, args: JsonValue[]): Promise<{ result: JsonValue }>;
  /** The chain view of the next block, as this node's enclave reports it. */
  view(): ChainView;
}

const SYSTEM_CONTRACT = 'consortium';
const PROPOSAL_STATES = ['open', 'accepted', 'rejected', 'withdrawn', 'expired', 'failed'];
const READ_ERRORS = ['ENCLAVE_BUSY', 'ENCLAVE_UNAVAILABLE', 'SERVER_BUSY'] as const;

/**
 * The gov family: the consortium's members and proposals, read from the
 * committed state. Proposing, voting and withdrawing are transactions a member
 * signs, to the system contract `consortium` (`propose(actions, approve?)`,
 * `vote(id, approve)`, `withdraw(id)`), sent with chain_sendTransaction; the
 * typed client and `cloister gov` build them.
 */
export function governanceMethods(api: GovernanceApi): RpcMethod[] {
  const read = async (method: string, args: JsonValue[]): Promise<JsonValue> => (await api.call(SYSTEM_CONTRACT, method, args)).result;
  return [
    defineMethod({
      name: 'gov_members',
      summary: 'The members (id and ed25519 key) and the approvals a proposal needs now.',
      params: [],
      result: { name: 'members', schema: s.governanceMembersView },
      errors: READ_ERRORS,
      concurrency: { maxInFlight: 8, maxWaiting: 128 },
      handler: () => read('members', []),
    }),
    defineMethod({
      name: 'gov_chainView',
      summary:
        "The chain view the next block runs under: validators, attestation policy (with the allowed measurements), consensus parameters, members and threshold, with the validator-set and policy hashes its header commits to. The genesis, with every governance change committed so far; an auditor replaying the ledger's governance transactions gets the same.",
      params: [],
      result: { name: 'view', schema: s.chainView },
      handler: () => api.view() as unknown as JsonValue,
    }),
    defineMethod({
      name: 'gov_getProposal',
      summary: 'A proposal: its actions (a deployment shows its measurement instead of its code), votes, tally and state.',
      params: [{ name: 'id', schema: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } }],
      result: { name: 'proposal', schema: s.proposalView },
      errors: ['GOV_PROPOSAL_NOT_FOUND', ...READ_ERRORS],
      concurrency: { maxInFlight: 8, maxWaiting: 128 },
      handler: (id: number) => read('proposal', [id]),
    }),
    defineMethod({
      name: 'gov_listProposals',
      summary: 'Proposals, newest first (at most 100), optionally only those in one state.',
      params: [
        { name: 'state', summary: 'Only proposals in this state.', schema: { type: 'string', enum: PROPOSAL_STATES }, required: false },
        { name: 'limit', summary: 'At most this many (1 to 100, default 100).', schema: { type: 'integer', minimum: 1, maximum: 100 }, required: false },
      ],
      result: { name: 'proposals', schema: { type: 'array', items: s.proposalView } },
      errors: READ_ERRORS,
      concurrency: { maxInFlight: 8, maxWaiting: 128 },
      handler: (state?: string, limit?: number) => read('proposals', [state ?? null, ...(limit === undefined ? [] : [limit])]),
    }),
  ];
}
