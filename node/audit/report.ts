/**
 * What `cloister audit` reports: the stable shape of `--json` (README,
 * "Auditing a consortium"). Every failed check is also a finding, with a code
 * scripts branch on and a message naming the node and both values compared.
 */
export const FINDING_CODES = [
  /** The node did not answer (connection refused, DNS, no answer within the timeout). */
  'NODE_UNREACHABLE',
  /** The node answered with an error, or with something the audit cannot read. */
  'NODE_ERROR',
  /** The node runs another genesis (hash or chain id) than the file the auditor holds. */
  'GENESIS_MISMATCH',
  /** The evidence does not verify against the genesis's vendor roots. */
  'EVIDENCE_INVALID',
  /** The evidence's report_data does not bind the auditor's nonce. */
  'NONCE_NOT_BOUND',
  /** The evidence binds another chain id than the genesis's. */
  'WRONG_CHAIN',
  /** The evidence binds another node id than the one the node states, or the node is not a validator in force with that vote key. */
  'NODE_ID_MISMATCH',
  /** The chain view's policy does not hash to its policyHash, or no committed header commits to it. */
  'POLICY_HASH_MISMATCH',
  /** The node's head block does not verify from the genesis: not a quorum of the validators of its height, or a signer's evidence refused. */
  'HEAD_NOT_CERTIFIED',
  /** The policy in force refuses the node's evidence (its measurement, platform, debug, TCB…). */
  'POLICY_REFUSED',
  /** The node's measurement is not the one the source tree's enclave program measures to. */
  'SOURCE_MISMATCH',
  /** The source tree cannot be measured (not built, unreadable): nothing was compared. */
  'SOURCE_UNMEASURED',
  /** A deployed contract has no bundle of that name among the sources. */
  'CONTRACT_NO_BUNDLE',
  /** A deployed contract's measurement differs from its bundle's. */
  'CONTRACT_MISMATCH',
  /** The nodes list different contracts, or one contract with different measurements. */
  'CONTRACTS_DIFFER',
  /** The nodes' blocks at the lowest common height differ (or one cannot give it). */
  'HEADS_DIVERGE',
] as const;
export type FindingCode = (typeof FINDING_CODES)[number];

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** The finding a failed check makes. */
  code?: FindingCode;
}

export interface NodeAudit {
  url: string;
  /** Null when the node could not be asked. */
  nodeId: string | null;
  platform: string | null;
  /** The measurement the verified evidence carries (the node's statement when the evidence did not verify). */
  measurement: string | null;
  checks: Check[];
}

export interface ContractAudit {
  name: string;
  /** The measurement the nodes report (the first node's when they differ). */
  measurement: string;
  /** The nodes (URLs) that list it. */
  nodes: string[];
  /** The bundle directory of that name among the sources, and its measurement; null when there is none (or no sources were given). */
  bundle: string | null;
  bundleMeasurement: string | null;
  ok: boolean;
  detail: string;
  /** The finding when not ok: CONTRACT_NO_BUNDLE, CONTRACT_MISMATCH or CONTRACTS_DIFFER. */
  code?: FindingCode;
}

export interface ProposalSummary {
  id: number;
  state: string;
  proposer: string;
  /** The kinds of its actions, in order (deployContract, addNode, …). */
  actions: string[];
  /** Members who voted, approvals and rejections among them. */
  votes: number;
  approvals: number;
  rejections: number;
}

export interface Finding {
  code: FindingCode;
  /** The node's URL, when the finding is about one node. */
  node?: string;
  message: string;
}

export interface AuditReport {
  /** True when there is no finding. */
  ok: boolean;
  genesis: { file: string; chainId: string; hash: string };
  /** With --source: the directory and the enclave measurement its built program gives (null when it could not be measured). */
  source: { dir: string; measurement: string | null; detail: string } | null;
  nodes: NodeAudit[];
  /** Checks across the nodes: the heads agree, the contract lists agree. */
  consortium: Check[];
  contracts: ContractAudit[];
  /** Proposals, newest first (at most 100), as the first node that answered lists them. */
  governance: ProposalSummary[];
  findings: Finding[];
}

/** The findings of failed checks, node checks first, in report order. */
export function findingsOf(nodes: readonly NodeAudit[], consortium: readonly Check[], contracts: readonly ContractAudit[], source: AuditReport['source']): Finding[] {
  const findings: Finding[] = [];
  if (source && source.measurement === null) findings.push({ code: 'SOURCE_UNMEASURED', message: `source ${source.dir}: ${source.detail}` });
  for (const node of nodes) {
    for (const c of node.checks) if (!c.ok) findings.push({ code: c.code ?? 'NODE_ERROR', node: node.url, message: `${node.url}: ${c.name}: ${c.detail}` });
  }
  for (const c of consortium) if (!c.ok) findings.push({ code: c.code ?? 'HEADS_DIVERGE', message: `${c.name}: ${c.detail}` });
  for (const c of contracts) {
    if (!c.ok) findings.push({ code: c.code ?? 'CONTRACT_MISMATCH', message: `contract ${c.name}: ${c.detail}` });
  }
  return findings;
}
