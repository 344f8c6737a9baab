import { toHex } from '../internal/bytes.js';
import type { SnpReportSummary, TcbSummary } from '../result.js';
import type { SnpReport, SnpTcbVersion } from './report.js';

/** Helpers shared by every verifier whose evidence is an SEV-SNP-layout report (virtual, sev-snp). */

function hexNumber(value: bigint): string {
  return '0x' + value.toString(16);
}

/**
 * Comparable TCB of an SNP-layout report: the REPORTED_TCB components (the TCB
 * the VCEK is derived from) plus the guest SVN. See TcbSummary for the names.
 */
export function snpTcbSummary(report: SnpReport): TcbSummary {
  const t: SnpTcbVersion = report.reportedTcb;
  const components: Record<string, number> = {
    bootloader: t.bootloader,
    tee: t.tee,
    snp: t.snp,
    microcode: t.microcode,
    guestSvn: report.guestSvn,
  };
  if (t.fmc !== undefined) components['fmc'] = t.fmc;
  return { components, raw: toHex(t.raw) };
}

export function snpReportSummary(report: SnpReport): SnpReportSummary {
  const summary: SnpReportSummary = {
    version: report.version,
    guestSvn: report.guestSvn,
    policy: hexNumber(report.policy.raw),
    migrateMa: report.policy.migrateMa,
    smt: report.policy.smt,
    vmpl: report.vmpl,
    signingKey: report.signerInfo.signingKey,
    maskChipKey: report.signerInfo.maskChipKey,
    authorKeyEn: report.signerInfo.authorKeyEn,
    platformInfo: hexNumber(report.platformInfo.raw),
    familyId: toHex(report.familyId),
    imageId: toHex(report.imageId),
    idKeyDigest: toHex(report.idKeyDigest),
    authorKeyDigest: toHex(report.authorKeyDigest),
    reportId: toHex(report.reportId),
    reportIdMa: toHex(report.reportIdMa),
    tcbLayout: report.reportedTcb.layout,
    currentTcb: toHex(report.currentTcb.raw),
    reportedTcb: toHex(report.reportedTcb.raw),
    committedTcb: toHex(report.committedTcb.raw),
    launchTcb: toHex(report.launchTcb.raw),
  };
  return report.cpuid === undefined ? summary : { ...summary, cpuid: { ...report.cpuid } };
}
