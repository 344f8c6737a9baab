import { ChainError, canonicalBytes, fromHex, hpkeOpen, hpkeSeal, isHexOfLength, toHex, type HpkeKeyPair } from '../../consensus/index.js';

/**
 * Attested release of the consortium secret from one validator's enclave to
 * another's. The host carries the messages (request-response over libp2p) but
 * sees only evidence and ciphertext:
 *
 *   1. the recipient's host asks a peer's enclave for a challenge (a random nonce it remembers);
 *   2. the recipient's enclave makes evidence whose report_data binds its vote and
 *      encryption keys, its node id, the chain and releaseFreshness(genesis hash, nonce);
 *   3. the releasing enclave checks, itself, that the nonce is one it issued and has
 *      not used, that the evidence verifies to a pinned root, satisfies the policy and
 *      binds exactly that, and that the node and vote key are a validator's; only then
 *      does it seal every committed generation to the recipient's encryption key (HPKE,
 *      RFC 9180), bound (AAD) to the chain, the genesis and the recipient node;
 *   4. the recipient's enclave opens it and keeps a generation only if its network key
 *      is the public commitment on its own ledger.
 */

const RELEASE_INFO = new TextEncoder().encode('cloister/secret-release/v1');

/** The freshness value a release's evidence binds: the genesis it is for and the releaser's challenge. */
export function releaseFreshness(genesisHash: string, nonce: string): string {
  return `cloister/secret-release/v1:${genesisHash}:${nonce}`;
}

export interface ReleaseBinding {
  chainId: string;
  genesisHash: string;
  /** The recipient node. */
  nodeId: string;
}

/** The sealed secrets, as the host carries them. */
export interface SealedRelease {
  /** HPKE encapsulated key, hex. */
  enc: string;
  /** base64 */
  ct: string;
}

export interface ReleasedGeneration {
  generation: number;
  secret: Uint8Array;
}

function aad(b: ReleaseBinding): Uint8Array {
  return canonicalBytes({ chainId: b.chainId, domain: 'cloister/secret-release/v1', genesisHash: b.genesisHash, nodeId: b.nodeId });
}

export function sealRelease(recipientKey: Uint8Array, binding: ReleaseBinding, generations: readonly ReleasedGeneration[]): SealedRelease {
  const plain = canonicalBytes({ generations: generations.map((g) => ({ generation: g.generation, secret: toHex(g.secret) })) });
  const { enc, ciphertext } = hpkeSeal(recipientKey, RELEASE_INFO, aad(binding), plain);
  return { enc: toHex(enc), ct: Buffer.from(ciphertext).toString('base64') };
}

/** Opens a release sealed to this enclave; DECRYPT_FAILED when it was not sealed to this key for this binding. */
export function openRelease(recipient: HpkeKeyPair, binding: ReleaseBinding, sealed: unknown): ReleasedGeneration[] {
  const s = sealed as Partial<SealedRelease> | null;
  if (typeof s !== 'object' || s === null || !isHexOfLength(s.enc, 32) || typeof s.ct !== 'string' || s.ct.length > 65_536) {
    throw new ChainError('ECALL_INVALID', 'a sealed release is {enc: 32-byte hex, ct: base64}');
  }
  const plain = hpkeOpen(recipient, fromHex(s.enc)!, RELEASE_INFO, aad(binding), Buffer.from(s.ct, 'base64'));
  const parsed = JSON.parse(Buffer.from(plain).toString('utf8')) as { generations?: { generation?: unknown; secret?: unknown }[] };
  if (!Array.isArray(parsed.generations)) throw new ChainError('DECRYPT_FAILED', 'the release opened but is malformed');
  return parsed.generations.map((g) => {
    if (!Number.isSafeInteger(g.generation) || (g.generation as number) < 1 || (g.generation as number) > 999_999_999 || !isHexOfLength(g.secret, 32)) {
      throw new ChainError('DECRYPT_FAILED', 'the release opened but is malformed');
    }
    return { generation: g.generation as number, secret: fromHex(g.secret)! };
  });
}

/** The challenges an enclave issued and has not seen used: bounded, oldest forgotten first. */
export class ChallengeBook {
  readonly #open = new Set<string>();
  constructor(private readonly capacity = 64) {}

  add(nonce: string): void {
    this.#open.add(nonce);
    while (this.#open.size > this.capacity) this.#open.delete(this.#open.values().next().value!);
  }

  /** True once per issued nonce. */
  take(nonce: string): boolean {
    return this.#open.delete(nonce);
  }
}
