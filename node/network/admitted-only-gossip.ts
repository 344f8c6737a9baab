import type { PeerId } from '@libp2p/interface';
import { NetworkError } from './errors.js';

/**
 * Gossip reaches only admitted peers, and only admitted peers' gossip is used.
 *
 * Gossipsub decides whom to send to in several places (flood publish with a
 * score check, forwarding to mesh peers without one, answers to IWANT, IHAVE
 * gossip), and the peer score that keeps non-admitted peers out of the mesh is
 * only acted on at heartbeats and cached for one. So the rule is enforced where
 * every RPC passes, at the moment it passes:
 *
 *  - out: `sendRpc(id, rpc)` (every single-peer send) and `sendRpcInBatch(ids, rpc)`
 *    (batch publish, IDONTWANT). To a peer not admitted, an RPC goes without its
 *    messages and without message ids (IHAVE, IWANT, IDONTWANT, and the IHAVE
 *    gossip queued for that peer); subscriptions, GRAFT and PRUNE still go, so
 *    gossipsub's view of the peer stays right for when it is admitted;
 *  - in: `handleReceivedRpc(from, rpc)`, which runs before the seen-cache, the
 *    topic validators and relaying. From a peer not admitted only subscriptions
 *    and PRUNE are kept: its messages are neither delivered nor relayed, nor
 *    marked seen (the same message from an admitted peer is still taken).
 *
 * These are internals of @libp2p/gossipsub 17.1.1 (the pinned version). The
 * install checks they exist and throws INTERNALS_CHANGED otherwise (the node
 * then refuses to start rather than gossip to anyone);
 * test/unit/node/network/admitted-only.test.ts fails if a hook stops being the
 * path gossipsub uses.
 */

/** The parts of a gossipsub RPC this filter reads (gossipsub's RPC type is not exported). */
interface Rpc {
  subscriptions?: unknown[];
  messages?: unknown[];
  control?: {
    ihave?: unknown[];
    iwant?: unknown[];
    graft?: unknown[];
    prune?: unknown[];
    idontwant?: unknown[];
  };
}

interface GossipsubInternals {
  sendRpc(id: string, rpc: Rpc): boolean;
  sendRpcInBatch(tosend: Set<string>, rpc: Rpc): void;
  handleReceivedRpc(from: PeerId, rpc: Rpc): Promise<void>;
  /** IHAVE gossip queued per peer, piggybacked on the next RPC to it. */
  gossip: Map<string, unknown>;
}

export interface AdmittedOnlyCounters {
  /** Messages not sent to a peer because it was not admitted. */
  withheld: number;
  /** Messages received from a peer not admitted, dropped before validation. */
  dropped: number;
}

/** The RPC without its messages and message ids: subscriptions, GRAFT and PRUNE only. */
function controlOnly(rpc: Rpc): Rpc {
  const graft = rpc.control?.graft ?? [];
  const prune = rpc.control?.prune ?? [];
  return {
    subscriptions: rpc.subscriptions ?? [],
    messages: [],
    ...(graft.length > 0 || prune.length > 0 ? { control: { ihave: [], iwant: [], graft, prune, idontwant: [] } } : {}),
  };
}

function isEmpty(rpc: Rpc): boolean {
  return (rpc.subscriptions?.length ?? 0) === 0 && rpc.control === undefined;
}

/**
 * Wraps the gossipsub instance's send and receive paths so that nothing
 * message-bearing goes to, or comes from, a peer for which `admitted(id)` is
 * false at that moment. Returns live counters.
 */
export function restrictGossipToAdmitted(pubsub: unknown, admitted: (peerId: string) => boolean): AdmittedOnlyCounters {
  const g = pubsub as Partial<GossipsubInternals>;
  if (
    typeof g.sendRpc !== 'function' ||
    typeof g.sendRpcInBatch !== 'function' ||
    typeof g.handleReceivedRpc !== 'function' ||
    !(g.gossip instanceof Map)
  ) {
    throw new NetworkError('INTERNALS_CHANGED', 'gossipsub no longer has sendRpc, sendRpcInBatch, handleReceivedRpc and gossip: the admitted-only filter cannot be installed');
  }
  const internals = g as GossipsubInternals;
  const counters: AdmittedOnlyCounters = { withheld: 0, dropped: 0 };
  const sendRpc = internals.sendRpc.bind(internals);
  const sendRpcInBatch = internals.sendRpcInBatch.bind(internals);
  const handleReceivedRpc = internals.handleReceivedRpc.bind(internals);

  internals.sendRpc = (id, rpc) => {
    if (admitted(id)) return sendRpc(id, rpc);
    internals.gossip.delete(id);
    const withheld = rpc.messages?.length ?? 0;
    counters.withheld += withheld;
    const rest = controlOnly(rpc);
    const sent = isEmpty(rest) ? false : sendRpc(id, rest);
    // A withheld message was not sent: publish must not count the peer as a recipient.
    return withheld > 0 ? false : sent;
  };
  internals.sendRpcInBatch = (tosend, rpc) => {
    for (const id of tosend) {
      if (admitted(id)) continue;
      // Batches carry messages or message ids (IDONTWANT), nothing a peer not admitted may get.
      tosend.delete(id);
      counters.withheld += rpc.messages?.length ?? 0;
    }
    if (tosend.size > 0) sendRpcInBatch(tosend, rpc);
  };
  internals.handleReceivedRpc = (from, rpc) => {
    if (admitted(from.toString())) return handleReceivedRpc(from, rpc);
    counters.dropped += rpc.messages?.length ?? 0;
    const prune = rpc.control?.prune ?? [];
    return handleReceivedRpc(from, { subscriptions: rpc.subscriptions ?? [], messages: [], ...(prune.length > 0 ? { control: { prune } } : {}) });
  };
  return counters;
}
