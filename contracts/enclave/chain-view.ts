import { policyHash, type AttestationPolicy } from '../../attestation/index.js';
import { canonicalBytes, quorumSize, sha256Hex, type ConsensusParams, type Genesis, type GenesisMember, type GenesisValidator } from '../../consensus/index.js';
import { readConfig, requiredApprovals } from './governance/index.js';
import type { StateReader } from './state.js';

/**
 * What the chain is at a height: its validators, attestation policy,
 * consensus parameters and members, with the two hashes every header commits
 * to. Every place that needs one of these (header building and checking in
 * the enclave, peer admission, certificates in sync, consensus) reads them
 * from a view, never from the genesis directly: governance changes them. (It
 * lives with the enclave, which computes headers from it, rather than in
 * consensus/, which stays free of the attestation library its threads need
 * not load.)
 */
export interface ChainView {
  chainId: string;
  validators: readonly GenesisValidator[];
  /** The validators' enclave vote keys, in proposer order. */
  validatorKeys: readonly string[];
  /** 2f+1 of the validator set. */
  quorum: number;
  /** SHA-256 of the canonical validator list: a header's `validatorSetHash`. */
  validatorSetHash: string;
  policy: AttestationPolicy;
  /** The attestation library's hash of the normalized policy: a header's `policyHash`. */
  policyHash: string;
  consensus: ConsensusParams;
  members: readonly GenesisMember[];
  /** Approvals a governance proposal needs. */
  threshold: number;
}

/**
 * The view of the next block: the genesis with every governance change in
 * `state` (the committed state it executes on). A change a block makes
 * therefore takes effect at the next height, on every node alike.
 */
export function chainViewAt(genesis: Genesis, state: StateReader): ChainView {
  const config = readConfig(state, genesis);
  const policy = config.policy as unknown as AttestationPolicy;
  return {
    chainId: genesis.chainId,
    validators: config.validators,
    validatorKeys: config.validators.map((v) => v.voteKey),
    quorum: quorumSize(config.validators.length),
    validatorSetHash: sha256Hex(canonicalBytes(config.validators)),
    policy,
    policyHash: policyHash(policy),
    consensus: config.consensus,
    members: config.members,
    threshold: requiredApprovals(config),
  };
}

/** The view of the genesis block and of a chain whose governance never changed anything. */
export function genesisChainView(genesis: Genesis): ChainView {
  return chainViewAt(genesis, { read: () => undefined });
}
