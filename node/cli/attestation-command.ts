import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import {
  AttestationError,
  checkReportData,
  evaluatePolicy,
  reportDataFor,
  verifyEvidence,
  type AttestationPolicy,
  type AttestationResult,
  type PolicyDecision,
  type SgxCollateral,
} from '../../attestation/index.js';
import type { EvidenceView } from '../client/index.js';
import { CliError } from './errors.js';
import { NodeLink } from './rpc-commands.js';

interface VerifyCliOptions {
  endorsement: string[];
  jwks?: string;
  collateral: string[];
  at?: string;
  policy?: string;
  virtualRoot: string[];
  genesis?: string;
  rpc?: string;
  json: boolean;
}

function readFileOrFail(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new CliError(`cannot read ${what} ${path}`);
  }
}

/**
 * Evidence as `cloister` tools hand it out may be wrapped: the JSON of
 * tee_getEvidence ({"evidence": "<base64>", "platform": …}). Unwrap it. A
 * root the wrapper names (`virtualRoot`) is never trusted: whoever made the
 * evidence could have made that root too. Roots come from --virtual-root or
 * --genesis only.
 */
function unwrapNodeEvidence(bytes: Buffer): { evidence: Uint8Array; declaredRoot: boolean } {
  if (bytes[0] !== 0x7b) return { evidence: bytes, declaredRoot: false };
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { evidence?: unknown; virtualRoot?: unknown; platform?: unknown };
    if (typeof parsed.evidence === 'string' && typeof parsed.platform === 'string') {
      return { evidence: Buffer.from(parsed.evidence, 'base64'), declaredRoot: parsed.virtualRoot !== undefined };
    }
  } catch {
    // not JSON: leave it to format detection
  }
  return { evidence: bytes, declaredRoot: false };
}

/** The trust anchor a genesis gives: its declared virtual roots and its attestation policy. */
interface GenesisTrust {
  chainId: string;
  validators: { nodeId: string; voteKey: string }[];
  virtualRoots: string[];
  policy: AttestationPolicy;
}

function readGenesisTrust(path: string): GenesisTrust {
  let genesis: { chainId?: unknown; validators?: unknown; enclave?: { virtualRoots?: unknown }; policy?: unknown };
  try {
    genesis = JSON.parse(readFileOrFail(path, 'genesis').toString('utf8')) as typeof genesis;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`${path} is not JSON`);
  }
  const roots = genesis?.enclave?.virtualRoots;
  if (!Array.isArray(roots) || !roots.every((r) => typeof r === 'string') || typeof genesis.policy !== 'object' || genesis.policy === null) {
    throw new CliError(`${path} is not a Cloister genesis (enclave.virtualRoots and policy)`);
  }
  const validators = Array.isArray(genesis.validators) ? (genesis.validators as { nodeId: string; voteKey: string }[]) : [];
  return { chainId: typeof genesis.chainId === 'string' ? genesis.chainId : '', validators, virtualRoots: roots as string[], policy: genesis.policy as AttestationPolicy };
}

/** What a live challenge (--rpc) fetched: the evidence, and what its report_data must bind. */
interface Challenged {
  view: EvidenceView;
  nonce: string;
}

async function challengeNode(url: string): Promise<Challenged> {
  const nonce = randomBytes(32).toString('hex');
  const link = new NodeLink(url);
  const view = await link.ask('asking for fresh evidence', (client) => client.getEvidence(nonce));
  return { view, nonce };
}

/**
 * Beyond the evidence itself: it answers our nonce, binds the keys the node
 * showed to that node, the genesis's chain and the nonce, and the vote key is
 * the one the genesis lists for the node. Throws AttestationError.
 */
function checkChallenge(result: AttestationResult, { view, nonce }: Challenged, genesis: GenesisTrust): void {
  if (view.freshness !== nonce) throw new AttestationError('REPORT_DATA_MISMATCH', 'the node answered with evidence for another challenge');
  checkReportData(result, reportDataFor({ publicKeys: view.publicKeys, chainId: genesis.chainId, nodeId: view.nodeId, freshness: nonce }));
  const validator = genesis.validators.find((v) => v.nodeId === view.nodeId);
  if (!validator) throw new AttestationError('REPORT_DATA_MISMATCH', `node ${view.nodeId} is not a validator of this genesis`);
  if (validator.voteKey !== view.publicKeys.vote) {
    throw new AttestationError('REPORT_DATA_MISMATCH', `the enclave's vote key ${String(view.publicKeys.vote)} is not the one the genesis lists for node ${view.nodeId}`);
  }
}

/** A virtual root file is a PEM, or the virtual-root.json of a dev data directory. */
function readVirtualRoot(path: string): string {
  const text = readFileOrFail(path, 'virtual root').toString('utf8');
  if (text.trimStart().startsWith('{')) {
    const parsed = JSON.parse(text) as { publicKeyPem?: string };
    if (typeof parsed.publicKeyPem !== 'string') throw new CliError(`${path} has no publicKeyPem`);
    return parsed.publicKeyPem;
  }
  return text;
}

