import { ChainError } from '../errors.js';
import { canonicalBytes, isCanonicalJsonValue, type JsonValue } from '../encoding/canonical-json.js';
import { isHexOfLength } from '../encoding/hex.js';
import { sha256Hex } from '../crypto/hash.js';
import { classifyEd25519PublicKey, describeEd25519KeyProblem } from '../crypto/ed25519-key-rule.js';
import { CONTRACT_NAME_RE } from './transaction.js';

/** A contract deployed at genesis: the bundle itself, so every enclave can measure it. */
export interface GenesisContract {
  name: string;
  manifest: JsonValue;
  code: string;
  /** Arguments for the contract's `init` method, when its manifest has one. */
  initArgs: JsonValue[];
}

export interface GenesisMember {
  id: string;
  /** ed25519 public key, lowercase hex. */
  publicKey: string;
}

export interface GenesisValidator {
  /** The node's network identity (its libp2p peer id). */
  nodeId: string;
  /**
   * The node's enclave vote key (ed25519, lowercase hex): the enclave made it
   * and keeps it sealed. Votes, proposals and commit certificates verify
   * against these keys; admission checks the node's evidence binds this key.
   */
  voteKey: string;
}

export interface ConsensusParams {
  /** Most transactions in one block. */
  maxBlockTxs: number;
  /** Most canonical transaction bytes in one block. */
  maxBlockBytes: number;
  /** How long the proposer waits for more transactions before cutting a non-full block. */
  blockIntervalMs: number;
  maxTxBytes: number;
  maxGasLimit: number;
  /** With no transactions waiting, the proposer still proposes an (empty) block after this long: the chain's heartbeat. */
  emptyBlockIntervalMs: number;
  /** How long validators wait for round 0's proposal before prevoting nil; each later round waits half as long again. */
  timeoutProposeMs: number;
  /** How long validators wait for more prevotes or precommits once 2f+1 arrived without agreement (same growth). */
  timeoutVoteMs: number;
}

export interface EnclaveTrust {
  /** Allowed enclave measurements (lowercase hex) per platform. */
  measurements: Record<string, string[]>;
  /** Declared virtual vendor roots (SPKI PEM); only for development chains. */
  virtualRoots: string[];
}

export interface Genesis {
  chainId: string;
  /** Genesis time, ms since the Unix epoch. */
  time: number;
  members: GenesisMember[];
  validators: GenesisValidator[];
  contracts: GenesisContract[];
  enclave: EnclaveTrust;
  /** The attestation policy, as the attestation library defines it. */
  policy: JsonValue;
  consensus: ConsensusParams;
}

export const DEFAULT_CONSENSUS_PARAMS: ConsensusParams = {
  maxBlockTxs: 2000,
  maxBlockBytes: 4 * 1024 * 1024,
  blockIntervalMs: 25,
  maxTxBytes: 32 * 1024,
  maxGasLimit: 50_000_000,
  emptyBlockIntervalMs: 500,
  timeoutProposeMs: 3000,
  timeoutVoteMs: 500,
};

export function genesisHash(genesis: Genesis): string {
  return sha256Hex(canonicalBytes(genesis));
}

function positiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/**
 * Checks a genesis document read from disk; throws ChainError('ENCODING_INVALID') naming the field.
 * Member keys and validator vote keys must pass the ed25519 key rule (ed25519-key-rule.ts).
 */
export function parseGenesis(raw: unknown): Genesis {
  const fail = (why: string): never => {
    throw new ChainError('ENCODING_INVALID', `invalid genesis: ${why}`);
  };
  const refuseKey = (what: string, key: string): void => {
    const problem = classifyEd25519PublicKey(key);
    if (problem) fail(`${what} ${key} is not an acceptable ed25519 public key: ${describeEd25519KeyProblem(problem)}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('not an object');
  if (!isCanonicalJsonValue(raw)) fail('must be canonical JSON (integers only)');
  const g = raw as Record<string, unknown>;
  if (typeof g.chainId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(g.chainId)) fail('chainId');
  if (typeof g.time !== 'number' || !Number.isSafeInteger(g.time) || g.time < 0) fail('time');
  if (!Array.isArray(g.members)) fail('members must be an array');
  const memberIds = new Set<string>();
  const memberKeys = new Set<string>();
  for (const m of g.members as unknown[]) {
    const member = m as Record<string, unknown>;
    if (typeof member?.id !== 'string' || !isHexOfLength(member.publicKey, 32)) fail('each member needs an id and a 32-byte publicKey');
    // Member ids key a proposal's votes: each once, and never "__proto__".
    if (member.id === '__proto__') fail('a member id cannot be "__proto__"');
    if (memberIds.has(member.id as string) || memberKeys.has(member.publicKey as string)) fail(`member "${String(member.id)}" is listed twice (by id or key)`);
    memberIds.add(member.id as string);
    memberKeys.add(member.publicKey as string);
    refuseKey(`member "${String(member.id)}" publicKey`, member.publicKey as string);
  }
  if (!Array.isArray(g.validators) || g.validators.length === 0) fail('validators must be a non-empty array');
  const nodeIds = new Set<string>();
  const voteKeys = new Set<string>();
  for (const v of g.validators as unknown[]) {
    const validator = v as Record<string, unknown>;
    if (typeof validator?.nodeId !== 'string' || validator.nodeId.length === 0) fail('each validator needs a nodeId');
    if (!isHexOfLength(validator.voteKey, 32)) fail(`validator "${String(validator.nodeId)}" needs a voteKey (32 bytes of lowercase hex)`);
    refuseKey(`validator "${String(validator.nodeId)}" voteKey`, validator.voteKey as string);
    if (nodeIds.has(validator.nodeId as string)) fail(`validator "${String(validator.nodeId)}" is listed twice`);
    if (voteKeys.has(validator.voteKey as string)) fail(`vote key ${String(validator.voteKey)} is listed twice`);
    nodeIds.add(validator.nodeId as string);
    voteKeys.add(validator.voteKey as string);
  }
  if (!Array.isArray(g.contracts)) fail('contracts must be an array');
  const names = new Set<string>();
  for (const c of g.contracts as unknown[]) {
    const contract = c as Record<string, unknown>;
    if (typeof contract?.name !== 'string' || !CONTRACT_NAME_RE.test(contract.name)) fail('contract name');
    if (contract.name === 'consortium') fail('the contract name "consortium" is reserved for the chain\'s system contract');
    if (names.has(contract.name as string)) fail(`contract "${String(contract.name)}" listed twice`);
    names.add(contract.name as string);
    if (typeof contract.code !== 'string') fail(`contract "${String(contract.name)}" code`);
    if (typeof contract.manifest !== 'object' || contract.manifest === null) fail(`contract "${String(contract.name)}" manifest`);
    if (!Array.isArray(contract.initArgs)) fail(`contract "${String(contract.name)}" initArgs must be an array`);
  }
  const enclave = g.enclave as Record<string, unknown> | undefined;
  if (typeof enclave !== 'object' || enclave === null) fail('enclave');
  if (typeof enclave!.measurements !== 'object' || enclave!.measurements === null) fail('enclave.measurements');
  if (!Array.isArray(enclave!.virtualRoots)) fail('enclave.virtualRoots');
  const params = g.consensus as Record<string, unknown> | undefined;
  if (typeof params !== 'object' || params === null) fail('consensus');
  for (const key of Object.keys(DEFAULT_CONSENSUS_PARAMS)) {
    if (!positiveInt(params![key])) fail(`consensus.${key} must be a positive integer`);
  }
  return raw as unknown as Genesis;
}
