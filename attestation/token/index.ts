/** Cloister attestation tokens (enclave-signed EdDSA JWTs verified together with the enclave's evidence). */
export {
  ATTESTATION_TOKEN_TYPE,
  ATTESTATION_TOKEN_VERSION,
  DEFAULT_TOKEN_TTL_SECONDS,
  MAX_TOKEN_TTL_SECONDS,
  decodeAttestationTokenUnverified,
  issueAttestationToken,
  verifyAttestationToken,
  type AttestationTokenClaims,
  type AttestationTokenClaimsInput,
  type EnclavePublicKey,
  type EnclaveSigningKey,
  type IssueAttestationTokenOptions,
  type VerifyAttestationTokenOptions,
} from './token.js';