/**
 * SGX collateral from a directory: tcbinfo*.json (TCB info; several allowed, the
 * one for the quote's FMSPC is used), qe_identity*.json / qeidentity*.json,
 * *crl*.der|pem (CRLs), tcb_signing*.der|pem (the TCB signing chain).
 */
function readCollateralDir(dir: string): { tcbInfos: string[]; base: Omit<SgxCollateral, 'tcbInfo'> } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  } catch {
    throw new CliError(`cannot read collateral directory ${dir}`);
  }
  const read = (n: string): Buffer => readFileSync(join(dir, n));
  const lower = (n: string): string => n.toLowerCase();
  const tcbInfos = names.filter((n) => lower(n).startsWith('tcbinfo') && lower(n).endsWith('.json')).map((n) => read(n).toString('utf8'));
  const qe = names.find((n) => /^qe_?identity.*\.json$/i.test(n));
  const crls = names.filter((n) => /crl/i.test(n) && /\.(der|pem|crl)$/i.test(n)).map((n) => new Uint8Array(read(n)));
  const signing = names.filter((n) => /tcb_?signing/i.test(n)).map((n) => new Uint8Array(read(n)));
  return {
    tcbInfos,
    base: {
      ...(qe ? { qeIdentity: read(qe).toString('utf8') } : {}),
      ...(crls.length > 0 ? { crls } : {}),
      ...(signing.length > 0 ? { tcbSigningChain: signing } : {}),
    },
  };
}

function verifyWithCollateral(
  evidence: Uint8Array,
  options: Parameters<typeof verifyEvidence>[1],
  collateral: ReturnType<typeof readCollateralDir> | undefined,
): AttestationResult {
  if (!collateral) return verifyEvidence(evidence, options);
  collateral = withSigningCertAt(collateral, options.now);
  if (collateral.tcbInfos.length === 0) return verifyEvidence(evidence, { ...options, collateral: collateral.base });
  // Several TCB info files: use the one for this platform's FMSPC (the others fail as COLLATERAL_MISSING).
  let last: unknown;
  for (const tcbInfo of collateral.tcbInfos) {
    try {
      return verifyEvidence(evidence, { ...options, collateral: { ...collateral.base, tcbInfo } });
    } catch (err) {
      last = err;
      if (!(err instanceof AttestationError) || err.code !== 'COLLATERAL_MISSING') throw err;
    }
  }
  throw last;
}

