/**
 * A deterministic simulator for the BFT state machine: N machines, a virtual
 * clock, a seeded PRNG driving loss / delay / reordering, real ed25519 keys, a
 * fake enclave per node (signs, refuses conflicting votes, validates proposals
 * by a deterministic rule) and optional Byzantine behaviours.
 */
import {
  Ed25519Signer,
  ZERO_HASH,
  generateEd25519KeyPair,
  headerHash,
  quorumSize,
  sha256Hex,
  verifyCertificate,
  voteMessage,
  type BlockHeader,
  type CommitCertificate,
  type SafetyState,
  type Vote,
  checkSign,
  signStepName,
} from '../../../../consensus/index.js';
import {
  TendermintMachine,
  proposalMessage,
  type BftAction,
  type BftInput,
  type Evidence,
  type ProposalBlock,
  type SignedProposal,
  type SignedVote,
  type ResumeState,
} from '../../../../consensus/bft/index.js';
import { prng } from '../../../helpers/prng.js';

export { prng };

export const CHAIN_ID = 'sim-chain';

export type Byzantine = 'equivocatingProposer' | 'wrongStateRoot' | 'doubleVote';

export interface NetworkOptions {
  /** Probability that one message is lost. */
  drop?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** false when a message from `from` to `to` cannot pass at virtual time `now`. */
  connected?: (from: number, to: number, now: number) => boolean;
}

export interface SimOptions {
  n: number;
  seed: number;
  net?: NetworkOptions;
  byzantine?: Partial<Record<number, Byzantine>>;
  /** Nodes that never run (crashed from the start). */
  crashed?: number[];
  gossipIntervalMs?: number;
}

type Message =
  | { kind: 'proposal'; proposal: SignedProposal }
  | { kind: 'vote'; vote: SignedVote }
  | { kind: 'status'; height: number }
  | { kind: 'sync'; blocks: { block: ProposalBlock; certificate: CommitCertificate }[] };

interface Event {
  time: number;
  seq: number;
  run: () => void;
}

