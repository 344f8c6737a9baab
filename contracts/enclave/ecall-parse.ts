import {
  ChainError,
  METHOD_NAME_RE,
  CONTRACT_NAME_RE,
  isCanonicalJsonValue,
  isHexOfLength,
  parseBlockHeader,
  parseCommitCertificate,
  parseGenesis,
  parseSealedPayload,
  parseVote,
  type JsonValue,
  type SignedVote,
} from '../../consensus/index.js';
import type { EcallRequest, EcallType } from './protocol.js';
import type { AdmissionClaim } from './peer-evidence.js';

/**
 * Parses an ecall request inside the enclave. The host is untrusted: a
 * request that is not exactly one of the ecalls, with every field of the
 * right shape, is refused with ECALL_INVALID (or the domain error of the part
 * that failed, e.g. BLOCK_INVALID for a header) before anything acts on it.
 * What needs more than a shape check (signatures, roots, certificates) is
 * checked where it is used.
 */

/** Most transactions one admission or block request may carry. */
export const MAX_ECALL_TXS = 20_000;
const MAX_SEALED_BLOBS = 4;
const MAX_SEALED_BYTES = 64 * 1024;
const MAX_JUSTIFICATION = 1024;
const MAX_ID = 256;
/** A contract key is at most 256 bytes (the sandbox refuses longer), plus `c:<contract>:`. */
const MAX_STATE_KEY = 400;

const FIELDS: Record<EcallType, readonly string[]> = {
  unseal: ['sealed'],
  init: ['genesis', 'nodeId', 'freshness', 'resume'],
  proposeBlock: ['time', 'txs'],
  executeBlock: ['header', 'txs'],
  commitBlock: ['blockHash', 'certificate'],
  call: ['contract', 'method', 'args', 'auth'],
  sealedCall: ['contract', 'sealed'],
  getEvidence: ['freshness'],
  admissionEvidence: ['challenge'],
  getEncryptionKey: ['freshness'],
  getAttestationToken: ['freshness', 'audience', 'now'],
  secretChallenge: [],
  secretRequest: ['nonce'],
  releaseSecret: ['nonce', 'peerNodeId', 'claim', 'now'],
  acceptSecret: ['release'],
  admitTxs: ['txs'],
  nonces: ['addresses'],
  signVote: ['vote', 'justification'],
  signProposal: ['proposal'],
  listContracts: [],
  stateProof: ['key', 'height'],
  signHandover: ['claim', 'nonce', 'now'],
};

