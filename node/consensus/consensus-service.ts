import {
  ChainError,
  TendermintMachine,
  evidenceKey,
  headerHash,
  portableEvidence,
  signStepName,
  txHash,
  txRootOf,
  type BftAction,
  type BftInput,
  type BlockHeader,
  type CommitCertificate,
  type EquivocationEvidence,
  type LastSign,
  type ProposalBlock,
  type ResumeState,
  type SignedTx,
  type ConsensusParams,
  type SignedVote,
  type SignerLock,
  type Vote,
} from '../../consensus/index.js';
import { CONSORTIUM_CONTRACT, type BlockResult, type ChainView } from '../../contracts/index.js';
import type { Clock } from '../chain/clock.js';
import type { Logger } from '../log/logger.js';
import type { LockRecord, OwnVotesRecord } from '../storage/chain-store.js';
import { DoubleSignGuard, type DoubleSignRisk, type SeenSignature } from './double-sign-guard.js';
import { checkConsensusMessage, compactProposal, encodeConsensusMessage, type CompactProposal, type ConsensusMessage } from './wire.js';
import type { ValidationOutcome } from '../network/index.js';

/** The mempool as consensus uses it. */
/** Proposals remembered as handed to consensus at one height (bounded against a flood of distinct ones). */
const MAX_PROPOSALS_FED = 1024;

export interface ConsensusMempool {
  readonly size: number;
  get(hash: string): SignedTx | undefined;
  take(maxTxs: number, maxBytes: number): SignedTx[];
  remove(hashes: Iterable<string>, refused?: Iterable<string>): void;
  whenNotEmpty(maxWaitMs?: number): Promise<void>;
  wakeAll(): void;
}

/** The chain as consensus uses it. */
export interface ConsensusChain {
  /** The last block committed in the enclave (the parent of the next block). */
  readonly tip: BlockHeader;
  readonly mempool: ConsensusMempool;
  commitExecuted(result: BlockResult, certificate: CommitCertificate, txs: SignedTx[]): Promise<void>;
  /** Keeps the transactions our enclave added to a block it proposed, so that peers can fetch them. */
  keepProposalTxs(txs: readonly SignedTx[]): void;
}

/** The enclave as consensus uses it: it executes, validates and signs. */
export interface ConsensusEnclave {
  proposeBlock(request: { time: number; txs: SignedTx[] }): Promise<BlockResult>;
  executeBlock(request: { header: BlockHeader; txs: SignedTx[] }): Promise<BlockResult>;
  signVote(vote: Vote, justification: SignedVote[]): Promise<{ signature: string }>;
  signProposal(proposal: { chainId: string; height: number; round: number; polRound: number; blockHash: string }): Promise<{ signature: string }>;
}

/** The gossip consensus uses. */
export interface ConsensusNetwork {
  setConsensusValidator(validator: (data: Uint8Array, from: string) => ValidationOutcome<unknown>): void;
  onConsensus(handler: (event: { data: Uint8Array; from: string }) => void): () => void;
  publishConsensus(data: Uint8Array): Promise<number>;
}

/** What consensus keeps on disk besides blocks. */
export interface ConsensusStore {
  putLock(record: LockRecord): Promise<void>;
  getLock(): Promise<LockRecord | undefined>;
  putOwnVotes(record: OwnVotesRecord): Promise<void>;
  getOwnVotes(): Promise<OwnVotesRecord | undefined>;
  putEvidence(key: string, evidence: EquivocationEvidence): Promise<boolean>;
  listEvidence(): Promise<EquivocationEvidence[]>;
}

export interface ConsensusServiceOptions {
  /** The chain view (validators, parameters) of the heights this node decides. */
  view: () => ChainView;
  /** This node's id (its libp2p peer id). */
  nodeId: string;
  chain: ConsensusChain;
  enclave: ConsensusEnclave;
  store: ConsensusStore;
  /** This node's enclave vote key. */
  selfKey: string;
  /** What the enclave's sealed safety state said at start: where this validator resumes. */
  signer: { lastSign: LastSign | null; lock: SignerLock | null };
  /** Absent on a single-validator chain that talks to no one. */
  network?: ConsensusNetwork;
  /** Is this vote key's enclave admitted (its evidence verified)? This node's own key always is. */
  admitted(voteKey: string): boolean;
  /** A validly signed message showed a peer ahead of us: fetch the blocks we miss. */
  onBehind(height: number, fromPeer: string): void;
  /**
   * No commit for a while: ask the peers how far they are (and sync if one is ahead). Messages
   * of the next height alone do not trigger sync (they are normal), so a node that missed the
   * last precommits of its height, while the others wait at the next for its vote, learns it here.
   */
  onStalled?(): void;
  /**
   * May this node sign yet? (With peers: enough of them admitted and heard
   * from for a quorum, and block sync caught up with them, so that signatures
   * of our key in their blocks and messages have been seen.)
   */
  readyToSign?(): boolean;
  /** Asks a peer for transactions by hash (a proposal named some this node does not hold); null where it has none. */
  fetchTxs?(peer: string, hashes: string[]): Promise<(SignedTx | null)[]>;
  /**
   * How long to watch gossip for signatures of our own key before signing anything (default 1.5 s: a live
   * validator signs at every height, and an idle chain still makes a block every 500 ms).
   */
  doubleSignCheckMs?: number;
  clock: Clock;
  log: Logger;
  onFatal(err: Error): void;
}

