import { evaluationTime } from '../../attestation/index.js';
import {
  canonicalize,
  checkTxStateless,
  genesisHash,
  headerHash,
  isSealedTx,
  verifyMerkleProof,
  type JsonValue,
  parseBlockHeader,
  parseCommitCertificate,
  verifyCertificate,
  verifyStateProof,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
} from '../../consensus/index.js';
import { ATTEST_METHOD, CONSORTIUM_CONTRACT, chainViewAt, evaluateAdmission, genesisChainView, govKey, ledgerAttestationFreshness, type ChainView, type ProvedStateValue, type ViewTransitionProof } from '../../contracts/index.js';
import { ProofError } from './errors.js';
import { NO_TX_LIMITS, isRecord } from './shape.js';
import type { SignerAttestation, VerifiedHeader, VerifiedSigner, ViewTransition } from './types.js';

export interface VerifyOptions {
  /** When the signers' evidence is evaluated (certificate validity, TCB dates). */
  now: Date;
  /**
   * Leaves the signers' evidence unchecked (each signer then reads as
   * platform "unchecked"): for a verifier without the X.509 and hardware
   * report code, such as the explorer page's browser build. Never the default.
   */
  skipEvidence?: boolean;
}

/** Parses a header and its certificate, and checks that the certificate is for this header. */
function certified(rawHeader: unknown, rawCertificate: unknown, genesis: Genesis, what: string): { header: BlockHeader; certificate: CommitCertificate; hash: string } {
  let header: BlockHeader;
  let certificate: CommitCertificate;
  try {
    header = parseBlockHeader(rawHeader, `${what} header`);
    certificate = parseCommitCertificate(rawCertificate);
  } catch (err) {
    throw new ProofError('PROOF_MALFORMED', `${what}: ${(err as Error).message}`);
  }
  if (header.chainId !== genesis.chainId) {
    throw new ProofError('WRONG_CHAIN', `${what} is of chain "${header.chainId}", the genesis is of "${genesis.chainId}"`);
  }
  const hash = headerHash(header);
  if (certificate.blockHash !== hash || certificate.height !== header.height) {
    throw new ProofError('CERTIFICATE', `${what}: the certificate is for block ${certificate.blockHash} at height ${certificate.height}, not this header (${hash} at ${header.height})`);
  }
  return { header, certificate, hash };
}

/** Checks the header's commitments to the view, then that a quorum of the view's validators precommitted it. */
export function checkAgainstView(header: BlockHeader, certificate: CommitCertificate, view: ChainView, what: string): void {
  if (header.validatorSetHash !== view.validatorSetHash) {
    throw new ProofError(
      'VALIDATOR_SET',
      `${what} commits to validator set ${header.validatorSetHash}, but the genesis and the proof's governance changes lead to ${view.validatorSetHash} (a change is missing, or the header is not of this consortium)`,
    );
  }
  if (header.policyHash !== view.policyHash) {
    throw new ProofError('POLICY', `${what} commits to attestation policy ${header.policyHash}, but the genesis and the proof's governance changes lead to ${view.policyHash}`);
  }
  if (!verifyCertificate(view.chainId, certificate, view.validatorKeys, view.quorum)) {
    throw new ProofError('CERTIFICATE', `${what}: the commit certificate is not ${view.quorum} valid precommits of the ${view.validatorKeys.length} validators of height ${header.height}`);
  }
}

function provedRecord(raw: unknown, stateRoot: string, key: string, what: string): string | null {
  if (!isRecord(raw) || !(raw.value === null || typeof raw.value === 'string')) throw new ProofError('PROOF_MALFORMED', `${what}: ${key} is not {value, proof}`);
  const { value, proof } = raw as unknown as ProvedStateValue;
  if (!verifyStateProof(stateRoot, key, value, proof)) throw new ProofError('VIEW_TRANSITION', `${what}: the value of ${key} does not verify under its state root`);
  return value;
}

/**
 * The view after a block that changed the validators or the policy: the
 * genesis with the records its transition proves under the block's state root
 * (the block itself must already be checked against the view before it).
 */
