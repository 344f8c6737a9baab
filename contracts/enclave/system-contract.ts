import { canonicalize, isHexOfLength, signTx, type Ed25519Signer, type JsonValue, type SignedPlainTx } from '../../consensus/index.js';
import { stateKey, type StateOverlay, type StateReader } from './state.js';

/**
 * The chain's built-in system contract, `consortium`, which no bundle can
 * claim (the name is reserved). Today it has one method: `commitSecret(generation,
 * publicKey)`, the public commitment of a consortium-secret generation (its
 * network encryption key). Only a validator's enclave sends it, signed with
 * its vote key, and only as the proposer of a block while the ledger has no
 * commitment for that generation; the first committed is final.
 */
export const CONSORTIUM_CONTRACT = 'consortium';
export const COMMIT_SECRET_METHOD = 'commitSecret';
/** The gas a system transaction declares and uses (fixed: it runs no contract code). */
export const SYSTEM_TX_GAS = 10_000;

export interface SecretCommitment {
  generation: number;
  /** The generation's network public key (X25519), lowercase hex. */
  publicKey: string;
}

export function secretCommitTx(chainId: string, signer: Ed25519Signer, nonce: number, commitment: SecretCommitment): SignedPlainTx {
  return signTx(
    { chainId, from: signer.publicKey, nonce, contract: CONSORTIUM_CONTRACT, method: COMMIT_SECRET_METHOD, args: [commitment.generation, commitment.publicKey], gasLimit: SYSTEM_TX_GAS },
    signer,
  ) as SignedPlainTx;
}

/** Every committed generation in a state: generation → network public key. */
export function readCommitments(state: { withPrefix(prefix: string): Iterable<[string, string]> }): Map<number, string> {
  const out = new Map<number, string>();
  for (const [, record] of state.withPrefix('s:secret:')) {
    const c = JSON.parse(record) as SecretCommitment;
    out.set(c.generation, c.publicKey);
  }
  return out;
}

export function readCommitment(state: StateReader, generation: number): SecretCommitment | undefined {
  const text = state.read(stateKey.secret(generation));
  return text === undefined ? undefined : (JSON.parse(text) as SecretCommitment);
}

/** Runs a system transaction; an error message when it fails (the receipt says why), null when it succeeded. */
export function runSystemTx(block: StateOverlay, tx: SignedPlainTx, validators: readonly string[]): { error: { code: string; message: string } | null; events: { name: string; data: JsonValue }[] } {
  const fail = (message: string) => ({ error: { code: 'SYSTEM_TX_REFUSED', message }, events: [] });
  if (tx.method !== COMMIT_SECRET_METHOD) return fail(`the system contract has no method "${tx.method}"`);
  if (!validators.includes(tx.from)) return fail('only a validator\'s enclave commits a consortium secret');
  const [generation, publicKey] = tx.args;
  if (tx.args.length !== 2 || generation !== 1 || !isHexOfLength(publicKey, 32)) {
    return fail('commitSecret takes (1, a 32-byte public key in hex); later generations come with rotation');
  }
  if (readCommitment(block, generation) !== undefined) return fail(`generation ${generation} is already committed`);
  const commitment: SecretCommitment = { generation, publicKey };
  block.write(stateKey.secret(generation), canonicalize(commitment as unknown as JsonValue));
  return { error: null, events: [{ name: 'SecretCommitted', data: commitment as unknown as JsonValue }] };
}
