import { ChainError, canonicalize, genesisHash, sha256Hex, type Genesis, type JsonValue } from '../../consensus/index.js';
import { evaluationTime } from '../../attestation/index.js';
import { evaluateAdmission, type AdmissionClaim } from './peer-evidence.js';
import { readConfig } from './governance/index.js';
import type { StateOverlay, StateReader } from './state.js';

/**
 * The ledger's record of each validator's attestation (#11): a validator's
 * enclave, as the proposer of a block, includes an `attest` transaction with
 * evidence it made for that block, binding its keys to its node, this chain
 * and the block's parent (so it cannot be older than the parent). Every
 * enclave executing the block checks the evidence as it checks a peer at
 * admission, against the validators and policy in force and at the block's
 * time, and records it. The evidence itself is in the block: an auditor
 * re-verifies it offline (receipt proofs carry it, `ledger verify` checks
 * every one) and sees which program each signer ran, and since when.
 *
 *   g:attestation:<vote key>   {height, time, nodeId, platform, measurement, evidenceHash}
 *                              the last evidence the ledger holds for that enclave
 */
export const ATTEST_METHOD = 'attest';

/** A proposer records fresh evidence when the ledger's is older than this (block time), or of another program. */
export const LEDGER_ATTESTATION_REFRESH_MS = 6 * 60 * 60 * 1000;

export const attestationKey = (voteKey: string): string => `g:attestation:${voteKey}`;

export interface LedgerAttestationRecord {
  height: number;
  time: number;
  nodeId: string;
  platform: string;
  measurement: string;
  /** SHA-256 of the evidence bytes (the transaction at `height` carries them). */
  evidenceHash: string;
}

/** The freshness an `attest` transaction's evidence binds: this genesis and the parent of the block that includes it. */
export function ledgerAttestationFreshness(genesisHashHex: string, parentHash: string): string {
  return `cloister/ledger-attestation/v1:${sha256Hex(`${genesisHashHex}:${parentHash}`)}`;
}

export function readLedgerAttestation(state: StateReader, voteKey: string): LedgerAttestationRecord | undefined {
  const text = state.read(attestationKey(voteKey));
  return text === undefined ? undefined : (JSON.parse(text) as LedgerAttestationRecord);
}

/** Does this validator's enclave, proposing at `time`, owe the ledger fresh evidence? */
export function needsLedgerAttestation(state: StateReader, voteKey: string, measurement: string, time: number): boolean {
  const record = readLedgerAttestation(state, voteKey);
  return record === undefined || record.measurement !== measurement || time - record.time >= LEDGER_ATTESTATION_REFRESH_MS;
}

const genesisHashes = new WeakMap<Genesis, string>();
function hashOf(genesis: Genesis): string {
  let hash = genesisHashes.get(genesis);
  if (hash === undefined) genesisHashes.set(genesis, (hash = genesisHash(genesis)));
  return hash;
}

export interface AttestContext {
  genesis: Genesis;
  height: number;
  time: number;
  parentHash: string;
}

/**
 * Checks an attestation claim for the validator whose vote key is `voteKey`,
 * in the block at `ctx`: the refusal's message, or the evidence's facts.
 * The same check runs where the claim is made (the proposer), executed (every
 * enclave) and audited (node/proofs, node/ledger).
 */
export function checkLedgerAttestation(
  claim: unknown,
  voteKey: string,
  ctx: AttestContext & { validators: readonly { nodeId: string; voteKey: string }[]; policy: JsonValue },
): { ok: true; nodeId: string; platform: string; measurement: string } | { ok: false; message: string } {
  const place = ctx.validators.find((v) => v.voteKey === voteKey);
  if (!place) return { ok: false, message: 'only a validator\'s enclave records its attestation, signing with its vote key' };
  const c = claim as Partial<AdmissionClaim> | null;
  if (typeof c !== 'object' || c === null || c.nodeId !== place.nodeId || c.publicKeys?.vote !== voteKey) {
    return { ok: false, message: `the claim must be for node ${place.nodeId} and vote key ${voteKey}` };
  }
  const decision = evaluateAdmission(claim, {
    genesis: { ...ctx.genesis, policy: ctx.policy as Genesis['policy'], validators: [...ctx.validators] },
    authenticatedNodeId: place.nodeId,
    freshness: ledgerAttestationFreshness(hashOf(ctx.genesis), ctx.parentHash),
    now: evaluationTime(ctx.time),
  });
  if (!decision.admitted) return { ok: false, message: `${decision.reason!.code}: ${decision.reason!.message}` };
  return { ok: true, nodeId: place.nodeId, platform: decision.platform!, measurement: decision.measurement! };
}

/** `attest(claim)`, sent by a validator's enclave as a block's proposer. */
export function attest(state: StateOverlay, ctx: AttestContext, from: string, args: JsonValue[]): { result: JsonValue; events: { name: string; data: JsonValue }[] } {
  if (args.length !== 1) throw new ChainError('INVALID_ARGS', 'attest takes (claim)');
  const config = readConfig(state, ctx.genesis);
  const checked = checkLedgerAttestation(args[0], from, { ...ctx, validators: config.validators, policy: config.policy });
  if (!checked.ok) throw new ChainError('INVALID_ARGS', `attestation refused: ${checked.message}`);
  const evidence = (args[0] as unknown as AdmissionClaim).evidence;
  const record: LedgerAttestationRecord = {
    height: ctx.height,
    time: ctx.time,
    nodeId: checked.nodeId,
    platform: checked.platform,
    measurement: checked.measurement,
    evidenceHash: sha256Hex(Buffer.from(evidence, 'base64')),
  };
  state.write(attestationKey(from), canonicalize(record as unknown as JsonValue));
  return { result: record as unknown as JsonValue, events: [{ name: 'ValidatorAttested', data: { voteKey: from, ...record } as unknown as JsonValue }] };
}