/** A binary min-heap on (time, seq): ties keep insertion order, so runs are reproducible. */
class EventQueue {
  #heap: Event[] = [];
  get size(): number {
    return this.#heap.length;
  }
  push(e: Event): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Event | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
function less(a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

export function stateRootOf(parentHash: string, txRoot: string): string {
  return sha256Hex(`state/${parentHash}/${txRoot}`);
}

/**
 * A fake enclave: holds the key and the real safety rules (consensus/bft/safety-rules.ts: no
 * conflicting or earlier slot, precommits and votes against the lock only with their prevotes),
 * validates by a deterministic rule. Its safety state survives a crash, as the sealed identity does.
 */
export class FakeEnclave {
  readonly signer: Ed25519Signer;
  safety: SafetyState = { lastSign: null, lock: null };
  refusals = 0;
  constructor(readonly validators: () => string[]) {
    this.signer = new Ed25519Signer(generateEd25519KeyPair().privateKey);
  }
  #claim(request: Parameters<typeof checkSign>[1]): boolean {
    const validators = this.validators();
    try {
      this.safety = checkSign(this.safety, request, { chainId: CHAIN_ID, validators, quorum: quorumSize(validators.length) });
      return true;
    } catch {
      this.refusals++;
      return false;
    }
  }
  signVote(vote: Vote, justification: SignedVote[] = []): string | undefined {
    if (!this.#claim({ step: vote.type, height: vote.height, round: vote.round, blockHash: vote.blockHash, justification })) return undefined;
    return this.signer.sign(voteMessage(vote));
  }
  signProposal(proposal: SignedProposal['proposal']): string | undefined {
    if (!this.#claim({ step: 'proposal', height: proposal.height, round: proposal.round, blockHash: headerHash(proposal.block.header) })) return undefined;
    return this.signer.sign(proposalMessage(proposal));
  }
  /** Re-execution stand-in: the state root must follow from the parent and the transactions. */
  validate(block: ProposalBlock, parentHash: string, height: number): boolean {
    const h = block.header;
    return h.height === height && h.parentHash === parentHash && h.stateRoot === stateRootOf(h.parentHash, h.txRoot);
  }
}

const SIM_TIMEOUTS = {
  propose: { baseMs: 300, incrementMs: 100 },
  prevote: { baseMs: 150, incrementMs: 100 },
  precommit: { baseMs: 150, incrementMs: 100 },
};

export class SimNode {
  machine: TendermintMachine;
  /** The lock record the host keeps durably before each precommit (survives a crash). */
  lockRecord: Extract<BftAction, { type: 'lock' }> | undefined;
  /** Own signed votes, kept durably before each is sent (survive a crash; ResumeState.votes). */
  ownVotes: SignedVote[] = [];
  /** Down (between a crash and its restart): sees nothing, does nothing. */
  down = false;
  restarts = 0;
  /** Committed block hash per height (index = height - 1). */
  readonly committed: string[] = [];
  readonly blocks: { block: ProposalBlock; certificate: CommitCertificate }[] = [];
  readonly evidence: Evidence[] = [];
  lastHash = ZERO_HASH;
  constructor(
    readonly sim: Simulator,
    readonly index: number,
    readonly enclave: FakeEnclave,
    validators: string[],
    readonly byzantine: Byzantine | undefined,
    readonly crashed: boolean,
  ) {
    this.machine = new TendermintMachine({ chainId: CHAIN_ID, validators, self: enclave.signer.publicKey, height: 1, timeouts: SIM_TIMEOUTS });
  }

  /** Incremented by each crash: messages sent before it and still in flight are lost (unflushed buffers). */
  epoch = 0;

  /**
   * A crash: everything in memory but the committed chain, the enclave's safety state and the lock
   * record is gone, and so are its messages not yet delivered (kill -9 loses what was not flushed).
   */
  crash(): void {
    this.down = true;
    this.epoch++;
  }

  /**
   * A restart, as the node does it: a new machine at the next height, resuming in the enclave's
   * last signed round (signing that message again) with its lock (and the kept lock record's block and proof of lock).
   */
  restart(): void {
    this.down = false;
    this.restarts++;
    const height = this.committed.length + 1;
    const { lastSign, lock } = this.enclave.safety;
    let resume: ResumeState | undefined;
    if (lastSign && lastSign.height === height) {
      const step = signStepName(lastSign.step)!;
      resume = {
        round: lastSign.round,
        last: { step, blockHash: lastSign.value === 'nil' ? null : lastSign.value },
        // As the node keeps them: this height, the last signed round and the one before.
        votes: this.ownVotes.filter((v) => v.vote.height === height && v.vote.round >= lastSign.round - 1),
      };
      if (lock && lock.height === height) {
        const record = this.lockRecord;
        resume.lock =
          record && record.height === height && record.round === lock.round && headerHash(record.proposal.proposal.block.header) === lock.blockHash
            ? { round: lock.round, blockHash: lock.blockHash, proposal: record.proposal, prevotes: record.prevotes }
            : { round: lock.round, blockHash: lock.blockHash };
      }
    }
    this.machine = new TendermintMachine({
      chainId: CHAIN_ID,
      validators: this.sim.validators,
      self: this.enclave.signer.publicKey,
      height,
      timeouts: SIM_TIMEOUTS,
      ...(resume ? { resume } : {}),
    });
    this.input({ type: 'start' });
  }

  get id(): string {
    return this.enclave.signer.publicKey;
  }

  get honest(): boolean {
    return this.byzantine === undefined && !this.crashed;
  }

  input(input: BftInput): void {
    if (this.crashed || this.down) return;
    const queue: BftAction[] = [...this.machine.step(input)];
    while (queue.length > 0) {
      const a = queue.shift()!;
      queue.push(...this.#act(a));
    }
  }

  #act(a: BftAction): BftAction[] {
    const sim = this.sim;
    switch (a.type) {
      case 'buildProposal':
        // Building (executing) a block takes virtual time.
        sim.at(5, () => this.input({ type: 'proposalBuilt', height: a.height, round: a.round, block: this.#build(a.height, a.round, 'A') }));
        return [];
      case 'signProposal': {
        const signature = this.enclave.signProposal(a.proposal);
        return signature
          ? this.machine.step({ type: 'proposalSigned', proposal: a.proposal, signature })
          : this.machine.step({ type: 'signRefused', height: a.proposal.height, round: a.proposal.round });
      }
      case 'signVote': {
        const signature = this.enclave.signVote(a.vote, a.justification);
        if (signature) this.ownVotes.push({ vote: a.vote, validator: this.id, signature });
        return signature
          ? this.machine.step({ type: 'voteSigned', vote: a.vote, signature })
          : this.machine.step({ type: 'signRefused', height: a.vote.height, round: a.vote.round });
      }
      case 'lock':
        this.lockRecord = a;
        return [];
      case 'validateProposal': {
        const valid = this.enclave.validate(a.block, this.lastHash, this.committed.length + 1);
        sim.at(1 + Math.floor(sim.random() * 5), () => this.input({ type: 'proposalValidated', height: a.height, blockHash: a.blockHash, valid }));
        return [];
      }
      case 'scheduleTimeout':
        sim.at(a.durationMs, () => this.input({ type: 'timeout', kind: a.kind, height: a.height, round: a.round }));
        return [];
      case 'broadcastProposal':
        this.#broadcastProposal(a.proposal);
        return [];
      case 'broadcastVote':
        this.#broadcastVote(a.vote);
        return [];
      case 'commit':
        this.#commit(a.block, a.certificate);
        return [];
      case 'equivocation':
        this.evidence.push(a.evidence);
        return [];
    }
  }

  #build(height: number, round: number, variant: string): ProposalBlock {
    const txRoot = sha256Hex(`txs/${this.index}/${height}/${round}/${variant}`);
    const header: BlockHeader = {
      chainId: CHAIN_ID,
      height,
      parentHash: this.lastHash,
      time: height * 1000,
      proposer: this.id,
      txRoot,
      receiptsRoot: ZERO_HASH,
      stateRoot: this.byzantine === 'wrongStateRoot' ? sha256Hex(`wrong/${txRoot}`) : stateRootOf(this.lastHash, txRoot),
      validatorSetHash: ZERO_HASH,
      policyHash: ZERO_HASH,
    };
    return { header, txs: [] };
  }

  #commit(block: ProposalBlock, certificate: CommitCertificate): void {
    const hash = headerHash(block.header);
    if (block.header.height !== this.committed.length + 1) throw new Error(`node ${this.index}: commit out of order at ${block.header.height}`);
    if (block.header.parentHash !== this.lastHash) throw new Error(`node ${this.index}: commit does not extend its chain`);
    if (!this.sim.certificateValid(certificate)) {
      throw new Error(`node ${this.index}: invalid certificate at ${block.header.height}`);
    }
    this.committed.push(hash);
    this.blocks.push({ block, certificate });
    this.lastHash = hash;
    this.sim.recordCommit(this.index, block.header.height, hash);
  }

  #broadcastProposal(sp: SignedProposal): void {
    const sim = this.sim;
    const own = sp.proposer === this.id && sp.proposal.polRound === -1 && sp.proposal.height === this.committed.length + 1;
    if (this.byzantine === 'equivocatingProposer' && own) {
      // A different, equally valid block for every other peer, signed outside the enclave.
      const alt = { ...sp.proposal, block: this.#build(sp.proposal.height, sp.proposal.round, 'B') };
      const altSigned: SignedProposal = { proposal: alt, proposer: this.id, signature: this.enclave.signer.sign(proposalMessage(alt)) };
      sim.peersOf(this.index).forEach((to, k) => sim.send(this.index, to, { kind: 'proposal', proposal: k % 2 === 0 ? sp : altSigned }));
      return;
    }
    for (const to of sim.peersOf(this.index)) sim.send(this.index, to, { kind: 'proposal', proposal: sp });
  }

  #broadcastVote(sv: SignedVote): void {
    const sim = this.sim;
    if (this.byzantine === 'doubleVote' && sv.validator === this.id) {
      // A conflicting vote for the same (height, round, type), signed outside the enclave, to half the peers.
      const vote: Vote = { ...sv.vote, blockHash: sv.vote.blockHash === null ? sha256Hex(`fake/${sv.vote.round}`) : null };
      const other: SignedVote = { vote, validator: this.id, signature: this.enclave.signer.sign(voteMessage(vote)) };
      sim.peersOf(this.index).forEach((to, k) => sim.send(this.index, to, { kind: 'vote', vote: k % 2 === 0 ? sv : other }));
      return;
    }
    for (const to of sim.peersOf(this.index)) sim.send(this.index, to, { kind: 'vote', vote: sv });
  }

  receive(from: number, m: Message): void {
    if (this.crashed || this.down) return;
    switch (m.kind) {
      case 'proposal':
        this.input({ type: 'proposalReceived', proposal: m.proposal });
        return;
      case 'vote':
        this.input({ type: 'voteReceived', vote: m.vote });
        return;
      case 'status':
        // Block sync: a peer behind us gets the blocks (with certificates) it misses.
        if (m.height <= this.committed.length) {
          this.sim.send(this.index, from, { kind: 'sync', blocks: this.blocks.slice(m.height - 1, m.height + 19) });
        }
        return;
      case 'sync':
        for (const { block, certificate } of m.blocks) {
          if (block.header.height !== this.committed.length + 1) continue;
          if (!this.enclave.validate(block, this.lastHash, block.header.height)) continue;
          if (!this.sim.certificateValid(certificate)) continue;
          this.#commit(block, certificate);
          this.syncedBlocks++;
          this.input({ type: 'blockCommittedBySync', block, certificate });
        }
        return;
    }
  }
  syncedBlocks = 0;

  gossip(): void {
    if (this.crashed || this.down) return;
    this.input({ type: 'gossipTick' });
    for (const to of this.sim.peersOf(this.index)) this.sim.send(this.index, to, { kind: 'status', height: this.machine.snapshot.height });
  }
}

export class Simulator {
  now = 0;
  readonly random: () => number;
  readonly nodes: SimNode[];
  readonly validators: string[];
  readonly #queue = new EventQueue();
  #seq = 0;
  readonly #net: Required<Omit<NetworkOptions, 'connected'>> & Pick<NetworkOptions, 'connected'>;
  /** height → block hash committed by an honest node; a second different hash is a fork. */
  readonly #decided = new Map<number, string>();
  readonly forks: string[] = [];
  messages = 0;

  constructor(readonly opts: SimOptions) {
    this.random = prng(opts.seed);
    this.#net = { drop: 0, minDelayMs: 5, maxDelayMs: 40, ...opts.net };
    const enclaves = Array.from({ length: opts.n }, () => new FakeEnclave(() => this.validators));
    this.validators = enclaves.map((e) => e.signer.publicKey);
    const crashed = new Set(opts.crashed ?? []);
    this.nodes = enclaves.map((e, i) => new SimNode(this, i, e, this.validators, opts.byzantine?.[i], crashed.has(i)));
  }

  at(delayMs: number, run: () => void): void {
    this.#queue.push({ time: this.now + delayMs, seq: this.#seq++, run });
  }

  peersOf(i: number): number[] {
    return this.nodes.map((_, j) => j).filter((j) => j !== i);
  }

  send(from: number, to: number, m: Message): void {
    const net = this.#net;
    if (net.connected && !net.connected(from, to, this.now)) return;
    if (this.random() < net.drop) return;
    this.messages++;
    const delay = net.minDelayMs + this.random() * (net.maxDelayMs - net.minDelayMs);
    const epoch = this.nodes[from]!.epoch;
    this.at(delay, () => {
      if (net.connected && !net.connected(from, to, this.now)) return;
      if (this.nodes[from]!.epoch !== epoch) return;
      this.nodes[to]!.receive(from, m);
    });
  }

  readonly #verifiedCertificates = new Set<string>();
  /** verifyCertificate, memoised (signature checks dominate the simulation's run time). */
  certificateValid(certificate: CommitCertificate): boolean {
    const key = JSON.stringify(certificate);
    if (this.#verifiedCertificates.has(key)) return true;
    if (!verifyCertificate(CHAIN_ID, certificate, this.validators, quorumSize(this.validators.length))) return false;
    this.#verifiedCertificates.add(key);
    return true;
  }

  recordCommit(node: number, height: number, hash: string): void {
    if (!this.nodes[node]!.honest) return;
    const prev = this.#decided.get(height);
    if (prev === undefined) this.#decided.set(height, hash);
    else if (prev !== hash) this.forks.push(`height ${height}: ${prev} vs ${hash} (node ${node})`);
  }

  start(): void {
    const interval = this.opts.gossipIntervalMs ?? 150;
    for (const node of this.nodes) {
      this.at(0, () => node.input({ type: 'start' }));
      const tick = (): void => {
        node.gossip();
        this.at(interval, tick);
      };
      this.at(interval * (1 + this.random()), tick);
    }
  }

  /** Runs events until virtual time `untilMs`. */
  runUntil(untilMs: number): void {
    for (;;) {
      const e = this.#queue.pop();
      if (!e) break;
      if (e.time > untilMs) {
        this.#queue.push(e);
        break;
      }
      this.now = e.time;
      e.run();
    }
    this.now = untilMs;
  }

  honestNodes(): SimNode[] {
    return this.nodes.filter((n) => n.honest);
  }

  /** The lowest committed height among honest nodes. */
  minHonestHeight(): number {
    return Math.min(...this.honestNodes().map((n) => n.committed.length));
  }

  /** Safety: no fork among honest nodes, and every pair of honest chains agrees on its common prefix. */
  assertSafe(): void {
    if (this.forks.length > 0) throw new Error(`fork: ${this.forks[0]}`);
    const honest = this.honestNodes();
    for (const a of honest) {
      for (const b of honest) {
        const k = Math.min(a.committed.length, b.committed.length);
        for (let h = 0; h < k; h++) {
          if (a.committed[h] !== b.committed[h]) throw new Error(`nodes ${a.index} and ${b.index} differ at height ${h + 1}`);
        }
      }
    }
  }
}
