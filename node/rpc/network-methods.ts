import { defineMethod, type RpcMethod } from './method.js';
import * as s from './schemas.js';

/** One node of the consortium as this node sees it. */
export interface NodeView {
  id: string;
  self: boolean;
  admitted: boolean;
  connected: boolean;
  voteKey: string;
  platform?: string;
  measurement?: string;
  reason?: { code: string; message: string };
  /** Equivocations of this validator's key this node holds evidence of (kept durably, gossiped to every node). */
  equivocations?: { kind: string; height: number; round: number }[];
  /** This node only: why it refuses to sign (another copy of its vote key was seen signing). */
  doubleSignRisk?: string;
}

export interface NetworkApi {
  nodes(): NodeView[];
}

/** The network family: who is in the consortium, and whose enclave this node admitted. */
export function networkMethods(api: NetworkApi): RpcMethod[] {
  return [
    defineMethod({
      name: 'net_nodes',
      summary:
        'One entry per validator in force (the genesis\'s, as governance changed them): whether its enclave evidence verified (admitted), its platform and measurement, and when refused, the reason (a code and a message naming what failed).',
      params: [],
      result: { name: 'nodes', schema: { type: 'array', items: s.nodeEntry } },
      handler: () => api.nodes(),
    }),
  ];
}
