import {
  DEFAULT_CONSENSUS_PARAMS,
  parseGenesis,
  type ConsensusParams,
  type Genesis,
  type GenesisContract,
  type JsonValue,
} from '../../consensus/index.js';
import { normalizePolicy, type AttestationPolicy } from '../../attestation/index.js';
import type { ContractBundle } from '../../contracts/index.js';

export interface GenesisInput {
  chainId: string;
  /** Genesis time, ms since the epoch (the caller reads the clock). */
  time: number;
  members: { id: string; publicKey: string }[];
  /** Nodes allowed to validate (and to connect): network identity and enclave vote key. */
  nodes: { nodeId: string; voteKey: string }[];
  /** Allowed enclave measurements per platform (lowercase hex). */
  measurements: Record<string, string[]>;
  virtualRoots: string[];
  contracts: { bundle: ContractBundle; initArgs: JsonValue[] }[];
  /** The attestation policy; default: exactly the given platforms and measurements, debug refused. */
  policy?: AttestationPolicy;
  consensus?: Partial<ConsensusParams>;
}

export class GenesisInputError extends Error {
  override readonly name = 'GenesisInputError';
  readonly code = 'GENESIS_INVALID';
}

/** Builds and checks a genesis document; throws GenesisInputError naming what is wrong. */
export function buildGenesis(input: GenesisInput): Genesis {
  const fail = (why: string): never => {
    throw new GenesisInputError(why);
  };
  if (input.members.length === 0) fail('at least one member is needed');
  const ids = new Set<string>();
  for (const m of input.members) {
    if (ids.has(m.id)) fail(`member "${m.id}" is listed twice`);
    ids.add(m.id);
  }
  if (input.nodes.length === 0) fail('at least one node is needed');
  if (new Set(input.nodes.map((n) => n.nodeId)).size !== input.nodes.length) fail('a node is listed twice');
  const platforms = Object.keys(input.measurements).filter((p) => input.measurements[p]!.length > 0);
  if (platforms.length === 0) fail('at least one allowed enclave measurement is needed');
  if (platforms.includes('virtual') && input.virtualRoots.length === 0) fail('virtual measurements need a declared virtual root');
  const policy: AttestationPolicy = input.policy ?? {
    allowedPlatforms: platforms as AttestationPolicy['allowedPlatforms'],
    measurements: input.measurements as AttestationPolicy['measurements'],
    allowDebug: false,
    allowVirtual: platforms.includes('virtual'),
  };
  try {
    normalizePolicy(policy);
  } catch (err) {
    fail((err as Error).message);
  }
  const contracts: GenesisContract[] = input.contracts.map(({ bundle, initArgs }) => ({
    name: bundle.manifest.name,
    manifest: bundle.manifest as unknown as JsonValue,
    code: bundle.code,
    initArgs,
  }));
  const genesis: Genesis = {
    chainId: input.chainId,
    time: input.time,
    members: input.members,
    validators: input.nodes.map(({ nodeId, voteKey }) => ({ nodeId, voteKey })),
    contracts,
    enclave: { measurements: input.measurements, virtualRoots: input.virtualRoots },
    policy: policy as unknown as JsonValue,
    consensus: { ...DEFAULT_CONSENSUS_PARAMS, ...input.consensus },
  };
  try {
    return parseGenesis(JSON.parse(JSON.stringify(genesis)));
  } catch (err) {
    return fail((err as Error).message);
  }
}