function invalid(why: string): never {
  throw new ChainError('ECALL_INVALID', `ecall refused: ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shortString(v: unknown, what: string, max = MAX_ID): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) invalid(`${what} must be a string of 1 to ${max} characters`);
  return v;
}

function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) invalid(`${what} must be a non-negative integer`);
  return v;
}

/** A block's transactions: each a transaction (checked when executed) or the hash of one this enclave admitted. */
function txList(v: unknown): unknown[] {
  if (!Array.isArray(v) || v.length > MAX_ECALL_TXS) invalid(`txs must be an array of at most ${MAX_ECALL_TXS}`);
  for (const item of v as unknown[]) {
    if (typeof item === 'string' && !isHexOfLength(item, 32)) invalid('a transaction named by hash must be 32 bytes of lowercase hex');
  }
  return v;
}

function hash32(v: unknown, what: string): string {
  if (!isHexOfLength(v, 32)) invalid(`${what} must be 32 bytes of lowercase hex`);
  return v as string;
}

function signedVotes(v: unknown): SignedVote[] {
  if (!Array.isArray(v) || v.length > MAX_JUSTIFICATION) invalid(`justification must be an array of at most ${MAX_JUSTIFICATION} votes`);
  return v.map((item) => {
    if (!isRecord(item) || !isHexOfLength(item.validator, 32) || !isHexOfLength(item.signature, 64)) {
      invalid('each justification vote must be {vote, validator, signature}');
    }
    return { vote: parseVote(item.vote, 'justification vote'), validator: item.validator as string, signature: item.signature as string };
  });
}

export function parseEcall(raw: unknown): EcallRequest {
  if (!isRecord(raw) || typeof raw.type !== 'string' || !Object.prototype.hasOwnProperty.call(FIELDS, raw.type)) {
    return invalid('not a known ecall');
  }
  const type = raw.type as EcallType;
  const expected = FIELDS[type];
  for (const key of Object.keys(raw)) {
    if (key !== 'type' && !expected.includes(key)) invalid(`${type} has no field "${key.slice(0, 64)}"`);
  }
  for (const key of expected) if (!(key in raw)) invalid(`${type} needs "${key}"`);

  switch (type) {
    case 'unseal': {
      const sealed = raw.sealed;
      if (!Array.isArray(sealed) || sealed.length > MAX_SEALED_BLOBS || !sealed.every((s) => typeof s === 'string' && s.length <= MAX_SEALED_BYTES)) {
        return invalid(`sealed must be at most ${MAX_SEALED_BLOBS} strings`);
      }
      return { type, sealed: sealed as string[] };
    }
    case 'init': {
      const genesis = parseGenesis(raw.genesis);
      const nodeId = shortString(raw.nodeId, 'nodeId');
      const freshness = shortString(raw.freshness, 'freshness', 128);
      let resume: Extract<EcallRequest, { type: 'init' }>['resume'] = null;
      if (raw.resume !== null) {
        const r = raw.resume;
        if (!isRecord(r) || Object.keys(r).length !== 3) return invalid('resume must be null or {header, certificate, state}');
        const header = parseBlockHeader(r.header, 'resume header');
        const certificate = r.certificate === null ? null : parseCommitCertificate(r.certificate);
        if (!Array.isArray(r.state)) return invalid('resume.state must be an array of [key, value] pairs');
        for (const entry of r.state as unknown[]) {
          if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'string') {
            invalid('resume.state must be an array of [key, value] string pairs');
          }
        }
        resume = { header, certificate, state: r.state as [string, string][] };
      }
      return { type, genesis, nodeId, freshness, resume };
    }
    case 'proposeBlock':
      return { type, time: nonNegativeInt(raw.time, 'time'), txs: txList(raw.txs) };
    case 'executeBlock':
      return { type, header: parseBlockHeader(raw.header, 'proposed header'), txs: txList(raw.txs) };
    case 'commitBlock':
      return { type, blockHash: hash32(raw.blockHash, 'blockHash'), certificate: parseCommitCertificate(raw.certificate) };
    case 'call': {
      const { contract, method, args, auth } = raw;
      if (typeof contract !== 'string' || !CONTRACT_NAME_RE.test(contract)) invalid('contract is not a contract name');
      if (typeof method !== 'string' || !METHOD_NAME_RE.test(method)) invalid('method is not a method name');
      if (!Array.isArray(args) || !isCanonicalJsonValue(args)) invalid('args must be an array of canonical JSON values');
      if (auth !== null) {
        if (!isRecord(auth) || Object.keys(auth).length !== 3) invalid('auth must be null or {caller, expiresAt, signature}');
        const a = auth as Record<string, unknown>;
        if (typeof a.expiresAt !== 'number' || !Number.isSafeInteger(a.expiresAt)) invalid('auth.expiresAt must be an integer');
        if (!isHexOfLength(a.signature, 64)) invalid('auth.signature must be 64 bytes of lowercase hex');
        return {
          type,
          contract: contract as string,
          method: method as string,
          args: args as JsonValue[],
          auth: { caller: hash32(a.caller, 'auth.caller'), expiresAt: a.expiresAt as number, signature: a.signature as string },
        };
      }
      return { type, contract: contract as string, method: method as string, args: args as JsonValue[], auth: null };
    }
    case 'getEvidence':
      return { type, freshness: shortString(raw.freshness, 'freshness', 128) };
    case 'admissionEvidence':
      return { type, challenge: shortString(raw.challenge, 'challenge', 128) };
    case 'getEncryptionKey':
      return { type, freshness: shortString(raw.freshness, 'freshness', 160) };
    case 'getAttestationToken':
      return {
        type,
        freshness: shortString(raw.freshness, 'freshness', 160),
        audience: raw.audience === null ? null : shortString(raw.audience, 'audience', 256),
        now: nonNegativeInt(raw.now, 'now'),
      };
    case 'sealedCall': {
      if (typeof raw.contract !== 'string' || !CONTRACT_NAME_RE.test(raw.contract)) invalid('contract is not a contract name');
      return { type, contract: raw.contract as string, sealed: parseSealedPayload(raw.sealed, (why) => invalid(why)) };
    }
    case 'secretChallenge':
      return { type };
    case 'secretRequest':
      return { type, nonce: hash32(raw.nonce, 'nonce') };
    case 'releaseSecret': {
      const claim = raw.claim;
      // The claim's contents are judged by evaluateAdmission (cheapest checks first); here only its outline.
      if (!isRecord(claim) || Object.keys(claim).length !== 3) invalid('claim must be {nodeId, publicKeys, evidence}');
      return {
        type,
        nonce: hash32(raw.nonce, 'nonce'),
        peerNodeId: shortString(raw.peerNodeId, 'peerNodeId'),
        claim: claim as unknown as Extract<EcallRequest, { type: 'releaseSecret' }>['claim'],
        now: nonNegativeInt(raw.now, 'now'),
      };
    }
    case 'signHandover': {
      const claim = raw.claim;
      // Judged by successorProblem (evaluateAdmission); here only its outline.
      if (!isRecord(claim) || Object.keys(claim).length !== 3) invalid('claim must be {nodeId, publicKeys, evidence}');
      return {
        type,
        claim: claim as unknown as AdmissionClaim,
        nonce: nonNegativeInt(raw.nonce, 'nonce'),
        now: nonNegativeInt(raw.now, 'now'),
      };
    }
    case 'acceptSecret': {
      const r = raw.release;
      if (!isRecord(r) || Object.keys(r).length !== 2 || !isHexOfLength(r.enc, 32) || typeof r.ct !== 'string' || r.ct.length > 65_536) {
        invalid('release must be {enc, ct}');
      }
      return { type, release: { enc: (r as Record<string, string>).enc!, ct: (r as Record<string, string>).ct! } };
    }
    case 'admitTxs':
      return { type, txs: txList(raw.txs) };
    case 'nonces': {
      const addresses = raw.addresses;
      if (!Array.isArray(addresses) || addresses.length > MAX_ECALL_TXS) invalid(`addresses must be an array of at most ${MAX_ECALL_TXS}`);
      return { type, addresses: (addresses as unknown[]).map((a) => hash32(a, 'address')) };
    }
    case 'signVote':
      return { type, vote: parseVote(raw.vote), justification: signedVotes(raw.justification) };
    case 'signProposal': {
      const p = raw.proposal;
      if (!isRecord(p) || Object.keys(p).length !== 5) return invalid('proposal must be {chainId, height, round, polRound, blockHash}');
      const polRound = p.polRound;
      if (typeof polRound !== 'number' || !Number.isSafeInteger(polRound) || polRound < -1) invalid('polRound must be -1 or a round');
      return {
        type,
        proposal: {
          chainId: shortString(p.chainId, 'chainId', 64),
          height: nonNegativeInt(p.height, 'height'),
          round: nonNegativeInt(p.round, 'round'),
          polRound: polRound as number,
          blockHash: hash32(p.blockHash, 'blockHash'),
        },
      };
    }
    case 'listContracts':
      return { type };
    case 'stateProof':
      return { type, key: shortString(raw.key, 'key', MAX_STATE_KEY), height: raw.height === null ? null : nonNegativeInt(raw.height, 'height') };
  }
}
