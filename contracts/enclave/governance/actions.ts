import { normalizePolicy, ATTESTATION_PLATFORMS } from '../../../attestation/index.js';
import {
  CONTRACT_NAME_RE,
  DEFAULT_CONSENSUS_PARAMS,
  canonicalize,
  classifyEd25519PublicKey,
  describeEd25519KeyProblem,
  isCanonicalJsonValue,
  isHexOfLength,
  type ConsensusParams,
  type JsonValue,
} from '../../../consensus/index.js';
import { bundleMeasurement, parseBundle, RESERVED_CONTRACT_NAMES, type ContractBundle } from '../../bundle/index.js';
import { stateKey, type StateOverlay } from '../state.js';
import { govError } from './errors.js';
import { govKey, latestSecretGeneration, requestedSecretGeneration, type GovernanceConfig } from './records.js';

/**
 * The changes a proposal makes, applied in order when it passes. Every action
 * is checked twice: when proposed (against the chain then: a proposal that
 * could not apply is refused at once) and when applied (the chain may have
 * changed since: the proposal then fails with the reason, and nothing of it
 * applies).
 */
export type GovernanceAction =
  | { type: 'deployContract'; name: string; bundle: ContractBundle; initArgs: JsonValue[] }
  | { type: 'upgradeContract'; name: string; bundle: ContractBundle }
  | { type: 'retireContract'; name: string }
  | { type: 'addMember'; id: string; publicKey: string }
  | { type: 'removeMember'; id: string }
  | { type: 'setThreshold'; threshold: number }
  | { type: 'allowMeasurement'; platform: string; measurement: string }
  | { type: 'retireMeasurement'; platform: string; measurement: string }
  | { type: 'setPolicy'; policy: JsonValue }
  | { type: 'setConsensus'; params: Partial<ConsensusParams> }
  | { type: 'addNode'; nodeId: string; voteKey: string }
  | { type: 'removeNode'; nodeId: string }
  | { type: 'rotateSecret' };

export type ActionType = GovernanceAction['type'];

/** A libp2p peer id as the node prints it (base58btc, or a CID in base32). */
const NODE_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{32,128}$|^b[a-z2-7]{32,128}$/;

export const MAX_ACTIONS = 32;
const MEMBER_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Measurement sizes per platform (bytes), as the attestation policy takes them. */
const MEASUREMENT_BYTES: Record<string, number> = { virtual: 48, 'sev-snp': 48, tdx: 48, 'maa-sev-snp': 48, sgx: 32, 'maa-sgx': 32 };