export function viewAfter(genesis: Genesis, header: BlockHeader, proof: ViewTransitionProof, what = `the governance change at height ${header.height}`): ChainView {
  const records = new Map<string, string>();
  const validators = provedRecord(proof.validators, header.stateRoot, govKey.validators, what);
  const policy = provedRecord(proof.policy, header.stateRoot, govKey.policy, what);
  if (validators !== null) records.set(govKey.validators, validators);
  if (policy !== null) records.set(govKey.policy, policy);
  try {
    return chainViewAt(genesis, { read: (key) => records.get(key) });
  } catch (err) {
    throw new ProofError('VIEW_TRANSITION', `${what}: its records are not a validator set and policy (${(err as Error).message})`);
  }
}

/** The view in force from height `from` on (until the next one). */
interface ViewStep {
  from: number;
  view: ChainView;
}

/**
 * Follows the governance changes of the validators and policy from the
 * genesis: each change is a block certified by the set in force before it,
 * whose state root proves the new records. Returns every view on the way, so
 * that the view of any height up to `height` is read without checking the
 * changes again.
 */
function viewSteps(genesis: Genesis, transitions: unknown, height: number): ViewStep[] {
  if (!Array.isArray(transitions)) throw new ProofError('PROOF_MALFORMED', 'transitions must be an array');
  const steps: ViewStep[] = [{ from: 0, view: genesisChainView(genesis) }];
  for (const raw of transitions as unknown[]) {
    if (!isRecord(raw) || !isRecord(raw.proof)) throw new ProofError('PROOF_MALFORMED', 'a transition is not {header, certificate, proof}');
    const t = raw as unknown as ViewTransition;
    const what = `the governance change at height ${String(t.proof.height)}`;
    const { header, certificate } = certified(t.header, t.certificate, genesis, what);
    if (t.proof.height !== header.height) throw new ProofError('PROOF_MALFORMED', `${what}: its records are for height ${String(t.proof.height)}, its header is ${header.height}`);
    if (header.height < steps[steps.length - 1]!.from || header.height >= height) {
      throw new ProofError('PROOF_MALFORMED', `${what}: transitions must be in increasing height order, below the proved height ${height}`);
    }
    checkAgainstView(header, certificate, steps[steps.length - 1]!.view, what);
    steps.push({ from: header.height + 1, view: viewAfter(genesis, header, t.proof, what) });
  }
  return steps;
}

/** The view of `height` among the steps (the last one that starts at or below it). */
function viewIn(steps: readonly ViewStep[], height: number): ChainView {
  let view = steps[0]!.view;
  for (const step of steps) if (step.from <= height) view = step.view;
  return view;
}

/** The view of `height`: the genesis, then every governance change of the validators and policy below it. */
export function viewAtHeight(genesis: Genesis, transitions: unknown, height: number): ChainView {
  const steps = viewSteps(genesis, transitions, height);
  return steps[steps.length - 1]!.view;
}

/**
 * Checks each certificate signer's evidence as a node checks a peer's at
 * admission, against the validators and policy of the certified height. Where
 * the evidence is on the ledger, also that it is: its `attest` transaction
 * is in a block certified by the validators of that block's height, and the
 * evidence binds that block's parent and is judged at that block's time.
 */
function checkSigners(
  certificate: CommitCertificate,
  attestations: unknown,
  steps: readonly ViewStep[],
  genesis: Genesis,
  height: number,
  now: Date,
): VerifiedSigner[] {
  const view = viewIn(steps, height);
  if (!Array.isArray(attestations)) throw new ProofError('PROOF_MALFORMED', 'attestations must be an array');
  const byKey = new Map<string, SignerAttestation>();
  for (const a of attestations as unknown[]) if (isRecord(a) && typeof a.validator === 'string') byKey.set(a.validator, a as unknown as SignerAttestation);
  const context = { ...genesis, validators: [...view.validators], policy: view.policy as unknown as Genesis['policy'] };
  return certificate.signatures.map(({ validator }) => {
    const a = byKey.get(validator);
    if (!a) throw new ProofError('ATTESTATION', `no evidence for certificate signer ${validator}`);
    const place = view.validators.find((v) => v.voteKey === validator)!;
    if (a.nodeId !== place.nodeId) throw new ProofError('ATTESTATION', `the evidence for signer ${validator} is for node ${String(a.nodeId)}, the validator set lists ${place.nodeId}`);
    if (typeof a.freshness !== 'string' || a.freshness.length > 1024) throw new ProofError('PROOF_MALFORMED', `the evidence for signer ${validator} has no freshness value`);
    const onLedger = a.ledger === undefined ? null : ledgerPlace(a, genesis, steps, height);
    const judgedAt = onLedger ? evaluationTime(onLedger.time) : now;
    const decision = evaluateAdmission({ nodeId: a.nodeId, publicKeys: a.publicKeys, evidence: a.evidence }, { genesis: context, authenticatedNodeId: place.nodeId, freshness: a.freshness, now: judgedAt });
    if (!decision.admitted) throw new ProofError('ATTESTATION', `signer ${validator} (node ${place.nodeId}): ${decision.reason!.code}: ${decision.reason!.message}`);
    return { validator, nodeId: place.nodeId, platform: decision.platform!, measurement: decision.measurement!, attestedAt: onLedger };
  });
}

