import { ChainError, canonicalize, isHexOfLength, signTx, type Ed25519Signer, type JsonValue, type SignedPlainTx } from '../../consensus/index.js';
import { stateKey, type StateOverlay, type StateReader } from './state.js';
import { ATTEST_METHOD, attest, readLedgerAttestation } from './ledger-attestation.js';
import {
  govKey,
  latestSecretGeneration,
  requestedSecretGeneration,
  HANDOVER_METHOD,
  handover,
  listProposals,
  memberByKey,
  propose,
  proposalAt,
  readConfig,
  requiredApprovals,
  vote,
  withdraw,
  type GovernanceContext,
  type ProposalState,
} from './governance/index.js';

/**
 * The chain's built-in system contract, `consortium`, which no bundle can
 * claim (the name is reserved). It is part of the enclave program, so the
 * enclave measurement covers its code. Its methods:
 *  - `commitSecret(generation, publicKey)`, the public commitment of a
 *    consortium-secret generation (its network encryption key). Only a
 *    validator's enclave sends it, signed with its vote key, as the proposer
 *    of a block: generation 1 while the ledger has none, a later one only
 *    when a rotation asked for it (`g:secretRequested`); the first committed
 *    is final.
 *  - `attest(claim)`, a validator's attestation evidence, made for the block
 *    that includes it and recorded on the ledger (ledger-attestation.ts).
 *    Only a validator's enclave sends it, as a block's proposer.
 *  - governance (governance/): `propose(actions, approve?)`, `vote(id, approve)`,
 *    `withdraw(id)`, sent by members; `handover(successorClaim)`, sent by a
 *    validator's enclave handing its place to its successor (a rolling
 *    upgrade); read-only `members()`, `proposal(id)`, `proposals(state?, limit?)`,
 *    `attestations()` (each validator with its last evidence on the ledger).
 */
export const CONSORTIUM_CONTRACT = 'consortium';
export const COMMIT_SECRET_METHOD = 'commitSecret';
/** The gas a system transaction declares and uses (fixed: it runs no contract code). */
export const SYSTEM_TX_GAS = 10_000;

export interface SecretCommitment {
  generation: number;
  /** The generation's network public key (X25519), lowercase hex. */
  publicKey: string;
}

export function secretCommitTx(chainId: string, signer: Ed25519Signer, nonce: number, commitment: SecretCommitment): SignedPlainTx {
  return signTx(
    { chainId, from: signer.publicKey, nonce, contract: CONSORTIUM_CONTRACT, method: COMMIT_SECRET_METHOD, args: [commitment.generation, commitment.publicKey], gasLimit: SYSTEM_TX_GAS },
    signer,
  ) as SignedPlainTx;
}

/** Every committed generation in a state: generation → network public key. */
export function readCommitments(state: { withPrefix(prefix: string): Iterable<[string, string]> }): Map<number, string> {
  const out = new Map<number, string>();
  for (const [, record] of state.withPrefix('s:secret:')) {
    const c = JSON.parse(record) as SecretCommitment;
    out.set(c.generation, c.publicKey);
  }
  return out;
}

export function readCommitment(state: StateReader, generation: number): SecretCommitment | undefined {
  const text = state.read(stateKey.secret(generation));
  return text === undefined ? undefined : (JSON.parse(text) as SecretCommitment);
}

/** The system contract's methods a client may send or call, and whether each is read-only. */
export const SYSTEM_METHODS: Readonly<Record<string, boolean>> = Object.freeze({
  propose: false,
  vote: false,
  withdraw: false,
  handover: false,
  members: true,
  proposal: true,
  proposals: true,
  attestations: true,
});

/**
 * Why a transaction to the system contract can never be included, from its
 * outline alone (sealed, an unknown or a read-only method); null when it may
 * be. The host's mempool and the enclave's admission both ask.
 */
export function systemTxProblem(method: string | null): { code: 'TX_MALFORMED' | 'TX_UNKNOWN_METHOD' | 'TX_READONLY_METHOD'; message: string } | null {
  if (method === null) return { code: 'TX_MALFORMED', message: 'governance transactions are public: send them in the clear' };
  const readonly = Object.prototype.hasOwnProperty.call(SYSTEM_METHODS, method) ? SYSTEM_METHODS[method] : undefined;
  if (readonly === undefined) return { code: 'TX_UNKNOWN_METHOD', message: `contract "${CONSORTIUM_CONTRACT}" has no method "${method}"` };
  if (readonly) return { code: 'TX_READONLY_METHOD', message: `"${CONSORTIUM_CONTRACT}.${method}" is read-only: use chain_call, not a transaction` };
  return null;
}

const GOVERNANCE_TXS = { propose, vote, withdraw, [HANDOVER_METHOD]: handover } as const;

export interface SystemOutcome {
  error: { code: string; message: string } | null;
  result: JsonValue;
  events: { name: string; data: JsonValue }[];
}

/**
 * Runs a system transaction on `block`. A refused one changes nothing and
 * its receipt says why (the code is the ChainError's: GOV_NOT_MEMBER, …).
 */
