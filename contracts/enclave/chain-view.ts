import { policyHash, type AttestationPolicy } from '../../attestation/index.js';
import { canonicalBytes, quorumSize, sha256Hex, type ConsensusParams, type Genesis, type GenesisValidator } from '../../consensus/index.js';

/**
 * What the chain is at a height: its validators, attestation policy and
 * consensus parameters, with the two hashes every header commits to. Every
 * place that needs one of these (header building and checking in the enclave,
 * certificates in sync, consensus) reads them from a view, never from the
 * genesis directly, so that governance can later change them at a height.
 * Today the genesis defines them for every height. (It lives with the
 * enclave, which computes headers from it, rather than in consensus/, which
 * stays free of the attestation library its threads need not load.)
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
}

/** The view at every height of a chain whose genesis defines everything (no governance yet). */
export function genesisChainView(genesis: Genesis): ChainView {
  const policy = genesis.policy as unknown as AttestationPolicy;
  return {
    chainId: genesis.chainId,
    validators: genesis.validators,
    validatorKeys: genesis.validators.map((v) => v.voteKey),
    quorum: quorumSize(genesis.validators.length),
    validatorSetHash: sha256Hex(canonicalBytes(genesis.validators)),
    policy,
    policyHash: policyHash(policy),
    consensus: genesis.consensus,
  };
}