/** Checks that a signer's evidence is the one its `attest` transaction put on the ledger; returns that block's height and time. */
function ledgerPlace(a: SignerAttestation, genesis: Genesis, steps: readonly ViewStep[], height: number): { height: number; time: number } {
  const what = `the ledger attestation of signer ${a.validator}`;
  const ledger = a.ledger!;
  if (!isRecord(ledger)) throw new ProofError('PROOF_MALFORMED', `${what} is not {tx, txPath, header, certificate}`);
  const { header, certificate } = certified(ledger.header, ledger.certificate, genesis, what);
  if (header.height > height) throw new ProofError('ATTESTATION', `${what} is at height ${header.height}, after the block it speaks for (${height})`);
  checkAgainstView(header, certificate, viewIn(steps, header.height), what);
  let hash: string;
  try {
    hash = checkTxStateless(ledger.tx, genesis.chainId, NO_TX_LIMITS).hash;
  } catch (err) {
    throw new ProofError('ATTESTATION', `${what}: its transaction: ${(err as Error).message}`);
  }
  const tx = ledger.tx;
  const claim = { nodeId: a.nodeId, publicKeys: a.publicKeys, evidence: a.evidence };
  if (tx.from !== a.validator || tx.contract !== CONSORTIUM_CONTRACT || isSealedTx(tx) || tx.method !== ATTEST_METHOD || tx.args.length !== 1 || canonicalize(tx.args[0]!) !== canonicalize(claim as unknown as JsonValue)) {
    throw new ProofError('ATTESTATION', `${what}: its transaction is not this enclave's attest(claim) with this evidence`);
  }
  if (!isRecord(ledger.txPath) || !verifyMerkleProof(Buffer.from(hash, 'hex'), ledger.txPath as never, header.txRoot)) {
    throw new ProofError('ATTESTATION', `${what}: its transaction is not in block ${header.height}`);
  }
  if (a.freshness !== ledgerAttestationFreshness(genesisHash(genesis), header.parentHash)) {
    throw new ProofError('ATTESTATION', `${what}: its evidence does not bind the parent of block ${header.height}`);
  }
  return { height: header.height, time: header.time };
}

/**
 * Checks a certified header against the genesis: its chain, the governance
 * changes that lead to its height's validators and policy, its commitments to
 * them, a quorum of their precommits, and each signer's evidence.
 */
export function verifyCertifiedHeader(raw: unknown, genesis: Genesis, options: VerifyOptions): VerifiedHeader & { header: BlockHeader } {
  if (!isRecord(raw)) throw new ProofError('PROOF_MALFORMED', 'block must be {header, certificate, transitions, attestations}');
  const { header, certificate, hash } = certified(raw.header, raw.certificate, genesis, 'the block');
  const steps = viewSteps(genesis, raw.transitions, header.height);
  const view = viewIn(steps, header.height);
  checkAgainstView(header, certificate, view, `block ${header.height}`);
  const signers = options.skipEvidence
    ? certificate.signatures.map(({ validator }) => ({ validator, nodeId: view.validators.find((v) => v.voteKey === validator)!.nodeId, platform: 'unchecked', measurement: 'unchecked', attestedAt: null }))
    : checkSigners(certificate, raw.attestations, steps, genesis, header.height, options.now);
  return { header, height: header.height, blockHash: hash, time: header.time, signers };
}
