/**
 * `cloister audit`: a member's (or anyone's) check of a consortium's nodes
 * against what the auditor holds: the genesis file, and optionally a checkout
 * of the source. See README, "Auditing a consortium".
 */
import { genesisHash, type Genesis } from '../../consensus/index.js';
import { checkContracts, checkEvidence, checkGenesis, checkHeadCertified, checkHeads, checkPolicyInForce, checkSourceMeasurement, summarizeProposal } from './checks.js';
import { blockHashAt, gatherNode, type NodeFacts, type NodeFailure } from './gather.js';
import { findingsOf, type AuditReport, type Check, type NodeAudit } from './report.js';
import { measureSource, sourceBundles } from './source.js';

export * from './report.js';
export * from './checks.js';
export { AuditInputError, measureSource, sourceBundles } from './source.js';

export interface AuditOptions {
  urls: readonly string[];
  genesis: Genesis;
  genesisFile: string;
  /** A checkout of the Cloister source (built: its dist/ is what is measured). */
  source?: string;
  /** More contract bundle directories (a bundle, or a directory of bundles). */
  contractDirs?: readonly string[];
  /** Per request to a node. */
  timeoutMs: number;
  now?: Date;
}

const isFailure = (f: NodeFacts | NodeFailure): f is NodeFailure => 'code' in f;

/** The checks of one node that answered. */
function auditNode(facts: NodeFacts, genesis: Genesis, hash: string, source: AuditReport['source'], now: Date): NodeAudit {
  const checks: Check[] = [checkGenesis(facts.status, { chainId: genesis.chainId, hash })];
  checks.push(checkHeadCertified(facts.headProof, genesis, now));
  checks.push(checkPolicyInForce(facts.view, facts.headers));
  const { result, checks: evidenceChecks } = checkEvidence({
    evidence: facts.evidence,
    nonce: facts.nonce,
    nodeId: facts.status.nodeId,
    genesis,
    view: facts.view,
    now,
  });
  checks.push(...evidenceChecks);
  // An unmeasured source is one finding of its own (findingsOf), not one per node.
  if (source?.measurement && result) checks.push(checkSourceMeasurement(result.measurement, source));
  return {
    url: facts.url,
    nodeId: facts.status.nodeId,
    platform: result?.platform ?? facts.evidence.platform,
    measurement: result?.measurement ?? facts.evidence.measurement,
    checks,
  };
}

export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  const now = options.now ?? new Date();
  const hash = genesisHash(options.genesis);
  // The auditor's inputs first: a bundle that does not load is the auditor's error, before any node is asked.
  const source = options.source === undefined ? null : measureSource(options.source);
  const contractDirs = options.contractDirs ?? [];
  const bundles = options.source === undefined && contractDirs.length === 0 ? null : await sourceBundles(options.source, contractDirs);

  const gathered = await Promise.all(options.urls.map((url) => gatherNode(url, { timeoutMs: options.timeoutMs })));
  const answered = gathered.filter((g): g is NodeFacts => !isFailure(g));
  const nodes = gathered.map((g): NodeAudit =>
    isFailure(g)
      ? { url: g.url, nodeId: null, platform: null, measurement: null, checks: [{ name: 'answers', ok: false, detail: g.message, code: g.code }] }
      : auditNode(g, options.genesis, hash, source, now),
  );

  const consortium: Check[] = [];
  if (answered.length > 0) {
    const height = Math.min(...answered.map((f) => f.status.height));
    const blocks = await Promise.all(answered.map((f) => blockHashAt(f.url, height, { timeoutMs: options.timeoutMs })));
    consortium.push(checkHeads(height, blocks));
  }
  const contracts = checkContracts(answered.map((f) => ({ url: f.url, contracts: f.contracts })), bundles);
  const governance = (answered[0]?.proposals ?? []).map(summarizeProposal);
  const findings = findingsOf(nodes, consortium, contracts, source);
  return {
    ok: findings.length === 0,
    genesis: { file: options.genesisFile, chainId: options.genesis.chainId, hash },
    source,
    nodes,
    consortium,
    contracts,
    governance,
    findings,
  };
}
