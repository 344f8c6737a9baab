import { SIGN_STEP, compareSlots, describeSlot, type LastSign, type SignStep } from '../../consensus/index.js';

/** A signature by this node's vote key, seen in consensus gossip. */
export interface SeenSignature {
  height: number;
  round: number;
  step: SignStep;
  /** The block hash signed, or 'nil'. */
  value: string;
}

export interface DoubleSignRisk {
  slot: SeenSignature;
  /** Where it was seen, e.g. 'gossip relayed by <peer>'. */
  source: string;
  message: string;
}

/** Most signatures kept for evaluation while the guard is not armed yet. */
const MAX_PENDING = 1024;

/**
 * The double-sign guard (after CometBFT's double_sign_check_height). The
 * enclave's sealed record stops a restarted enclave from signing below what it
 * signed, and commit certificates move that record past any signature of its
 * key they hold (the enclave checks them); what neither can see is another
 * copy of this node (a copied or restored data directory) signing right now.
 * So the node watches consensus gossip for signatures of its own key at
 * heights not yet committed, that it did not make itself: one newer than the
 * sealed record it started from (or at that very slot with another value)
 * shows another live copy of the key. From then on this node signs nothing,
 * and says why, until it is restarted without the other copy.
 *
 * Signatures seen before the node has caught up with its peers are kept and
 * judged once it has (arm): only then does it know which heights are settled.
 *
 * Pure: the consensus driver feeds it what it sees and what it signs.
 */
export class DoubleSignGuard {
  readonly #startedFrom: LastSign | null;
  /** What this process signed since it started, by slot. */
  readonly #ours = new Map<string, string>();
  #pending: { slot: SeenSignature; source: string }[] = [];
  #armed = false;
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

  /** Caught up (committed height known): judges what was seen so far, and from now on judges at once. */
  arm(committedHeight: number): void {
    this.#armed = true;
    const pending = this.#pending;
    this.#pending = [];
    for (const { slot, source } of pending) this.#judge(slot, source, committedHeight);
  }

  /** A signature by our vote key seen in gossip; `committedHeight` is this node's committed height now. */
  observe(slot: SeenSignature, source: string, committedHeight: number): void {
    if (this.#risk) return;
    if (!this.#armed) {
      if (this.#pending.length < MAX_PENDING) this.#pending.push({ slot, source });
      return;
    }
    this.#judge(slot, source, committedHeight);
  }

  /** Forgets our own signatures below `height` (gossip that old is settled by certificates). */
  prune(height: number): void {
    for (const key of this.#ours.keys()) if (Number(key.split('/')[0]) < height) this.#ours.delete(key);
  }

  #judge(slot: SeenSignature, source: string, committedHeight: number): void {
    if (this.#risk) return;
    // A committed height is settled: its certificate moved the enclave's record past it.
    if (slot.height <= committedHeight) return;
    const ours = this.#ours.get(slotKey(slot));
    if (ours !== undefined) {
      if (ours !== slot.value) this.#trip(slot, source, `our key signed ${slot.value} at a slot where this node signed ${ours}`);
      return;
    }
    const start = this.#startedFrom;
    if (start !== null) {
      const order = compareSlots({ height: slot.height, round: slot.round, step: SIGN_STEP[slot.step] }, start);
      if (order < 0) return; // older than our record: our own, from before a restart
      if (order === 0 && slot.value === start.value) return; // our own last signature, echoed
    }
    this.#trip(
      slot,
      source,
      start === null ? 'our key signed although its sealed record says it never signed' : `our key signed something newer than its sealed record (${describeSlot(start)})`,
    );
  }

  #trip(slot: SeenSignature, source: string, why: string): void {
    this.#risk = {
      slot,
      source,
      message: `double-sign risk: ${why}: a ${slot.step} at height ${slot.height} round ${slot.round}, seen in ${source}. Another copy of this node (a copied or restored data directory) is using its vote key; this node signs nothing until it is restarted without the other copy`,
    };
  }
}

function slotKey(s: Pick<SeenSignature, 'height' | 'round' | 'step'>): string {
  return `${s.height}/${s.round}/${s.step}`;
}
