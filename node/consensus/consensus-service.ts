import {
  ChainError,
  TendermintMachine,
  headerHash,
  txHash,
  txRootOf,
  type BftAction,
  type BftInput,
  type CommitCertificate,
  type Genesis,
  type ProposalBlock,
  type SignedTx,
} from '../../consensus/index.js';
import type { BlockResult } from '../../contracts/index.js';
import type { ChainService } from '../chain/chain-service.js';
import type { Clock } from '../chain/clock.js';
import type { EnclaveHost } from '../enclave/enclave-host.js';
import type { Logger } from '../log/logger.js';
import type { NetworkService } from '../network/index.js';
import { checkConsensusMessage, compactProposal, encodeConsensusMessage, type CompactProposal, type ConsensusMessage } from './wire.js';

export interface ConsensusServiceOptions {
  genesis: Genesis;
  chain: ChainService;
  enclave: EnclaveHost;
  /** Absent on a single-validator chain that talks to no one. */
  network?: NetworkService;
  /** Is this vote key's enclave admitted (its evidence verified)? This node's own key always is. */
  admitted(voteKey: string): boolean;
  /** A validly signed message showed a peer ahead of us: fetch the blocks we miss. */
  onBehind(height: number, fromPeer: string): void;
  /** Asks a peer for transactions by hash (a proposal named some this node does not hold); null where it has none. */
  fetchTxs?(peer: string, hashes: string[]): Promise<(SignedTx | null)[]>;
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
 * signs a vote for a block only when its own roots match, and the decided
 * block is committed from this node's own execution result.
 */
export class ConsensusService {
  readonly #o: ConsensusServiceOptions;
  readonly #machine: TendermintMachine;
  readonly #self: string;
  readonly #selfNodeId: string;
  readonly #validatorKeys: Set<string>;
  /** What this node's enclave built or re-executed, by block hash (current height only). */
  #executed = new Map<string, { result: BlockResult; txs: SignedTx[] }>();
  #timers = new Set<NodeJS.Timeout>();
  #stallTimer: NodeJS.Timeout | undefined;
  #seq = 0;
  #running = false;
  #unsubscribe: (() => void) | undefined;
  #lastCommitAt = 0;
  /** Messages the gossip validator parsed, so delivery does not parse them again. */
  #parsed = new WeakMap<Uint8Array, ConsensusMessage>();
  /** Transaction hashes of recent blocks (built, validated or received), for gossiping their proposals compactly. */
  #txHashesOf = new Map<string, string[]>();