export function runSystemTx(block: StateOverlay, tx: SignedPlainTx, validators: readonly string[], governance: GovernanceContext | undefined): SystemOutcome {
  const fail = (code: string, message: string): SystemOutcome => ({ error: { code, message }, result: null, events: [] });
  if (tx.method === COMMIT_SECRET_METHOD) return commitSecret(block, tx, validators);
  if (tx.method === ATTEST_METHOD) {
    if (!governance) return fail('SYSTEM_TX_REFUSED', 'attestations are not recorded here');
    try {
      const outcome = attest(block, governance, tx.from, tx.args);
      return { error: null, ...outcome };
    } catch (err) {
      if (err instanceof ChainError) return fail('ATTESTATION_REFUSED', err.message);
      throw err;
    }
  }
  const handler = Object.prototype.hasOwnProperty.call(GOVERNANCE_TXS, tx.method) ? GOVERNANCE_TXS[tx.method as keyof typeof GOVERNANCE_TXS] : undefined;
  if (!handler) return fail('SYSTEM_TX_REFUSED', `the system contract has no method "${tx.method}"`);
  if (!governance) return fail('SYSTEM_TX_REFUSED', 'governance is not available here');
  try {
    const outcome = handler(block, governance, tx.from, tx.args);
    return { error: null, result: outcome.result, events: outcome.events };
  } catch (err) {
    if (err instanceof ChainError && err.code.startsWith('GOV_')) return fail(err.code, err.message);
    throw err;
  }
}

function commitSecret(block: StateOverlay, tx: SignedPlainTx, validators: readonly string[]): SystemOutcome {
  const fail = (message: string): SystemOutcome => ({ error: { code: 'SYSTEM_TX_REFUSED', message }, result: null, events: [] });
  if (!validators.includes(tx.from)) return fail('only a validator\'s enclave commits a consortium secret');
  const [generation, publicKey] = tx.args;
  // Generation 1 while the chain has none; a later one only when a rotation asked for it, and only once.
  const expected = latestSecretGeneration(block) === 0 ? 1 : requestedSecretGeneration(block);
  if (tx.args.length !== 2 || expected === null || generation !== expected || !isHexOfLength(publicKey, 32)) {
    return fail(`commitSecret takes (${expected ?? 'a generation governance asked for'}, a 32-byte public key in hex)`);
  }
  if (readCommitment(block, generation) !== undefined) return fail(`generation ${generation} is already committed`);
  const commitment: SecretCommitment = { generation, publicKey };
  block.write(stateKey.secret(generation), canonicalize(commitment as unknown as JsonValue));
  if (generation > 1) block.write(govKey.secretRequested, null);
  return { error: null, result: null, events: [{ name: 'SecretCommitted', data: commitment as unknown as JsonValue }] };
}

const PROPOSAL_STATES: readonly ProposalState[] = ['open', 'accepted', 'rejected', 'withdrawn', 'expired', 'failed'];
const MAX_LISTED = 100;

/** A read-only call to the system contract, at the committed height. Throws ChainError (CALL_FAILED, GOV_PROPOSAL_NOT_FOUND). */
export function callSystem(state: StateReader, governance: Pick<GovernanceContext, 'genesis' | 'height'>, method: string, args: JsonValue[], caller: string): JsonValue {
  const { genesis, height } = governance;
  const bad = (message: string): never => {
    throw new ChainError('CALL_FAILED', message, { contractCode: 'INVALID_ARGS', gasUsed: 0 });
  };
  switch (method) {
    case 'members': {
      if (args.length !== 0) bad('members takes no arguments');
      const config = readConfig(state, genesis);
      return { members: config.members, threshold: requiredApprovals(config), isMember: memberByKey(config, caller) !== undefined } as unknown as JsonValue;
    }
    case 'proposal':
      if (args.length !== 1) bad('proposal takes (id)');
      return proposalAt(state, genesis, height, args[0]) as unknown as JsonValue;
    case 'proposals': {
      const [only, limit] = args;
      if (args.length > 2) bad('proposals takes (state?, limit?)');
      if (only !== undefined && only !== null && !PROPOSAL_STATES.includes(only as ProposalState)) bad(`state must be one of ${PROPOSAL_STATES.join(', ')}`);
      if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LISTED)) bad(`limit must be 1 to ${MAX_LISTED}`);
      const filter = { limit: (limit as number | undefined) ?? MAX_LISTED, ...(typeof only === 'string' ? { state: only as ProposalState } : {}) };
      return listProposals(state, genesis, height, filter) as unknown as JsonValue;
    }
    case 'attestations': {
      // The validators in force, each with the last evidence the ledger records of its enclave (null: none yet).
      if (args.length !== 0) bad('attestations takes no arguments');
      return readConfig(state, genesis).validators.map((v) => ({ ...v, attestation: readLedgerAttestation(state, v.voteKey) ?? null })) as unknown as JsonValue;
    }
    default:
      throw new ChainError('TX_UNKNOWN_METHOD', `contract "${CONSORTIUM_CONTRACT}" has no method "${method}"`);
  }
}
