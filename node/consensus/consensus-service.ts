import {
  ChainError,
  TendermintMachine,
  headerHash,
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
import { checkConsensusMessage, encodeConsensusMessage, type ConsensusMessage } from './wire.js';

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
  readonly #validatorKeys: Set<string>;
  /** What this node's enclave built or re-executed, by block hash (current height only). */
  #executed = new Map<string, { result: BlockResult; txs: SignedTx[] }>();
  #timers = new Set<NodeJS.Timeout>();
  #stallTimer: NodeJS.Timeout | undefined;
  #seq = 0;
  #running = false;
  #unsubscribe: (() => void) | undefined;
  #lastCommitAt = 0;
  /** Messages the gossip validator parsed, so delivery does not parse (a proposal carries a whole block) again. */
  #parsed = new WeakMap<Uint8Array, ConsensusMessage>();

  constructor(options: ConsensusServiceOptions) {
    this.#o = options;
    const { genesis, chain } = options;
    this.#self = chain.identity.publicKeys.vote!;
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
          onAhead: (height, peer) => this.#o.onBehind(height - 1, peer),
        });
        if (outcome.value) this.#parsed.set(data, outcome.value);
        return outcome;
      });
      this.#unsubscribe = network.onConsensus(({ data }) => this.#onGossip(data));
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

  #onGossip(data: Uint8Array): void {
    // Already checked by the validator (shape, validator, admission, signature).
    const m = this.#parsed.get(data);
    if (!m) return;
    this.#parsed.delete(data);
    if (m.type === 'vote') this.#feed({ type: 'voteReceived', vote: m.vote });
    else this.#feed({ type: 'proposalReceived', proposal: m.proposal });
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
      case 'broadcastProposal':
        this.#publish({ type: 'proposal', chainId: this.#o.genesis.chainId, seq: this.#seq++, proposal: action.proposal });
        break;
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