  constructor(options: ConsensusServiceOptions) {
    this.#o = options;
    const { genesis, chain } = options;
    this.#self = chain.identity.publicKeys.vote!;
    this.#selfNodeId = genesis.validators.find((v) => v.voteKey === this.#self)?.nodeId ?? '';
    const validators = genesis.validators.map((v) => v.voteKey);
    this.#validatorKeys = new Set(validators);
    const { timeoutProposeMs: propose, timeoutVoteMs: vote } = genesis.consensus;
    this.#machine = new TendermintMachine({
      chainId: genesis.chainId,
      validators,
      self: this.#self,
      height: chain.tip.height + 1,
      timeouts: {
        propose: { baseMs: propose, incrementMs: Math.ceil(propose / 2) },
        prevote: { baseMs: vote, incrementMs: Math.ceil(vote / 2) },
        precommit: { baseMs: vote, incrementMs: Math.ceil(vote / 2) },
      },
    });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lastCommitAt = this.#o.clock.now();
    const network = this.#o.network;
    if (network) {
      network.setConsensusValidator((data, from) => {
        const outcome = checkConsensusMessage(data, from, {
          chainId: this.#o.genesis.chainId,
          validators: this.#validatorKeys,
          admitted: (key) => key === this.#self || this.#o.admitted(key),
          height: this.#machine.snapshot.height,
          maxBlockTxs: this.#o.genesis.consensus.maxBlockTxs,
          onAhead: (height, peer) => this.#o.onBehind(height - 1, peer),
        });
        if (outcome.value) this.#parsed.set(data, outcome.value);
        return outcome;
      });
      this.#unsubscribe = network.onConsensus(({ data, from }) => this.#onGossip(data, from));
    }
    this.#feed({ type: 'start' });
    this.#armStallGossip();
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#o.chain.mempool.wakeAll();
  }

  /** Height, round and step, for status. */
  get snapshot(): { height: number; round: number; step: string } {
    const s = this.#machine.snapshot;
    return { height: s.height, round: s.round, step: s.step };
  }

  /** Block sync committed a certified block (already executed and committed in the enclave). */
  syncedBlock(block: ProposalBlock, certificate: CommitCertificate): void {
    this.#executed.clear();
    this.#lastCommitAt = this.#o.clock.now();
    this.#feed({ type: 'blockCommittedBySync', block, certificate });
  }

  #onGossip(data: Uint8Array, from: string): void {
    // Already checked by the validator (shape, validator, admission, signature).
    const m = this.#parsed.get(data);
    if (!m) return;
    this.#parsed.delete(data);
    if (m.type === 'vote') this.#feed({ type: 'voteReceived', vote: m.vote });
    else void this.#receiveProposal(m.proposal, from);
  }

  /**
   * Rebuilds a compact proposal's block from the mempool, fetching the
   * transactions this node lacks from the peer that relayed it (it had them,
   * or it could not have validated the proposal), then hands it to consensus.
   */
  async #receiveProposal(cp: CompactProposal, from: string): Promise<void> {
    const { header, txHashes } = cp.proposal.block;
    // The signature covers the header; a hash list its txRoot does not commit to can never be valid.
    if (txRootOf(txHashes) !== header.txRoot) {
      this.#o.log.warn('proposal whose transaction list does not match its header', { peer: from, height: cp.proposal.height });
      return;
    }
    const mempool = this.#o.chain.mempool;
    const txs: (SignedTx | undefined)[] = txHashes.map((h) => mempool.get(h));
    const missing = txHashes.filter((_, i) => txs[i] === undefined);
    if (missing.length > 0) {
      // The relaying peer may have forwarded the proposal without holding every
      // transaction itself: then ask the proposer's node, then the others.
      const proposerNode = this.#o.genesis.validators.find((v) => v.voteKey === cp.proposer)?.nodeId;
      const others = this.#o.genesis.validators.map((v) => v.nodeId).filter((id) => id !== this.#selfNodeId);
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
    }
    this.#rememberHashes(headerHash(header), txHashes);
    const { block: _compact, ...rest } = cp.proposal;
    this.#feed({
      type: 'proposalReceived',
      proposal: { proposal: { ...rest, block: { header, txs: txs as SignedTx[] } }, proposer: cp.proposer, signature: cp.signature },
    });
  }

  #rememberHashes(blockHash: string, txHashes: string[]): void {
    this.#txHashesOf.set(blockHash, txHashes);
    // A few heights' worth of proposals (several per round at most) is plenty for re-gossip.
    while (this.#txHashesOf.size > 64) this.#txHashesOf.delete(this.#txHashesOf.keys().next().value!);
  }

  #feed(input: BftInput): void {
    if (!this.#running) return;
    let actions: BftAction[];
    try {
      actions = this.#machine.step(input);
    } catch (err) {
      this.#o.onFatal(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    for (const action of actions) this.#do(action);
  }

  #do(action: BftAction): void {
    switch (action.type) {
      case 'buildProposal':
        void this.#build(action.height, action.round);
        break;
      case 'signProposal': {
        const { proposal } = action;
        const { chainId, height, round, polRound } = proposal;
        this.#o.enclave
          .signProposal({ chainId, height, round, polRound, blockHash: headerHash(proposal.block.header) })
          .then(
            (sig) => this.#feed({ type: 'proposalSigned', proposal, signature: sig.signature }),
            (err: unknown) => this.#refused('proposal', err),
          );
        break;
      }
      case 'broadcastProposal': {
        const { block } = action.proposal.proposal;
        const hashes = this.#txHashesOf.get(headerHash(block.header)) ?? block.txs.map(txHash);
        this.#publish({ type: 'proposal', chainId: this.#o.genesis.chainId, seq: this.#seq++, proposal: compactProposal(action.proposal, hashes) });
        break;
      }
      case 'validateProposal':
        void this.#validate(action.height, action.blockHash, action.block);
        break;
      case 'signVote':
        this.#o.enclave.signVote(action.vote).then(
          (sig) => this.#feed({ type: 'voteSigned', vote: action.vote, signature: sig.signature }),
          (err: unknown) => this.#refused(action.vote.type, err),
        );
        break;
      case 'broadcastVote':
        this.#publish({ type: 'vote', chainId: this.#o.genesis.chainId, seq: this.#seq++, vote: action.vote });
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
        this.#o.log.warn('equivocation', {
          kind: action.evidence.kind,
          validator: action.evidence.validator,
          height: action.evidence.height,
          round: action.evidence.round,
        });
        break;
    }
  }

  /** The enclave refused to sign (e.g. it signed a later slot before a restart): this node sits the slot out. */
  #refused(what: string, err: unknown): void {
    const code = err instanceof ChainError ? err.code : 'ENCLAVE_INTERNAL';
    if (code === 'ENCLAVE_UNAVAILABLE') {
      if (this.#running) this.#o.onFatal(err as Error);
      return;
    }
    this.#o.log.warn('enclave refused to sign', { what, code, error: (err as Error).message });
  }

  #publish(message: ConsensusMessage): void {
    const network = this.#o.network;
    if (!network || this.#validatorKeys.size === 1) return;
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
    const { chain, genesis, clock } = this.#o;
    const params = genesis.consensus;
    const mempool = chain.mempool;
    const still = (): boolean => {
      const s = this.#machine.snapshot;
      return this.#running && s.height === height && s.round === round;
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
    let result: BlockResult;
    try {
      result = await this.#o.enclave.proposeBlock({ parent, time: Math.max(clock.now(), parent.time), txs });
    } catch (err) {
      this.#refused('build', err);
      return;
    }
    const blockTxs = result.included.map((i) => txs[i]!);
    const refused = result.excluded.filter((e) => e.code !== 'BLOCK_FULL').map((e) => e.txHash);
    // Transactions the enclave refused can never be included as they are.
    if (refused.length > 0) {
      mempool.remove([], refused);
      this.#o.log.warn('enclave left transactions out', { count: refused.length, first: result.excluded[0]?.code });
    }
    if (result.header.height !== height) return;
    this.#executed.set(result.blockHash, { result, txs: blockTxs });
    this.#rememberHashes(result.blockHash, result.txHashes);
    this.#feed({ type: 'proposalBuilt', height, round, block: { header: result.header, txs: blockTxs } });
  }

  /** Re-executes a proposed block in our enclave; valid only if every root matches. */
  async #validate(height: number, blockHash: string, block: ProposalBlock): Promise<void> {
    let valid = false;
    try {
      if (block.header.time > this.#o.clock.now() + MAX_CLOCK_AHEAD_MS) {
        this.#o.log.warn('proposal from the future', { height, block: blockHash, time: block.header.time });
      } else if (this.#o.chain.tip.height + 1 === height) {
        const result = await this.#o.enclave.executeBlock({ parent: this.#o.chain.tip, header: block.header, txs: block.txs });
        valid = result.blockHash === blockHash;
        if (valid) this.#executed.set(blockHash, { result, txs: block.txs });
      }
    } catch (err) {
      const code = err instanceof ChainError ? err.code : 'ENCLAVE_INTERNAL';
      if (code === 'ENCLAVE_UNAVAILABLE') {
        this.#refused('validate', err);
        return;
      }
      this.#o.log.warn('proposal failed re-execution', { height, block: blockHash, code, error: (err as Error).message });
    }
    this.#feed({ type: 'proposalValidated', height, blockHash, valid });
  }

  #commit(height: number, block: ProposalBlock, certificate: CommitCertificate): void {
    const { chain, log } = this.#o;
    if (chain.tip.height >= height) return; // block sync got there first
    const executed = this.#executed.get(certificate.blockHash);
    if (!executed) {
      this.#o.onFatal(new ChainError('BLOCK_NOT_VALIDATED', `decided block ${certificate.blockHash} at height ${height} was not executed here`));
      return;
    }
    this.#executed.clear();
    this.#lastCommitAt = this.#o.clock.now();
    this.#armStallGossip();
    chain.commitExecuted(executed.result, certificate, executed.txs).then(
      () => log.debug('committed', { height, round: certificate.round, txs: block.txs.length }),
      () => {}, // commitExecuted reports write failures as fatal itself
    );
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  /** Re-gossip when a height takes long (lost messages, a peer that reconnected). */
  #armStallGossip(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    if (!this.#running || !this.#o.network) return;
    this.#stallTimer = setTimeout(() => {
      this.#feed({ type: 'gossipTick' });
      this.#armStallGossip();
    }, STALL_GOSSIP_MS);
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
