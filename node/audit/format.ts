/** The human report of `cloister audit`: one line per check, ✓ or ✗, then a summary. */
import type { AuditReport, Check } from './report.js';

const line = (c: Pick<Check, 'ok' | 'name' | 'detail'>): string => `  ${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`;

export function formatReport(report: AuditReport): string {
  const out: string[] = [`audit of chain "${report.genesis.chainId}" (genesis ${report.genesis.hash}, ${report.genesis.file})`];
  if (report.source) {
    out.push(
      report.source.measurement
        ? `source ${report.source.dir}: enclave measurement ${report.source.measurement}`
        : `source ${report.source.dir}: ✗ not measured: ${report.source.detail}`,
    );
  }
  for (const node of report.nodes) {
    const who = node.nodeId === null ? '' : ` (${node.nodeId}, ${node.platform ?? '?'}, measurement ${node.measurement ?? '?'})`;
    out.push(`node ${node.url}${who}`);
    out.push(...node.checks.map(line));
  }
  out.push('consortium');
  out.push(...report.consortium.map(line));
  out.push(`contracts (${report.contracts.length})`);
  out.push(...report.contracts.map((c) => line({ ok: c.ok, name: c.name, detail: c.detail })));
  out.push(`governance: ${report.governance.length} proposal(s), newest first`);
  for (const p of report.governance) {
    out.push(`  #${p.id} ${p.state} by ${p.proposer}: ${p.actions.join(', ') || '(no actions)'}; ${p.votes} vote(s), ${p.approvals} for, ${p.rejections} against`);
  }
  const checks = report.nodes.reduce((n, node) => n + node.checks.length, 0) + report.consortium.length + report.contracts.length;
  out.push(
    report.ok
      ? `summary: OK: ${report.nodes.length} node(s), ${checks} check(s), no finding`
      : `summary: ${report.findings.length} finding(s) over ${report.nodes.length} node(s) and ${checks} check(s)`,
  );
  return out.join('\n') + '\n';
}
