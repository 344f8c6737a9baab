/**
 * Asks one node everything the audit checks, with a bounded time per request.
 * A node that does not answer is a fact the report states, not an exception.
 */
import { randomBytes } from 'node:crypto';
import { ClientError, CloisterClient, RpcError, type ChainView, type ContractView, type EvidenceView, type ProposalView, type StateValueProof, type StatusView } from '../client/index.js';

export interface NodeFacts {
  url: string;
  status: StatusView;
  /** The random challenge the evidence was asked for. */
  nonce: string;
  evidence: EvidenceView;
  view: ChainView;
  /** Committed headers the view's policyHash is looked for in: the head when the view was read, and the next block when the head's differs. */
  headers: { height: number; policyHash: string }[];
  contracts: ContractView[];
  proposals: ProposalView[];
  /** A state proof at the node's head (of a key no contract has): what shows its head is certified from the genesis. */
  headProof: StateValueProof;
}

/** A contract name no bundle can have (names start with a letter): its key's absence is proved under the head's state root. */
export const HEAD_PROBE_CONTRACT = 'audit-probe';

export interface NodeFailure {
  url: string;
  code: 'NODE_UNREACHABLE' | 'NODE_ERROR';
  message: string;
}

export interface GatherOptions {
  /** Per request; a node is given at most this long for each answer. */
  timeoutMs: number;
}

const POLL_MS = 200;

/** The innermost reason under fetch's "fetch failed" (ECONNREFUSED …), as the CLI's other commands say it. */
function reason(err: unknown): string {
  let inner: unknown = err;
  for (let depth = 0; depth < 8 && (inner as { cause?: unknown })?.cause !== undefined; depth++) inner = (inner as { cause: unknown }).cause;
  return inner instanceof Error ? inner.message : String(inner);
}

function failureOf(url: string, err: unknown, doing: string, answered: boolean): NodeFailure {
  if (err instanceof ClientError && (err.kind === 'network' || err.kind === 'timeout')) {
    const what = err.kind === 'timeout' ? err.message : reason(err);
    return answered
      ? { url, code: 'NODE_ERROR', message: `stopped answering while ${doing}: ${what}` }
      : { url, code: 'NODE_UNREACHABLE', message: `cannot reach ${url}: ${what}` };
  }
  if (err instanceof RpcError) return { url, code: 'NODE_ERROR', message: `${doing}: ${err.message} (${err.chainCode ?? `JSON-RPC error ${err.code}`})` };
  return { url, code: 'NODE_ERROR', message: `${doing}: ${err instanceof Error ? err.message : String(err)}` };
}

/** A client of `url` that gives each request `timeoutMs`, and remembers whether the node ever answered. */
function clientFor(url: string, timeoutMs: number): { client: CloisterClient; answered: () => boolean } {
  let answered = false;
  const client = new CloisterClient(url, {
    timeoutMs,
    fetch: async (input, init) => {
      const response = await globalThis.fetch(input, init);
      answered = true;
      return response;
    },
  });
  return { client, answered: () => answered };
}

export async function gatherNode(url: string, options: GatherOptions): Promise<NodeFacts | NodeFailure> {
  const { client, answered } = clientFor(url, options.timeoutMs);
  let doing = 'asking for its status';
  const step = <T>(what: string, request: () => Promise<T>): Promise<T> => {
    doing = what;
    return request();
  };
  try {
    const status = await step('asking for its status', () => client.status());
    const nonce = randomBytes(32).toString('hex');
    const evidence = await step('asking for fresh evidence', () => client.getEvidence(nonce));
    const view = await step('reading the chain view', () => client.chainView());
    const headers = await step('reading the head', () => committedHeaders(client, status.height, view.policyHash, options.timeoutMs));
    const contracts = await step('listing the contracts', () => client.listContracts());
    const proposals = await step('listing the proposals', () => client.listProposals());
    const headProof = await step('asking for a proof of its head', () => client.getStateProof(HEAD_PROBE_CONTRACT, 'head'));
    return { url, status, nonce, evidence, view, headers, contracts, proposals, headProof };
  } catch (err) {
    return failureOf(url, err, doing, answered());
  }
}

/**
 * The header of block `height` (the head before the view was read) and, when
 * it does not carry `policyHash`, the next block's once it is committed (a
 * policy changed in the head block shows first in the next header), waiting
 * at most `timeoutMs` for it.
 */
async function committedHeaders(client: CloisterClient, height: number, policyHash: string, timeoutMs: number): Promise<{ height: number; policyHash: string }[]> {
  const head = await client.getBlockByNumber(height);
  const headers = head ? [{ height, policyHash: head.policyHash }] : [];
  if (head?.policyHash === policyHash) return headers;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const next = await client.getBlockByNumber(height + 1);
    if (next) return [...headers, { height: height + 1, policyHash: next.policyHash }];
    if (Date.now() >= deadline) return headers;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The hash of the node's block at `height`; null, with the reason, when it gives none. */
export async function blockHashAt(url: string, height: number, options: GatherOptions): Promise<{ url: string; hash: string | null }> {
  const { client } = clientFor(url, options.timeoutMs);
  try {
    return { url, hash: (await client.getBlockByNumber(height))?.hash ?? null };
  } catch {
    return { url, hash: null };
  }
}