function invalid(index: number, message: string): never {
  throw govError('GOV_ACTION_INVALID', `action ${index + 1}: ${message}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fields(index: number, raw: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(raw)) if (key !== 'type' && !allowed.includes(key)) invalid(index, `${String(raw['type'])} has no field "${key}"`);
}

function contractName(index: number, value: unknown): string {
  if (typeof value !== 'string' || !CONTRACT_NAME_RE.test(value)) invalid(index, 'name must be a contract name (lower case letters, digits, _ and -, at most 64)');
  if (RESERVED_CONTRACT_NAMES.has(value)) invalid(index, `the contract name "${value}" is reserved for the chain's system contract`);
  return value;
}

function bundleOf(index: number, value: unknown): ContractBundle {
  try {
    return parseBundle(value);
  } catch (err) {
    return invalid(index, `the bundle is not valid: ${(err as Error).message}`);
  }
}

/** Checks one action's shape (not yet whether it applies to the chain). */
export function parseAction(raw: unknown, index: number): GovernanceAction {
  if (!isObject(raw) || typeof raw['type'] !== 'string') return invalid(index, 'an action is an object with a "type"');
  const type = raw['type'];
  switch (type) {
    case 'deployContract': {
      fields(index, raw, ['name', 'bundle', 'initArgs']);
      const initArgs = raw['initArgs'] ?? [];
      if (!Array.isArray(initArgs)) return invalid(index, 'initArgs must be an array');
      return { type, name: contractName(index, raw['name']), bundle: bundleOf(index, raw['bundle']), initArgs: initArgs as JsonValue[] };
    }
    case 'upgradeContract':
      fields(index, raw, ['name', 'bundle']);
      return { type, name: contractName(index, raw['name']), bundle: bundleOf(index, raw['bundle']) };
    case 'retireContract':
      fields(index, raw, ['name']);
      return { type, name: contractName(index, raw['name']) };
    case 'addMember': {
      fields(index, raw, ['id', 'publicKey']);
      const { id, publicKey } = raw;
      // Member ids key a proposal's votes: "__proto__" would not be a key of its own there.
      if (typeof id !== 'string' || !MEMBER_ID_RE.test(id) || id === '__proto__') return invalid(index, 'id must be 1 to 64 letters, digits, ".", "_" or "-" (not "__proto__")');
      if (!isHexOfLength(publicKey, 32)) return invalid(index, 'publicKey must be an ed25519 public key (32 bytes of lowercase hex)');
      const problem = classifyEd25519PublicKey(publicKey);
      if (problem) return invalid(index, `publicKey is not an acceptable ed25519 key: ${describeEd25519KeyProblem(problem)}`);
      return { type, id, publicKey };
    }
    case 'removeMember':
      fields(index, raw, ['id']);
      if (typeof raw['id'] !== 'string') return invalid(index, 'id must be a member id');
      return { type, id: raw['id'] };
    case 'setThreshold': {
      fields(index, raw, ['threshold']);
      const threshold = raw['threshold'];
      if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 1) return invalid(index, 'threshold must be a positive integer');
      return { type, threshold };
    }
    case 'allowMeasurement':
    case 'retireMeasurement': {
      fields(index, raw, ['platform', 'measurement']);
      const { platform, measurement } = raw;
      if (typeof platform !== 'string' || !(ATTESTATION_PLATFORMS as readonly string[]).includes(platform)) {
        return invalid(index, `platform must be one of ${ATTESTATION_PLATFORMS.join(', ')}`);
      }
      if (!isHexOfLength(measurement, MEASUREMENT_BYTES[platform]!)) {
        return invalid(index, `a ${platform} measurement is ${MEASUREMENT_BYTES[platform]} bytes of lowercase hex`);
      }
      return { type, platform, measurement };
    }
    case 'setPolicy':
      fields(index, raw, ['policy']);
      try {
        normalizePolicy(raw['policy']);
      } catch (err) {
        return invalid(index, `the policy is not valid: ${(err as Error).message}`);
      }
      return { type, policy: raw['policy'] as JsonValue };
    case 'setConsensus': {
      fields(index, raw, ['params']);
      const params = raw['params'];
      if (!isObject(params) || Object.keys(params).length === 0) return invalid(index, 'params must name at least one consensus parameter');
      for (const [key, value] of Object.entries(params)) {
        if (!Object.prototype.hasOwnProperty.call(DEFAULT_CONSENSUS_PARAMS, key)) {
          return invalid(index, `unknown consensus parameter "${key}" (known: ${Object.keys(DEFAULT_CONSENSUS_PARAMS).join(', ')})`);
        }
        if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) return invalid(index, `${key} must be a positive integer`);
      }
      return { type, params: params as Partial<ConsensusParams> };
    }
    case 'addNode': {
      fields(index, raw, ['nodeId', 'voteKey']);
      const { nodeId, voteKey } = raw;
      if (typeof nodeId !== 'string' || !NODE_ID_RE.test(nodeId)) return invalid(index, 'nodeId must be a node id as `cloister node init` prints it');
      if (!isHexOfLength(voteKey, 32)) return invalid(index, 'voteKey must be the enclave vote key `cloister node init` printed (32 bytes of lowercase hex)');
      const problem = classifyEd25519PublicKey(voteKey);
      if (problem) return invalid(index, `voteKey is not an acceptable ed25519 key: ${describeEd25519KeyProblem(problem)}`);
      return { type, nodeId, voteKey };
    }
    case 'rotateSecret':
      fields(index, raw, []);
      return { type };
    case 'removeNode':
      fields(index, raw, ['nodeId']);
      if (typeof raw['nodeId'] !== 'string') return invalid(index, 'nodeId must be a validator\'s node id');
      return { type, nodeId: raw['nodeId'] };
    default:
      return invalid(index, `unknown action "${type}"`);
  }
}

/** A proposal's actions: 1 to MAX_ACTIONS of them, each well formed. */
export function parseActions(raw: unknown): GovernanceAction[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_ACTIONS) {
    throw govError('GOV_ACTION_INVALID', `a proposal is a list of 1 to ${MAX_ACTIONS} actions`);
  }
  if (!isCanonicalJsonValue(raw)) throw govError('GOV_ACTION_INVALID', 'actions must be plain JSON (integers only)');
  return raw.map((a, i) => parseAction(a, i));
}

