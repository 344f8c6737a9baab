import {
  canonicalize,
  type ConsensusParams,
  type Genesis,
  type GenesisMember,
  type GenesisValidator,
  type JsonValue,
} from '../../../consensus/index.js';
import type { StateReader } from '../state.js';

/**
 * What governance keeps in the chain state, under `g:` (public, so an auditor
 * reads and replays it). A setting that governance never changed has no
 * record: the genesis defines it. Proposals are numbered from 1.
 *   g:members          the members, when governance changed them
 *   g:threshold        approvals a proposal needs, when governance set it
 *   g:policy           the attestation policy (with the allowed measurements)
 *   g:consensus        the consensus parameters
 *   g:validators       the validators (node id and enclave vote key)
 *   g:validatorsBefore {height, validators}: the set in force below `height`,
 *                      the first height of the current one (a restarted
 *                      node checks its head's certificate against the set of
 *                      the head's height)
 *   g:nextProposal     the id the next proposal gets
 *   g:proposal:<id>    a proposal, its votes and its outcome
 *   g:secretRequested  the consortium-secret generation a rotation asked for,
 *                      until a proposer's enclave commits it
 *   g:retired:<name>   a retired contract's name (never deployed again, so its
 *                      old state cannot reappear under new code)
 */
export const govKey = {
  members: 'g:members',
  threshold: 'g:threshold',
  policy: 'g:policy',
  consensus: 'g:consensus',
  validators: 'g:validators',
  validatorsBefore: 'g:validatorsBefore',
  secretRequested: 'g:secretRequested',
  nextProposal: 'g:nextProposal',
  proposal: (id: number): string => `g:proposal:${id}`,
  retired: (name: string): string => `g:retired:${name}`,
};

/** True when a write to this key changes what the chain view reads (the members, threshold, policy or parameters). */
export function isConfigKey(key: string): boolean {
  return key === govKey.members || key === govKey.threshold || key === govKey.policy || key === govKey.consensus || key === govKey.validators;
}

/** What the genesis defines and governance may change later. */
export type GovernanceGenesis = Pick<Genesis, 'members' | 'validators' | 'policy' | 'consensus'>;

/** The consortium's settings at a height: the genesis, with governance's changes applied. */
export interface GovernanceConfig {
  members: GenesisMember[];
  /** Approvals a proposal needs; null for the default, a strict majority of the members. */
  threshold: number | null;
  validators: GenesisValidator[];
  policy: JsonValue;
  consensus: ConsensusParams;
}

function readRecord<T>(state: StateReader, key: string, fallback: T): T {
  const text = state.read(key);
  return text === undefined ? fallback : (JSON.parse(text) as T);
}

export function readConfig(state: StateReader, genesis: GovernanceGenesis): GovernanceConfig {
  return {
    members: readRecord(state, govKey.members, genesis.members),
    threshold: readRecord<number | null>(state, govKey.threshold, null),
    validators: readRecord(state, govKey.validators, genesis.validators),
    policy: readRecord(state, govKey.policy, genesis.policy),
    consensus: readRecord(state, govKey.consensus, genesis.consensus),
  };
}

/**
 * Writes the settings that differ from what the state holds now (a record per
 * setting). A new validator set is in force from `nextHeight` (the block
 * after the one that changes it); the one before is kept beside it.
 */
export function writeConfig(state: StateReader & { write(key: string, value: string): void }, before: GovernanceConfig, after: GovernanceConfig, nextHeight: number): void {
  const write = (key: string, value: string): void => state.write(key, value);
  const changed = (a: unknown, b: unknown): boolean => canonicalize(a as JsonValue) !== canonicalize(b as JsonValue);
  if (changed(before.validators, after.validators)) {
    write(govKey.validators, canonicalize(after.validators as unknown as JsonValue));
    // A second change in the same block keeps the set that was in force before the block.
    const earlier = readRecord<{ height: number; validators: GenesisValidator[] } | null>(state, govKey.validatorsBefore, null);
    const inForce = earlier !== null && earlier.height === nextHeight ? earlier.validators : before.validators;
    write(govKey.validatorsBefore, canonicalize({ height: nextHeight, validators: inForce } as unknown as JsonValue));
  }
  if (changed(before.members, after.members)) write(govKey.members, canonicalize(after.members as unknown as JsonValue));
  if (after.threshold !== null && before.threshold !== after.threshold) write(govKey.threshold, String(after.threshold));
  if (changed(before.policy, after.policy)) write(govKey.policy, canonicalize(after.policy));
  if (changed(before.consensus, after.consensus)) write(govKey.consensus, canonicalize(after.consensus as unknown as JsonValue));
}

/** Approvals a proposal needs: the threshold set by governance, else a strict majority. */
export function requiredApprovals(config: Pick<GovernanceConfig, 'members' | 'threshold'>): number {
  return config.threshold ?? Math.floor(config.members.length / 2) + 1;
}

export function memberByKey(config: Pick<GovernanceConfig, 'members'>, publicKey: string): GenesisMember | undefined {
  return config.members.find((m) => m.publicKey === publicKey);
}

/**
 * The validators of block `height`, for a height at or after the one before
 * the last change (what a restarted node needs: its head's certificate was
 * signed by the set of the head's height, which the head itself may have
 * changed for the next).
 */
export function validatorsAt(state: StateReader, genesis: GovernanceGenesis, height: number): GenesisValidator[] {
  const before = readRecord<{ height: number; validators: GenesisValidator[] } | null>(state, govKey.validatorsBefore, null);
  if (before !== null && height < before.height) return before.validators;
  return readConfig(state, genesis).validators;
}

/** The newest committed consortium-secret generation (0 when none): generations are committed in order, 1, 2, … */
export function latestSecretGeneration(state: StateReader): number {
  let g = 0;
  while (state.read(`s:secret:${g + 1}`) !== undefined) g++;
  return g;
}

/** The generation a rotation asked for and no enclave has committed yet, or null. */
export function requestedSecretGeneration(state: StateReader): number | null {
  const text = state.read(govKey.secretRequested);
  return text === undefined ? null : (JSON.parse(text) as number);
}
