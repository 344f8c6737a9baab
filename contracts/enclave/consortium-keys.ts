import { randomBytes } from 'node:crypto';
import { fromHex, hkdf, networkKeyPair, toHex, type HpkeKeyPair } from '../../consensus/index.js';
import { StateCipher } from './confidential-state.js';

/**
 * The consortium secret's generations as this enclave knows them, and the
 * keys derived from each (nothing here leaves the enclave):
 *
 *   network key  = DeriveKeyPair(HKDF(secret, "cloister/network-key/v1"))  clients seal to it
 *   state keys   = HKDF(secret of generation 1, "cloister/state/v1/<contract>")
 *
 * A generation counts only once the ledger commits its public network key
 * (state key `s:secret:<g>`, written by the proposer's system transaction,
 * see system-contract.ts). Every enclave makes a candidate for generation 1
 * when its identity is made; the first candidate committed is the secret, the
 * others are dropped, and their enclaves receive the committed one by attested
 * release from a peer (secret-release.ts). A rotation (governance) asks for
 * the next generation: a proposer holding every generation makes a candidate
 * for it and commits it the same way. Older generations stay held, so what
 * was sealed to them still opens (and state keys stay generation 1's).
 */
export interface Generation {
  generation: number;
  secret: Uint8Array;
  network: HpkeKeyPair;
  /** The network public key, lowercase hex: the generation's public commitment. */
  publicKey: string;
}

/** The generation whose secret derives the state keys of confidential contracts. */
export const STATE_KEY_GENERATION = 1;

/** The keys as the call thread receives them (inside the enclave program, between its threads). */
export interface KeysSnapshot {
  committed: [generation: number, publicKey: string][];
  held: [generation: number, secret: string][];
}

export class ConsortiumKeys {
  readonly #held = new Map<number, Generation>();
  readonly #ciphers = new Map<string, StateCipher>();
  /** Committed generations (from the ledger): generation → network public key. */
  #committed = new Map<number, string>();

  /** A fresh 32-byte secret (a candidate for generation 1, or a rotation). */
  static newSecret(): Uint8Array {
    return new Uint8Array(randomBytes(32));
  }

  static generationOf(generation: number, secret: Uint8Array): Generation {
    const network = networkKeyPair(secret);
    return { generation, secret, network, publicKey: toHex(network.publicKey) };
  }

  /** Secrets this enclave holds (committed or candidates). */
  hold(generation: number, secret: Uint8Array): Generation {
    const g = ConsortiumKeys.generationOf(generation, secret);
    this.#held.set(generation, g);
    if (generation === STATE_KEY_GENERATION) this.#ciphers.clear();
    return g;
  }

  drop(generation: number): void {
    this.#held.delete(generation);
    if (generation === STATE_KEY_GENERATION) this.#ciphers.clear();
  }

  /**
   * Takes the ledger's commitments; returns the held generations that
   * contradict them (candidates that lost), which the caller drops and reseals.
   */
  setCommitted(committed: ReadonlyMap<number, string>): number[] {
    this.#committed = new Map(committed);
    // A cipher is usable only while its generation is committed: derive again from what holds now.
    this.#ciphers.clear();
    const losers: number[] = [];
    for (const [generation, g] of this.#held) {
      const want = committed.get(generation);
      if (want !== undefined && want !== g.publicKey) losers.push(generation);
    }
    for (const generation of losers) this.drop(generation);
    return losers;
  }

  /** The committed generations held, for the enclave's call thread. */
  snapshot(): KeysSnapshot {
    return {
      committed: [...this.#committed],
      held: this.usableAll().map((g) => [g.generation, toHex(g.secret)]),
    };
  }

  static fromSnapshot(snapshot: KeysSnapshot): ConsortiumKeys {
    const keys = new ConsortiumKeys();
    for (const [generation, secret] of snapshot.held) keys.hold(generation, fromHex(secret)!);
    keys.setCommitted(new Map(snapshot.committed));
    return keys;
  }

  committedGenerations(): Map<number, string> {
    return new Map(this.#committed);
  }

  /** A committed generation this enclave holds. */
  usable(generation: number): Generation | undefined {
    const g = this.#held.get(generation);
    return g && this.#committed.get(generation) === g.publicKey ? g : undefined;
  }

  /** Every committed generation held, oldest first (what a release hands over). */
  usableAll(): Generation[] {
    return [...this.#committed.keys()].sort((a, b) => a - b).flatMap((n) => this.usable(n) ?? []);
  }

  /** Committed generations this enclave does not hold: it must receive them from a peer. */
  missing(): number[] {
    return [...this.#committed.keys()].filter((n) => !this.usable(n)).sort((a, b) => a - b);
  }

  /** The newest committed generation held: what clients are told to seal to. */
  latest(): Generation | undefined {
    const newest = Math.max(0, ...this.#committed.keys());
    return newest === 0 ? undefined : this.usable(newest);
  }

  /**
   * The candidate this enclave would commit: its generation-1 candidate while
   * the ledger has no generation yet, or its candidate for the generation a
   * rotation asked for (`requested`) while none is committed.
   */
  candidate(requested: number | null = null): Generation | undefined {
    if (this.#committed.size === 0) return this.#held.get(STATE_KEY_GENERATION);
    if (requested !== null && !this.#committed.has(requested)) return this.#held.get(requested);
    return undefined;
  }

  /** Whether this enclave holds a secret for the generation (committed or a candidate). */
  holds(generation: number): boolean {
    return this.#held.has(generation);
  }

  isCommitted(generation: number): boolean {
    return this.#committed.has(generation);
  }

  /** The state cipher of a confidential contract; undefined while the secret is not held. */
  stateCipher(contract: string): StateCipher | undefined {
    let cipher = this.#ciphers.get(contract);
    if (cipher) return cipher;
    const g = this.usable(STATE_KEY_GENERATION);
    if (!g) return undefined;
    cipher = new StateCipher(hkdf(g.secret, `cloister/state/v1/${contract}`, 64), STATE_KEY_GENERATION);
    this.#ciphers.set(contract, cipher);
    return cipher;
  }
}