/**
 * Without progress for this long, re-gossip our round's messages (peers may
 * have missed them). Not shorter: the proposal carries its whole block, and
 * re-sending it often under load costs the CPU the round needs.
 */
const STALL_GOSSIP_MS = 2000;

/** How often a height without a commit is reported in the log (and not before it has lasted this long). */
const STALL_REPORT_MS = 10_000;

/**
 * A proposal whose block time is further ahead of this node's clock than this
 * gets no vote: block time is what contracts see as "now", and one proposer
 * must not move it far into the future.
 */
const MAX_CLOCK_AHEAD_MS = 10_000;

/**
 * Drives the pure Tendermint machine (consensus/bft): feeds it inputs from the
 * network, the enclave and timers, and carries out its actions. The machine
 * never waits; every action that needs I/O (the enclave builds, executes or
 * signs; the network gossips; a timer fires) answers later as a new input.
 *
 * Execute before vote: a proposal is re-executed in this node's enclave, which
 * signs a vote for a block only when its own roots match (and only under its
 * safety rules), and the decided block is committed from this node's own
 * execution result.
 *
 * Restarts: the machine resumes in the round of the enclave's last signature
 * (signing that message again), with the enclave's lock and (kept in the store before each precommit)
 * the locked block and its proof of lock. Before its first signature the node
 * catches up with a quorum of peers (the certificates it syncs move the
 * enclave's record past any signature of its key they hold) and watches
 * gossip for live signatures of its key it did not make (DoubleSignGuard).
 */
export class ConsensusService {
  readonly #o: ConsensusServiceOptions;
  readonly #self: string;
  readonly #selfNodeId: string;
  readonly #guard: DoubleSignGuard;
  #machine: TendermintMachine | undefined;
  /** What this node's enclave built or re-executed, by block hash (current height only). */
  #executed = new Map<string, { result: BlockResult; txs: SignedTx[] }>();
  #timers = new Set<NodeJS.Timeout>();
  /** Waits in progress (#delay): stopping ends them, so nothing awaits a timer that will never fire. */
  #waits = new Set<() => void>();
  #stallTimer: NodeJS.Timeout | undefined;
  #seq = 0;
  #running = false;
  #unsubscribe: (() => void) | undefined;
  #lastCommitAt = 0;
  #lastStallReport = 0;
  /** Messages the gossip validator parsed, so delivery does not parse them again. */
  #parsed = new WeakMap<Uint8Array, ConsensusMessage>();
  /** Transaction hashes of recent blocks (built, validated or received), for gossiping their proposals compactly. */
  #txHashesOf = new Map<string, string[]>();
  /** Proposal blocks received for the next height, by hash: a resumed vote's block is executed from here before it is signed again. */
  readonly #proposalBlocks = new Map<string, { height: number; block: ProposalBlock }>();
  /** Proposals (height/round/signature) already rebuilt and handed to consensus at this height: relayed copies are dropped. */
  readonly #proposalsFed = new Set<string>();
  /**
   * A resumed vote the enclave signs again only once it executed the block
   * itself (it restarted since it signed it), waiting for that block to arrive.
   */
  #awaitingBlock: { vote: Vote; justification: SignedVote[]; timer: ReturnType<typeof setTimeout>; refusal: unknown } | undefined;
  /** The lock record being written: a precommit is signed only once it is durable. */
  #lockWrite: Promise<void> = Promise.resolve();
  /** Our signed votes at the height being decided, kept on disk before each is sent (OwnVotesRecord). */
  #ownVotes: SignedVote[] = [];
  #ownVotesWrite: Promise<void> = Promise.resolve();
  #riskReported = false;
  readonly #evidence = new Map<string, EquivocationEvidence>();

  constructor(options: ConsensusServiceOptions) {
    this.#o = options;
    this.#self = options.selfKey;
    this.#selfNodeId = options.nodeId;
    this.#guard = new DoubleSignGuard(options.signer.lastSign);
  }