export function registerAttestationCommand(program: Command): void {
  const attestation = program.command('attestation').description('attestation evidence');
  attestation
    .command('verify [file]')
    .description(
      'verify attestation evidence: SEV-SNP report (raw, hex, Azure HCL), SGX/TDX DCAP quote (raw, hex, Open Enclave, Azure JSON), ' +
        'Azure Attestation JWT, or Cloister virtual evidence; exits 0 when verified (and accepted by --policy), 1 otherwise',
    )
    .option('--endorsement <file>', 'SEV-SNP VCEK/VLEK certificate (DER or PEM), optionally with its ASK/ARK chain; repeatable', collect, [])
    .option('--jwks <file>', "the Azure Attestation issuer's signing key set (JSON)")
    .option('--collateral <dir>', 'SGX collateral: tcbinfo*.json, qe_identity*.json, *crl*.der, tcb_signing*; repeatable', collect, [])
    .option('--at <iso-time>', 'evaluation time (default: now)')
    .option('--policy <file>', 'attestation policy (JSON) to evaluate the verified evidence against')
    .option('--virtual-root <file>', 'a declared virtual vendor root (PEM, or a dev virtual-root.json); repeatable', collect, [])
    .option('--genesis <file>', "a consortium's genesis: trust its declared virtual roots, and evaluate its policy (unless --policy)")
    .option('--rpc <url>', "instead of a file: challenge a running node with a random nonce and check its fresh evidence and what it binds (needs --genesis)")
    .option('--json', 'print one JSON object', false)
    .action(async (file: string | undefined, opts: VerifyCliOptions) => {
      const now = opts.at === undefined ? new Date() : new Date(opts.at);
      if (Number.isNaN(now.getTime())) throw new CliError(`--at is not an ISO time: ${opts.at}`);
      if (opts.rpc !== undefined && file !== undefined) throw new CliError('give an evidence FILE or --rpc URL, not both');
      if (opts.rpc === undefined && file === undefined) throw new CliError('an evidence FILE or --rpc URL is needed');
      if (opts.rpc !== undefined && opts.genesis === undefined) throw new CliError('--rpc needs --genesis FILE: the trust anchor the node is checked against');
      const genesis = opts.genesis === undefined ? undefined : readGenesisTrust(opts.genesis);
      const challenged = opts.rpc === undefined ? undefined : await challengeNode(opts.rpc);
      const { evidence, declaredRoot } = challenged
        ? { evidence: new Uint8Array(Buffer.from(challenged.view.evidence, 'base64')), declaredRoot: challenged.view.virtualRoot !== undefined }
        : unwrapNodeEvidence(readFileOrFail(file!, 'evidence file'));
      const virtualRoots = [...opts.virtualRoot.map(readVirtualRoot), ...(genesis?.virtualRoots ?? [])];
      if (declaredRoot && !opts.json && !challenged) {
        process.stderr.write('note: the virtualRoot inside the evidence file is ignored; trusted roots come from --virtual-root or --genesis\n');
      }
      let policy: AttestationPolicy | undefined = genesis?.policy;
      if (opts.policy) {
        try {
          policy = JSON.parse(readFileOrFail(opts.policy, 'policy').toString('utf8')) as AttestationPolicy;
        } catch (err) {
          if (err instanceof CliError) throw err;
          throw new CliError(`${opts.policy} is not JSON`);
        }
      }
      const options: Parameters<typeof verifyEvidence>[1] = {
        now,
        trustedRoots: { virtual: virtualRoots },
        ...(opts.endorsement.length > 0 ? { endorsements: opts.endorsement.map((f) => new Uint8Array(readFileOrFail(f, 'endorsement'))) } : {}),
        ...(opts.jwks ? { jwks: readFileOrFail(opts.jwks, 'key set').toString('utf8') } : {}),
      };
      const collateral = opts.collateral.length > 0 ? mergeCollateral(opts.collateral.map(readCollateralDir)) : undefined;

      let result: AttestationResult | undefined;
      let failure: { code: string; message: string } | undefined;
      let decision: PolicyDecision | undefined;
      try {
        result = verifyWithCollateral(evidence, options, collateral);
        if (challenged) checkChallenge(result, challenged, genesis!);
        if (policy) decision = evaluatePolicy(result, policy, { now });
      } catch (err) {
        failure =
          err instanceof AttestationError ? { code: err.code, message: err.message } : { code: 'INTERNAL_ERROR', message: String(err) };
      }
      const accepted = result !== undefined && failure === undefined && (decision === undefined || decision.accepted);
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            verified: result !== undefined && failure === undefined,
            accepted,
            platform: result?.platform ?? null,
            measurement: result?.measurement ?? null,
            reportData: result?.reportData ?? null,
            debug: result?.debug ?? null,
            tcb: result?.tcb ?? null,
            evaluatedAt: now.toISOString(),
            ...(challenged ? { challenge: { nodeId: challenged.view.nodeId, nonce: challenged.nonce } } : {}),
            ...(result ? { result } : {}),
            ...(failure ? { error: failure } : {}),
            ...(decision ? { policy: decision } : {}),
          }) + '\n',
        );
      } else if (result && !failure) {
        process.stdout.write(
          [
            `verified: ${result.platform}`,
            `measurement: ${result.measurement}`,
            `reportData: ${result.reportData}`,
            `debug: ${result.debug}`,
            `signingKey: ${result.signingKey}`,
            ...(result.validity ? [`valid: ${result.validity.notBefore} .. ${result.validity.notAfter}`] : []),
            ...(decision ? [decision.accepted ? 'policy: accepted' : `policy: refused`] : []),
            ...(decision && !decision.accepted ? decision.reasons.map((r) => `  ${r.code}: ${r.message}`) : []),
          ].join('\n') + '\n',
        );
      }
      if (failure) {
        if (!opts.json) process.stderr.write(`not verified: ${failure.code}: ${failure.message}\n`);
        process.exitCode = 1;
      } else if (decision && !decision.accepted) {
        if (!opts.json) process.stderr.write(`refused by policy: ${decision.reasons.map((r) => r.code).join(', ')}\n`);
        process.exitCode = 1;
      }
    });
}

/** Intel rotates the TCB Signing certificate: of several given, use the one valid at the evaluation time. */
function withSigningCertAt(collateral: ReturnType<typeof readCollateralDir>, now: Date): ReturnType<typeof readCollateralDir> {
  const chain = collateral.base.tcbSigningChain ?? [];
  if (chain.length <= 1) return collateral;
  const valid = chain.filter((der) => {
    try {
      const cert = new X509Certificate(der);
      return new Date(cert.validFrom) <= now && now <= new Date(cert.validTo);
    } catch {
      return false;
    }
  });
  return { ...collateral, base: { ...collateral.base, tcbSigningChain: [valid[0] ?? chain[0]!] } };
}

function mergeCollateral(parts: ReturnType<typeof readCollateralDir>[]): ReturnType<typeof readCollateralDir> {
  const tcbInfos = parts.flatMap((p) => p.tcbInfos);
  const qeIdentity = parts.find((p) => p.base.qeIdentity)?.base.qeIdentity;
  const crls = parts.flatMap((p) => [...(p.base.crls ?? [])]);
  const signing = parts.flatMap((p) => [...(p.base.tcbSigningChain ?? [])]);
  return {
    tcbInfos,
    base: {
      ...(qeIdentity ? { qeIdentity } : {}),
      ...(crls.length > 0 ? { crls } : {}),
      ...(signing.length > 0 ? { tcbSigningChain: signing } : {}),
    },
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
