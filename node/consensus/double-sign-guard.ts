import { SIGN_STEP, compareSlots, describeSlot, type LastSign, type SignStep } from '../../consensus/index.js';

/** A signature by this node's vote key, seen somewhere. */
export interface SeenSignature {
  height: number;
  round: number;
  step: SignStep;
  /** The block hash signed, or 'nil'. */
  value: string;
}

export interface DoubleSignRisk {
  slot: SeenSignature;
  /** Where it was seen: 'gossip from <peer>', 'certificate of block <h>', … */
  source: string;
  message: string;
}

/**
 * The double-sign guard (CometBFT's double_sign_check_height, extended to
 * gossip). The enclave's sealed record stops a restarted enclave from signing
 * below what it signed, but not a second copy of the node (a copied or
 * restored data directory) from signing beside the first. So the node watches
 * for signatures of its own vote key that it did not make: in the last
 * blocks' commit certificates (its own store at start, and blocks it syncs)
 * and in consensus gossip. One that is newer than the sealed record it
 * started from (or at that very slot with another value), and is not one this
 * process signed since, was made by another copy of this key; from then on
 * this node signs nothing, and says why.
 *
 * Pure: the consensus driver feeds it what it sees and what it signs.
 */
export class DoubleSignGuard {
  readonly #startedFrom: LastSign | null;
  /** What this process signed since it started, by slot. */
  readonly #ours = new Map<string, string>();
  #risk: DoubleSignRisk | null = null;

  constructor(sealedAtStart: LastSign | null) {
    this.#startedFrom = sealedAtStart;
  }

  get risk(): DoubleSignRisk | null {
    return this.#risk;
  }

  /** This process's enclave released a signature for this slot. */
  signedByUs(slot: SeenSignature): void {
    this.#ours.set(slotKey(slot), slot.value);
  }

  /** A signature by our vote key, seen at `source`. Returns true when it shows another copy of the key at work. */
  observe(slot: SeenSignature, source: string): boolean {
    if (this.#risk) return true;
    const ours = this.#ours.get(slotKey(slot));
    if (ours !== undefined) {
      if (ours === slot.value) return false;
      return this.#trip(slot, source, `our key signed ${slot.value} at a slot where this node signed ${ours}`);
    }
    const start = this.#startedFrom;
    const numbered = { height: slot.height, round: slot.round, step: SIGN_STEP[slot.step] };
    if (start === null) return this.#trip(slot, source, 'our key signed something although its sealed record says it never signed');
    const order = compareSlots(numbered, start);
    if (order < 0) return false; // older than our record: possibly our own, from before a restart
    if (order === 0 && slot.value === start.value) return false; // our own last signature, echoed
    return this.#trip(slot, source, `our key signed something newer than its sealed record (${describeSlot(start)})`);
  }

  /** Forgets our own signatures below `height` (messages that old are never looked at again). */
  prune(height: number): void {
    for (const key of this.#ours.keys()) if (Number(key.split('/')[0]) < height) this.#ours.delete(key);
  }

  #trip(slot: SeenSignature, source: string, why: string): true {
    this.#risk = {
      slot,
      source,
      message: `double-sign risk: ${why}: ${slot.step} at height ${slot.height} round ${slot.round} seen in ${source}. Another copy of this node (a copied or restored data directory) is using its vote key; this node will not sign until restarted without the other copy`,
    };
    return true;
  }
}

function slotKey(s: Pick<SeenSignature, 'height' | 'round' | 'step'>): string {
  return `${s.height}/${s.round}/${s.step}`;
}