  /**
   * Starts: looks for its own key's signatures in the last stored certificates
   * and (with peers) in gossip for a while, waits until it is caught up, then
   * starts the machine where the enclave's safety state says to resume.
   */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#lastCommitAt = this.#o.clock.now();
    for (const e of await this.#o.store.listEvidence()) this.#evidence.set(evidenceKey(e), e);
    const network = this.#o.network;
    if (network) {
      network.setConsensusValidator((data, from) => this.#check(data, from));
      this.#unsubscribe = network.onConsensus(({ data, from }) => this.#onGossip(data, from));
    }
    if (network) await this.#watchBeforeSigning();
    if (!this.#running) return;
    this.#guard.arm(this.#o.chain.tip.height);
    this.#machine = await this.#newMachine();
    this.#feed({ type: 'start' });
    this.#armStallGossip();
    if (this.#guard.risk) this.#reportRisk(this.#guard.risk);
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const wake of [...this.#waits]) wake();
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#o.chain.mempool.wakeAll();
  }

  /** Height, round and step, for status (the next height at round 0 until the machine starts). */
  get snapshot(): { height: number; round: number; step: string } {
    const s = this.#machine?.snapshot;
    return s ? { height: s.height, round: s.round, step: s.step } : { height: this.#o.chain.tip.height + 1, round: 0, step: 'starting' };
  }

  /** Set when another copy of this node's vote key was seen signing: this node then signs nothing. */
  get doubleSignRisk(): DoubleSignRisk | null {
    return this.#guard.risk;
  }

  /** Equivocation evidence this node holds (seen itself, received by gossip, or kept from before). */
  evidence(): EquivocationEvidence[] {
    return [...this.#evidence.values()];
  }

  /** The chain view changed (governance): the machine takes the consensus parameters' timeouts from now on. */
  viewChanged(): void {
    this.#machine?.setTimeouts(timeoutsOf(this.#o.view().consensus));
  }

  /**
   * Whose consensus messages count: the validators of the heights this node
   * decides, the current one and (around a change by governance) the next.
   */
  #validatorKeys(): Set<string> {
    const view = this.#o.view().validatorKeys;
    const machine = this.#machine?.validators ?? view;
    if (this.#keysOf?.view !== view || this.#keysOf.machine !== machine) this.#keysOf = { view, machine, keys: new Set([...view, ...machine]) };
    return this.#keysOf.keys;
  }
  #keysOf: { view: readonly string[]; machine: readonly string[]; keys: Set<string> } | undefined;

  /** Gossips every piece of evidence again (e.g. to a peer that just joined). */
  regossipEvidence(): void {
    for (const e of this.#evidence.values()) this.#publish({ type: 'evidence', chainId: this.#o.view().chainId, seq: this.#seq++, evidence: e });
  }

  /** Block sync committed a certified block (already executed and committed in the enclave). */
  syncedBlock(block: ProposalBlock, certificate: CommitCertificate): void {
    this.#executed.clear();
    this.#forgetProposalsUpTo(block.header.height);
    this.#lastCommitAt = this.#o.clock.now();
    // Committed by now, so the view is the next height's (its validators, when the block changed them).
    this.#feed({ type: 'blockCommittedBySync', block, certificate, nextValidators: this.#o.view().validatorKeys });
  }

  // ------------------------------------------------------------ start-up

  async #newMachine(): Promise<TendermintMachine> {
    const { chain } = this.#o;
    const view = this.#o.view();
    const height = chain.tip.height + 1;
    const resume = await this.#resumeState(height);
    if (resume) this.#o.log.info('resuming consensus after the enclave\'s last signature', { height, round: resume.round, locked: resume.lock?.blockHash ?? null });
    return new TendermintMachine({
      chainId: view.chainId,
      validators: view.validatorKeys,
      self: this.#self,
      height,
      timeouts: timeoutsOf(view.consensus),
      ...(resume ? { resume } : {}),
    });
  }

  /**
   * Where to pick `height` up: in the round of the enclave's last signature
   * there, with our votes of the height the store kept, and the enclave's lock
   * (and the locked block and proof of lock when the store kept them).
   */
  async #resumeState(height: number): Promise<ResumeState | undefined> {
    const { lastSign, lock } = this.#o.signer;
    if (!lastSign || lastSign.height !== height) return undefined;
    const step = signStepName(lastSign.step);
    if (!step) return undefined;
    const resume: ResumeState = { round: lastSign.round, last: { step, blockHash: lastSign.value === 'nil' ? null : lastSign.value } };
    const kept = await this.#o.store.getOwnVotes().catch(() => undefined);
    if (kept?.height === height && Array.isArray(kept.votes)) {
      // The machine checks each (shape, our key, signature): the store is only the host's.
      resume.votes = kept.votes.filter((v) => v?.validator === this.#self && v.vote?.height === height);
      this.#ownVotes = [...resume.votes];
    }
    if (lock && lock.height === height) {
      const record = await this.#o.store.getLock().catch(() => undefined);
      let proposal: LockRecord['proposal'] | undefined;
      try {
        if (record && record.height === height && record.round === lock.round && headerHash(record.proposal.proposal.block.header) === lock.blockHash) {
          proposal = record.proposal;
        }
      } catch {
        proposal = undefined;
      }
      resume.lock = proposal
        ? { round: lock.round, blockHash: lock.blockHash, proposal, prevotes: record!.prevotes }
        : { round: lock.round, blockHash: lock.blockHash };
      if (proposal) {
        this.#rememberHashes(lock.blockHash, proposal.proposal.block.txs.map(txHash));
        this.#keepSystemTxs(proposal.proposal.block.txs);
      }
    }
    return resume;
  }

  /**
   * Before the first signature: waits until a quorum of peers is admitted and
   * heard from and block sync caught up with them (their certificates are then
   * checked), and watches their gossip for a while, for signatures of our own
   * key that this node did not make.
   */
  async #watchBeforeSigning(): Promise<void> {
    const ms = this.#o.doubleSignCheckMs ?? 1500;
    let waited = false;
    while (this.#running && this.#o.readyToSign && !this.#o.readyToSign()) {
      if (!waited) this.#o.log.info('waiting for peers before signing (double-sign check)');
      waited = true;
      await this.#delay(250);
    }
    if (ms > 0 && this.#running) {
      this.#o.log.info('watching for signatures of this node\'s vote key before signing', { ms });
      await this.#delay(ms);
    }
  }

  // ------------------------------------------------------------ gossip in

  #check(data: Uint8Array, from: string): ValidationOutcome<unknown> {
    const view = this.#o.view();
    const outcome = checkConsensusMessage(data, from, {
      chainId: view.chainId,
      validators: this.#validatorKeys(),
      admitted: (key) => key === this.#self || this.#o.admitted(key),
      height: this.#machine?.snapshot.height ?? this.#o.chain.tip.height + 1,
      maxBlockTxs: view.consensus.maxBlockTxs,
      onAhead: (height, peer) => this.#o.onBehind(height - 1, peer),
    });
    const m = outcome.value;
    if (!m) return outcome;
    this.#parsed.set(data, m);
    if (m.type === 'vote' && m.vote.validator === this.#self) {
      const v = m.vote.vote;
      this.#observe({ height: v.height, round: v.round, step: v.type, value: v.blockHash ?? 'nil' }, `gossip relayed by ${from}`);
    } else if (m.type === 'proposal' && m.proposal.proposer === this.#self) {
      const p = m.proposal.proposal;
      this.#observe({ height: p.height, round: p.round, step: 'proposal', value: headerHash(p.block.header) }, `gossip relayed by ${from}`);
    }
    return outcome;
  }

  #onGossip(data: Uint8Array, from: string): void {
    // Already checked by the validator (shape, validator, admission, signature).
    const m = this.#parsed.get(data);
    if (!m) return;
    this.#parsed.delete(data);
    if (m.type === 'evidence') void this.#keepEvidence(m.evidence, false);
    else if (m.type === 'vote') this.#feed({ type: 'voteReceived', vote: m.vote });
    else void this.#receiveProposal(m.proposal, from);
  }

  /**
   * Rebuilds a compact proposal's block from the mempool, fetching the
   * transactions this node lacks from the peer that relayed it (it had them,
   * or it could not have validated the proposal), then hands it to consensus.
   */
  async #receiveProposal(cp: CompactProposal, from: string): Promise<void> {
    const { header, txHashes } = cp.proposal.block;
    // Every peer relays the same proposal: once it was rebuilt and handed to consensus, the copies are dropped
    // before the costly checks (the txRoot of thousands of hashes, the rebuild).
    const seenKey = `${cp.proposal.height}/${cp.proposal.round}/${cp.signature}`;
    if (this.#proposalsFed.has(seenKey)) return;
    // The signature covers the header; a hash list its txRoot does not commit to can never be valid.
    if (txRootOf(txHashes) !== header.txRoot) {
      this.#o.log.warn('proposal whose transaction list does not match its header', { peer: from, height: cp.proposal.height });
      return;
    }
    // Cheapest first: a proposal for a height already committed (gossip re-sends them) is of no use, and
    // rebuilding it would fetch its transactions again from a peer (they left the mempool with the commit).
    if (cp.proposal.height <= this.#o.chain.tip.height) return;
    const mempool = this.#o.chain.mempool;
    const received = this.#o.clock.now();
    // The same block relayed again by another peer: rebuilt once already.
    const known = this.#proposalBlocks.get(headerHash(header))?.block.txs;
    const txs: (SignedTx | undefined)[] = known ? [...known] : txHashes.map((h) => mempool.get(h));
    const missing = txHashes.filter((_, i) => txs[i] === undefined);
    this.#o.log.debug('proposal received', { height: cp.proposal.height, round: cp.proposal.round, from, txs: txHashes.length, missing: missing.length });
    if (missing.length > 0) {
      // The relaying peer may have forwarded the proposal without holding every
      // transaction itself: then ask the proposer's node, then the others.
      const validators = this.#o.view().validators;
      const proposerNode = validators.find((v) => v.voteKey === cp.proposer)?.nodeId;
      const others = validators.map((v) => v.nodeId).filter((id) => id !== this.#selfNodeId);
      const peers = [...new Set([from, ...(proposerNode ? [proposerNode] : []), ...others])].filter((id) => id !== this.#selfNodeId);
      for (const peer of peers) {
        const lacking = txHashes.filter((_, i) => txs[i] === undefined);
        if (lacking.length === 0) break;
        let fetched: (SignedTx | null)[] = [];
        try {
          fetched = (await this.#o.fetchTxs?.(peer, lacking)) ?? [];
        } catch (err) {
          this.#o.log.debug('could not fetch a proposal\'s transactions', { peer, missing: lacking.length, error: (err as Error).message });
        }
        const found = new Map<string, SignedTx>();
        fetched.forEach((tx, i) => {
          if (tx && i < lacking.length && safeTxHash(tx) === lacking[i]) found.set(lacking[i]!, tx);
        });
        for (let i = 0; i < txs.length; i++) txs[i] ??= found.get(txHashes[i]!);
      }
      if (txs.some((tx) => tx === undefined)) {
        this.#o.log.debug('proposal transactions unavailable', { peer: from, height: cp.proposal.height, missing: txs.filter((tx) => !tx).length });
        return;
      }
      this.#o.log.debug('proposal transactions fetched', { height: cp.proposal.height, fetched: missing.length, ms: this.#o.clock.now() - received });
    }
    const blockHash = headerHash(header);
    this.#rememberHashes(blockHash, txHashes);
    this.#keepProposalBlock(cp.proposal.height, blockHash, { header, txs: txs as SignedTx[] });
    const { block: _compact, ...rest } = cp.proposal;
    // Only a proposal consensus certainly keeps (of its height, a round it has reached) is marked: one for a
    // round still far ahead may be dropped by it, and must be taken again when gossip brings it back.
    const at = this.#machine?.snapshot;
    if (at && at.height === cp.proposal.height && cp.proposal.round <= at.round) {
      if (this.#proposalsFed.size >= MAX_PROPOSALS_FED) this.#proposalsFed.clear();
      this.#proposalsFed.add(seenKey);
    }
    this.#feed({
      type: 'proposalReceived',
      proposal: { proposal: { ...rest, block: { header, txs: txs as SignedTx[] } }, proposer: cp.proposer, signature: cp.signature },
    });
  }

  /**
   * The system transactions of a proposal this node holds (a proposer's enclave put them there: a
   * secret commitment, an attestation; they are in no mempool). Kept so that this node can serve
   * them to peers rebuilding the block when another validator proposes it again in a later round,
   * after its proposer restarted and forgot them.
   */
  #keepSystemTxs(txs: readonly SignedTx[]): void {
    const system = txs.filter((tx) => tx.contract === CONSORTIUM_CONTRACT);
    if (system.length > 0) this.#o.chain.keepProposalTxs(system);
  }

  #keepProposalBlock(height: number, blockHash: string, block: ProposalBlock): void {
    if (height !== this.#o.chain.tip.height + 1) return;
    this.#keepSystemTxs(block.txs);
    for (const [hash, kept] of this.#proposalBlocks) if (kept.height !== height) this.#proposalBlocks.delete(hash);
    // A few rounds' proposals at most; a flood of distinct ones keeps the newest.
    if (this.#proposalBlocks.size >= 16) this.#proposalBlocks.delete(this.#proposalBlocks.keys().next().value!);
    this.#proposalBlocks.set(blockHash, { height, block });
    const awaiting = this.#awaitingBlock;
    if (awaiting && awaiting.vote.blockHash === blockHash && awaiting.vote.height === height) {
      clearTimeout(awaiting.timer);
      this.#awaitingBlock = undefined;
      void this.#signVote(awaiting.vote, awaiting.justification);
    }
  }

  /** A height was committed: its proposals and any vote waiting for one of them are done with. */
  #forgetProposalsUpTo(height: number): void {
    this.#proposalBlocks.clear();
    this.#proposalsFed.clear();
    if (this.#awaitingBlock && this.#awaitingBlock.vote.height <= height) {
      clearTimeout(this.#awaitingBlock.timer);
      this.#awaitingBlock = undefined;
    }
  }

  #rememberHashes(blockHash: string, txHashes: string[]): void {
    this.#txHashesOf.set(blockHash, txHashes);
    // A few heights' worth of proposals (several per round at most) is plenty for re-gossip.
    while (this.#txHashesOf.size > 64) this.#txHashesOf.delete(this.#txHashesOf.keys().next().value!);
  }

  // ------------------------------------------------------------ the machine

  #feed(input: BftInput): void {
    const machine = this.#machine;
    if (!this.#running || !machine) return;
    const before = machine.snapshot;
    let actions: BftAction[];
    try {
      actions = machine.step(input);
    } catch (err) {
      this.#o.onFatal(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const after = machine.snapshot;
    if (after.height !== before.height || after.round !== before.round) {
      this.#o.log.debug('consensus round', { height: after.height, round: after.round, step: after.step, input: input.type });
    }
    for (const action of actions) this.#do(action);
  }

  #do(action: BftAction): void {
    switch (action.type) {
      case 'buildProposal':
        void this.#build(action.height, action.round);
        break;
      case 'signProposal':
        void this.#signProposal(action.proposal);
        break;
      case 'broadcastProposal': {
        const { block } = action.proposal.proposal;
        const hashes = this.#txHashesOf.get(headerHash(block.header)) ?? block.txs.map(txHash);
        this.#publish({ type: 'proposal', chainId: this.#o.view().chainId, seq: this.#seq++, proposal: compactProposal(action.proposal, hashes) });
        break;
      }
      case 'validateProposal':
        void this.#validate(action.height, action.blockHash, action.block);
        break;
      case 'lock': {
        const record: LockRecord = { height: action.height, round: action.round, proposal: action.proposal, prevotes: action.prevotes };
        this.#lockWrite = this.#lockWrite
          .then(() => this.#o.store.putLock(record))
          .catch((err: unknown) => this.#o.log.error('could not keep the lock record', { height: action.height, error: (err as Error).message }));
        break;
      }
      case 'signVote':
        void this.#signVote(action.vote, action.justification ?? []);
        break;
      case 'broadcastVote':
        this.#publish({ type: 'vote', chainId: this.#o.view().chainId, seq: this.#seq++, vote: action.vote });
        break;
      case 'scheduleTimeout': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#feed({ type: 'timeout', kind: action.kind, height: action.height, round: action.round });
        }, action.durationMs);
        this.#timers.add(timer);
        break;
      }
      case 'commit':
        this.#commit(action.height, action.block, action.certificate);
        break;
      case 'equivocation':
        void this.#keepEvidence(portableEvidence(action.evidence), true);
        break;
    }
  }

  async #signVote(vote: Vote, justification: SignedVote[], executedForIt = false): Promise<void> {
    if (this.#refuseWhenAtRisk(vote.height, vote.round)) return;
    // A precommit locks: its lock record must be durable first.
    if (vote.type === 'precommit') await this.#lockWrite;
    try {
      const { signature } = await this.#o.enclave.signVote(vote, justification);
      this.#guard.signedByUs({ height: vote.height, round: vote.round, step: vote.type, value: vote.blockHash ?? 'nil' });
      await this.#keepOwnVote({ vote, validator: this.#self, signature });
      this.#feed({ type: 'voteSigned', vote, signature });
    } catch (err) {
      const notExecuted = err instanceof ChainError && err.code === 'BLOCK_NOT_VALIDATED' && vote.blockHash !== null;
      if (notExecuted && !executedForIt && (await this.#executeThenSign(vote, justification, err))) return;
      this.#refused(vote.type, vote.height, vote.round, err);
    }
  }

  /**
   * The vote a restarted validator signs again (its enclave's last signature,
   * made before the crash) names a block this enclave has not executed since
   * it started, so the enclave refuses it; and it may sign nothing else in that
   * step. Refusing would leave the others one vote short in that round for
   * good (seen as a stall with two of four down and one back), so the block is
   * executed first, from the proposal the peers gossip again, and the vote
   * signed then. False when that cannot be done (the caller refuses).
   */
  async #executeThenSign(vote: Vote, justification: SignedVote[], refusal: unknown): Promise<boolean> {
    if (vote.height !== this.#o.chain.tip.height + 1) return false;
    const kept = this.#proposalBlocks.get(vote.blockHash!);
    if (!kept) {
      // Wait for the proposal (peers gossip it again), as long as a proposal would be waited for; then refuse as before.
      if (this.#awaitingBlock) {
        clearTimeout(this.#awaitingBlock.timer);
        this.#refused(this.#awaitingBlock.vote.type, this.#awaitingBlock.vote.height, this.#awaitingBlock.vote.round, this.#awaitingBlock.refusal);
      }
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (this.#awaitingBlock?.timer !== timer) return;
        this.#awaitingBlock = undefined;
        this.#refused(vote.type, vote.height, vote.round, refusal);
      }, this.#o.view().consensus.timeoutProposeMs);
      this.#timers.add(timer);
      this.#awaitingBlock = { vote, justification, timer, refusal };
      this.#o.log.info('signing our last vote again once its block is executed here', { height: vote.height, round: vote.round, step: vote.type });
      return true;
    }
    let executed = this.#executed.has(vote.blockHash!);
    if (!executed) {
      try {
        executed = await this.#execute(vote.height, vote.blockHash!, kept.block);
      } catch (err) {
        this.#o.log.warn('could not execute the block of our last vote', { height: vote.height, error: (err as Error).message });
        return false;
      }
    }
    if (!executed) return false;
    await this.#signVote(vote, justification, true);
    return true;
  }

  /**
   * Keeps our vote on disk before it is sent: after a crash it is sent again
   * (ResumeState.votes). Failing to keep it costs only that, so it goes out anyway.
   * Votes of this round and the one before are kept (what the gossip tick sends
   * again too): a validator further back joins us by the round skip.
   */
  async #keepOwnVote(sv: SignedVote): Promise<void> {
    const { height, round, type } = sv.vote;
    this.#ownVotes = this.#ownVotes.filter(
      (v) => v.vote.height === height && v.vote.round >= round - 1 && !(v.vote.round === round && v.vote.type === type),
    );
    this.#ownVotes.push(sv);
    const record: OwnVotesRecord = { height, votes: [...this.#ownVotes] };
    this.#ownVotesWrite = this.#ownVotesWrite
      .then(() => this.#o.store.putOwnVotes(record))
      .catch((err: unknown) => this.#o.log.error('could not keep our vote', { height, round, error: (err as Error).message }));
    await this.#ownVotesWrite;
  }

  async #signProposal(proposal: Extract<BftAction, { type: 'signProposal' }>['proposal']): Promise<void> {
    const { chainId, height, round, polRound } = proposal;
    if (this.#refuseWhenAtRisk(height, round)) return;
    const blockHash = headerHash(proposal.block.header);
    try {
      // A re-proposed block (the valid value, possibly resumed after a restart) must be executed here first:
      // the enclave signs only for blocks it executed itself.
      if (!this.#executed.has(blockHash)) await this.#execute(height, blockHash, proposal.block);
      const { signature } = await this.#o.enclave.signProposal({ chainId, height, round, polRound, blockHash });
      this.#guard.signedByUs({ height, round, step: 'proposal', value: blockHash });
      this.#feed({ type: 'proposalSigned', proposal, signature });
    } catch (err) {
      this.#refused('proposal', height, round, err);
    }
  }

  /** With a double-sign risk, nothing is signed: the machine is told, and moves on without us. */
  #refuseWhenAtRisk(height: number, round: number): boolean {
    const risk = this.#guard.risk;
    if (!risk) return false;
    this.#reportRisk(risk);
    this.#feed({ type: 'signRefused', height, round });
    return true;
  }

  #reportRisk(risk: DoubleSignRisk): void {
    if (this.#riskReported) return;
    this.#riskReported = true;
    this.#o.log.error('refusing to sign', { reason: risk.message });
  }

  #observe(slot: SeenSignature, source: string): void {
    const before = this.#guard.risk;
    this.#guard.observe(slot, source, this.#o.chain.tip.height);
    if (this.#guard.risk && !before) this.#reportRisk(this.#guard.risk);
  }

  /**
   * The enclave refused to sign (it signed a later slot before a restart, the
   * vote was not justified, its sealed record could not be written): this
   * node sits the round out and moves on, instead of waiting for votes that
   * may never come. A dead enclave stops the node.
   */
  #refused(what: string, height: number, round: number, err: unknown): void {
    const code = err instanceof ChainError ? err.code : 'ENCLAVE_INTERNAL';
    if (code === 'ENCLAVE_UNAVAILABLE') {
      if (this.#running) this.#o.onFatal(err as Error);
      return;
    }
    // A refusal for a height block sync has already committed is expected and harmless.
    const level = height <= this.#o.chain.tip.height ? 'debug' : 'warn';
    this.#o.log[level]('enclave refused to sign', { what, height, round, code, error: (err as Error).message });
    this.#feed({ type: 'signRefused', height, round });
  }

  /** Keeps evidence durably (once per validator and slot), gossips what is new, and logs it. */
  async #keepEvidence(evidence: EquivocationEvidence, seenHere: boolean): Promise<void> {
    const key = evidenceKey(evidence);
    if (this.#evidence.has(key)) return;
    this.#evidence.set(key, evidence);
    try {
      await this.#o.store.putEvidence(key, evidence);
    } catch (err) {
      this.#o.log.error('could not keep equivocation evidence', { error: (err as Error).message });
    }
    this.#o.log.warn('equivocation', { validator: evidence.validator, kind: evidence.kind, height: evidence.height, round: evidence.round, seenHere });
    this.#publish({ type: 'evidence', chainId: this.#o.view().chainId, seq: this.#seq++, evidence });
  }

  #publish(message: ConsensusMessage): void {
    const network = this.#o.network;
    if (!network || this.#validatorKeys().size === 1) return;
    network.publishConsensus(encodeConsensusMessage(message)).catch((err: unknown) => {
      this.#o.log.debug('consensus gossip not sent', { type: message.type, error: (err as Error).message });
    });
  }

  /**
   * Builds our proposal: waits for transactions (or, idle, for the heartbeat
   * interval), lets a non-full block fill for blockIntervalMs, then has the
   * enclave execute it.
   */
  async #build(height: number, round: number): Promise<void> {
    const { chain, clock } = this.#o;
    const view = this.#o.view();
    const params = view.consensus;
    const mempool = chain.mempool;
    const still = (): boolean => {
      const s = this.#machine?.snapshot;
      return this.#running && s !== undefined && s.height === height && s.round === round;
    };
    if (mempool.size === 0) {
      const idleFor = Math.max(0, this.#lastCommitAt + params.emptyBlockIntervalMs - clock.now());
      await mempool.whenNotEmpty(idleFor);
    }
    if (!still()) return;
    if (mempool.size > 0 && mempool.size < params.maxBlockTxs) await this.#delay(params.blockIntervalMs);
    if (!still()) return;
    const txs = mempool.take(params.maxBlockTxs, params.maxBlockBytes);
    const parent = chain.tip;
    const building = clock.now();
    let result: BlockResult;
    try {
      result = await this.#o.enclave.proposeBlock({ time: Math.max(clock.now(), parent.time), txs });
    } catch (err) {
      const code = err instanceof ChainError ? err.code : 'ENCLAVE_INTERNAL';
      if (code === 'ENCLAVE_UNAVAILABLE' && this.#running) this.#o.onFatal(err as Error);
      else this.#o.log.warn('enclave could not build a block', { height, code, error: (err as Error).message });
      return;
    }
    // The enclave may put a system transaction of its own first (the consortium secret's commitment).
    const blockTxs = [...result.added, ...result.included.map((i) => txs[i]!)];
    if (result.added.length > 0) this.#o.chain.keepProposalTxs(result.added);
    // Left out for now, not refused: the block was full, or this enclave does not hold the secret to open them yet.
    const refused = result.excluded.filter((e) => e.code !== 'BLOCK_FULL' && e.code !== 'SECRET_UNAVAILABLE').map((e) => e.txHash);
    // Transactions the enclave refused can never be included as they are.
    if (refused.length > 0) {
      mempool.remove([], refused);
      this.#o.log.warn('enclave left transactions out', { count: refused.length, first: result.excluded[0]?.code });
    }
    if (result.header.height !== height) return;
    this.#executed.set(result.blockHash, { result, txs: blockTxs });
    this.#rememberHashes(result.blockHash, result.txHashes);
    this.#o.log.debug('proposal built', { height, round, txs: blockTxs.length, ms: clock.now() - building });
    this.#feed({ type: 'proposalBuilt', height, round, block: { header: result.header, txs: blockTxs }, ...nextValidatorsOf(result) });
  }

  /** Has our enclave execute a block; true when it reproduced the block's hash (every root matches). */
  async #execute(height: number, blockHash: string, block: ProposalBlock): Promise<boolean> {
    if (this.#o.chain.tip.height + 1 !== height) return false;
    const result = await this.#o.enclave.executeBlock({ header: block.header, txs: block.txs });
    if (result.blockHash !== blockHash) return false;
    this.#executed.set(blockHash, { result, txs: block.txs });
    return true;
  }

  /** Re-executes a proposed block in our enclave; valid only if every root matches. */
  async #validate(height: number, blockHash: string, block: ProposalBlock): Promise<void> {
    let valid = false;
    const started = this.#o.clock.now();
    try {
      if (block.header.time > this.#o.clock.now() + MAX_CLOCK_AHEAD_MS) {
        this.#o.log.warn('proposal from the future', { height, block: blockHash, time: block.header.time });
      } else {
        valid = await this.#execute(height, blockHash, block);
      }
    } catch (err) {
      const code = err instanceof ChainError ? err.code : 'ENCLAVE_INTERNAL';
      if (code === 'ENCLAVE_UNAVAILABLE') {
        if (this.#running) this.#o.onFatal(err as Error);
        return;
      }
      this.#o.log.warn('proposal failed re-execution', { height, block: blockHash, code, error: (err as Error).message });
    }
    // The round timeline (debug): how long re-execution took, against the propose timeout.
    this.#o.log.debug('proposal executed', { height, block: blockHash.slice(0, 12), txs: block.txs.length, valid, ms: this.#o.clock.now() - started });
    const executed = this.#executed.get(blockHash)?.result;
    this.#feed({ type: 'proposalValidated', height, blockHash, valid, ...(valid && executed ? nextValidatorsOf(executed) : {}) });
  }

  #commit(height: number, block: ProposalBlock, certificate: CommitCertificate): void {
    const { chain, log } = this.#o;
    this.#guard.prune(height - 1);
    if (chain.tip.height >= height) return; // block sync got there first
    const executed = this.#executed.get(certificate.blockHash);
    if (!executed) {
      this.#o.onFatal(new ChainError('BLOCK_NOT_VALIDATED', `decided block ${certificate.blockHash} at height ${height} was not executed here`));
      return;
    }
    this.#executed.clear();
    this.#forgetProposalsUpTo(height);
    this.#lastCommitAt = this.#o.clock.now();
    this.#armStallGossip();
    chain.commitExecuted(executed.result, certificate, executed.txs).then(
      () => log.debug('committed', { height, round: certificate.round, txs: block.txs.length }),
      () => {}, // commitExecuted reports write failures as fatal itself
    );
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        this.#waits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#timers.add(timer);
      this.#waits.add(wake);
    });
  }

  /** Re-gossip when a height takes long (lost messages, a peer that reconnected). */
  #armStallGossip(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    if (!this.#running || !this.#o.network) return;
    this.#stallTimer = setTimeout(() => {
      this.#reportStall();
      this.#o.onStalled?.();
      this.#feed({ type: 'gossipTick' });
      this.#armStallGossip();
    }, STALL_GOSSIP_MS);
  }

  /**
   * A height that takes long says why, every STALL_REPORT_MS: where the machine
   * is and what it holds for the last rounds (who sent what), so an operator
   * can tell a missing quorum from missing messages.
   */
  #reportStall(): void {
    const machine = this.#machine;
    const now = this.#o.clock.now();
    if (!machine || now - this.#lastCommitAt < STALL_REPORT_MS || now - this.#lastStallReport < STALL_REPORT_MS) return;
    this.#lastStallReport = now;
    const s = machine.snapshot;
    this.#o.log.info('no commit yet at this height', {
      height: s.height,
      round: s.round,
      step: s.step,
      seconds: Math.round((now - this.#lastCommitAt) / 1000),
      locked: s.lockedValue === null ? null : { round: s.lockedRound, block: s.lockedValue.slice(0, 12) },
      valid: s.validValue === null ? null : { round: s.validRound, block: s.validValue.slice(0, 12) },
      rounds: machine.rounds().slice(-4),
    });
  }
}

/** A transaction's hash, or null when it cannot be encoded (a peer sent junk). */
function safeTxHash(tx: SignedTx): string | null {
  try {
    return txHash(tx);
  } catch {
    return null;
  }
}

/** The machine's timeouts from the consensus parameters: each later round waits half as long again. */
function timeoutsOf(params: ConsensusParams): Record<'propose' | 'prevote' | 'precommit', { baseMs: number; incrementMs: number }> {
  const { timeoutProposeMs: propose, timeoutVoteMs: vote } = params;
  return {
    propose: { baseMs: propose, incrementMs: Math.ceil(propose / 2) },
    prevote: { baseMs: vote, incrementMs: Math.ceil(vote / 2) },
    precommit: { baseMs: vote, incrementMs: Math.ceil(vote / 2) },
  };
}

/** The machine's input for a block that changes the validator set (governance): the next height's vote keys. */
function nextValidatorsOf(result: BlockResult): { nextValidators?: string[] } {
  return result.nextValidators ? { nextValidators: result.nextValidators.map((v) => v.voteKey) } : {};
}