/** What applying a deployment needs from the sandbox (the executor provides it). */
export interface ContractHost {
  /** Null when the bundle loads; otherwise why it does not. */
  validate(bundle: ContractBundle): string | null;
  /** Runs the bundle's init (when it has one) in the block's state; null on success, otherwise why it failed. */
  init(name: string, bundle: ContractBundle, initArgs: JsonValue[], state: StateOverlay): string | null;
}

export interface AppliedEvent {
  name: string;
  data: JsonValue;
}

/**
 * Applies the actions in order to `state` and `config` (both changed in
 * place); throws GOV_ACTION_INVALID naming the first that cannot apply. The
 * caller applies to a scratch layer and keeps it only when this returns.
 * `check` (a proposal being made) does everything but run a deployed
 * contract's init.
 */
export function applyActions(
  actions: readonly GovernanceAction[],
  state: StateOverlay,
  config: GovernanceConfig,
  host: ContractHost,
  height: number,
  mode: 'apply' | 'check' = 'apply',
): AppliedEvent[] {
  const events: AppliedEvent[] = [];
  actions.forEach((action, index) => {
    const deployedRecord = (name: string): { measurement: string; bundle: ContractBundle } | undefined => {
      const text = state.read(stateKey.deployment(name));
      return text === undefined ? undefined : (JSON.parse(text) as { measurement: string; bundle: ContractBundle });
    };
    const loads = (bundle: ContractBundle): void => {
      const problem = host.validate(bundle);
      if (problem !== null) invalid(index, `the bundle does not load: ${problem}`);
    };
    switch (action.type) {
      case 'deployContract': {
        if (deployedRecord(action.name)) invalid(index, `a contract named "${action.name}" is deployed already (upgrade it instead)`);
        if (state.read(govKey.retired(action.name)) !== undefined) invalid(index, `the name "${action.name}" belonged to a retired contract and is not used again`);
        loads(action.bundle);
        const measurement = bundleMeasurement(action.bundle);
        state.write(stateKey.deployment(action.name), canonicalize({ name: action.name, measurement, bundle: action.bundle } as unknown as JsonValue));
        // Checking a proposal does not run init: it may take up to the chain's gas limit, and a proposal
        // (each member may make many) must cost little until it passes; init then runs once, and a failure fails the proposal.
        const failed = mode === 'apply' ? host.init(action.name, action.bundle, action.initArgs, state) : null;
        if (failed !== null) invalid(index, `deploying "${action.name}" failed: ${failed}`);
        events.push({ name: 'ContractDeployed', data: { name: action.name, measurement } });
        break;
      }
      case 'upgradeContract': {
        const current = deployedRecord(action.name);
        if (!current) invalid(index, `no contract named "${action.name}" is deployed`);
        if ((current!.bundle.manifest.confidential === true) !== (action.bundle.manifest.confidential === true)) {
          invalid(index, 'an upgrade keeps the contract confidential or public as it is (its state is stored that way)');
        }
        loads(action.bundle);
        const measurement = bundleMeasurement(action.bundle);
        if (measurement === current!.measurement) invalid(index, `"${action.name}" already runs this bundle`);
        state.write(stateKey.deployment(action.name), canonicalize({ name: action.name, measurement, bundle: action.bundle } as unknown as JsonValue));
        events.push({ name: 'ContractUpgraded', data: { name: action.name, from: current!.measurement, to: measurement } });
        break;
      }
      case 'retireContract': {
        const current = deployedRecord(action.name);
        if (!current) invalid(index, `no contract named "${action.name}" is deployed`);
        state.write(stateKey.deployment(action.name), null);
        state.write(govKey.retired(action.name), canonicalize({ measurement: current!.measurement, height }));
        events.push({ name: 'ContractRetired', data: { name: action.name, measurement: current!.measurement } });
        break;
      }
      case 'addMember':
        if (config.members.some((m) => m.id === action.id)) invalid(index, `"${action.id}" is a member already`);
        if (config.members.some((m) => m.publicKey === action.publicKey)) invalid(index, 'this key belongs to a member already');
        config.members = [...config.members, { id: action.id, publicKey: action.publicKey }];
        events.push({ name: 'MemberAdded', data: { id: action.id, publicKey: action.publicKey } });
        break;
      case 'removeMember':
        if (!config.members.some((m) => m.id === action.id)) invalid(index, `"${action.id}" is not a member`);
        if (config.members.length === 1) invalid(index, 'the last member cannot be removed');
        config.members = config.members.filter((m) => m.id !== action.id);
        events.push({ name: 'MemberRemoved', data: { id: action.id } });
        break;
      case 'setThreshold':
        config.threshold = action.threshold;
        events.push({ name: 'ThresholdSet', data: { threshold: action.threshold } });
        break;
      case 'allowMeasurement':
      case 'retireMeasurement': {
        const policy = structuredClone(config.policy) as { allowedPlatforms?: string[]; measurements?: Record<string, string[]> };
        const measurements = { ...(policy.measurements ?? {}) };
        const list = measurements[action.platform] ?? [];
        if (action.type === 'allowMeasurement') {
          if (!(policy.allowedPlatforms ?? []).includes(action.platform)) invalid(index, `the policy does not allow the platform ${action.platform}: set a policy that does`);
          if (list.includes(action.measurement)) invalid(index, `${action.platform} measurement ${action.measurement} is allowed already`);
          measurements[action.platform] = [...list, action.measurement].sort();
        } else {
          if (!list.includes(action.measurement)) invalid(index, `${action.platform} measurement ${action.measurement} is not allowed`);
          measurements[action.platform] = list.filter((m) => m !== action.measurement);
          if (Object.values(measurements).every((l) => l.length === 0)) invalid(index, 'retiring the last allowed measurement would refuse every enclave');
        }
        config.policy = { ...policy, measurements } as unknown as JsonValue;
        const name = action.type === 'allowMeasurement' ? 'MeasurementAllowed' : 'MeasurementRetired';
        events.push({ name, data: { platform: action.platform, measurement: action.measurement } });
        break;
      }
      case 'setPolicy':
        config.policy = action.policy;
        events.push({ name: 'PolicySet', data: { policy: action.policy } });
        break;
      case 'setConsensus':
        config.consensus = { ...config.consensus, ...action.params };
        events.push({ name: 'ConsensusSet', data: action.params as unknown as JsonValue });
        break;
      case 'addNode':
        if (config.validators.some((v) => v.nodeId === action.nodeId)) invalid(index, `node ${action.nodeId} is a validator already`);
        if (config.validators.some((v) => v.voteKey === action.voteKey)) invalid(index, 'this vote key belongs to a validator already');
        config.validators = [...config.validators, { nodeId: action.nodeId, voteKey: action.voteKey }];
        events.push({ name: 'NodeAdded', data: { nodeId: action.nodeId, voteKey: action.voteKey, fromHeight: height + 1 } });
        break;
      case 'rotateSecret': {
        // The next proposer whose enclave holds every generation makes the new one and commits its public key.
        const latest = latestSecretGeneration(state);
        if (latest === 0) invalid(index, 'the chain has no consortium secret yet: its first generation comes with its first blocks');
        if (requestedSecretGeneration(state) !== null) invalid(index, `generation ${latest + 1} of the consortium secret is being made already`);
        state.write(govKey.secretRequested, String(latest + 1));
        events.push({ name: 'SecretRotationRequested', data: { generation: latest + 1 } });
        break;
      }
      case 'removeNode':
        if (!config.validators.some((v) => v.nodeId === action.nodeId)) invalid(index, `node ${action.nodeId} is not a validator`);
        if (config.validators.length === 1) invalid(index, 'the last validator cannot be removed');
        config.validators = config.validators.filter((v) => v.nodeId !== action.nodeId);
        events.push({ name: 'NodeRemoved', data: { nodeId: action.nodeId, fromHeight: height + 1 } });
        break;
    }
  });
  checkConfig(config);
  return events;
}

/** What must hold of the settings after a proposal's actions, whatever they were. */
function checkConfig(config: GovernanceConfig): void {
  const fail = (message: string): never => {
    throw govError('GOV_ACTION_INVALID', message);
  };
  if (config.threshold !== null && config.threshold > config.members.length) {
    fail(`the threshold ${config.threshold} would exceed the ${config.members.length} members`);
  }
  const c = config.consensus;
  if (c.maxTxBytes > c.maxBlockBytes) fail('maxTxBytes would exceed maxBlockBytes');
  if (c.maxTxBytes < 1024) fail('maxTxBytes below 1024 would leave no room for a transaction');
  const policy = config.policy as { measurements?: Record<string, string[]> };
  if (Object.values(policy.measurements ?? {}).every((l) => l.length === 0)) fail('the policy would allow no enclave measurement');
}
