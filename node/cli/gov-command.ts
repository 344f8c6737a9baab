import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Ed25519Signer, isHexOfLength, type JsonValue } from '../../consensus/index.js';
import { governanceTx, type GovernanceActionInput, type GovernanceMethod, type ProposalState } from '../client/index.js';
import { CliError, collect, parseJsonArg, parsePositiveInt } from './errors.js';
import { EXIT } from './exit-codes.js';
import { loadCheckedBundle } from './measure-commands.js';
import { awaitReceipt, linkTo, loadKey, print, rpcOption } from './rpc-commands.js';

const PROPOSAL_STATES: readonly ProposalState[] = ['open', 'accepted', 'rejected', 'withdrawn', 'expired', 'failed'];

/** The text before and after the first "=" of NAME=VALUE; both required. */
function pair(text: string, flag: string, shape: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) throw new CliError(`${flag} takes ${shape}: ${text}`);
  return [text.slice(0, at), text.slice(at + 1)];
}

function readJsonFile(file: string, flag: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return parseJsonArg(text, `${flag} ${file}`);
}

/** A member's public key: 64 hex characters, or a key file (from `cloister keys new`) whose public key is taken. */
function memberKey(text: string): string {
  if (isHexOfLength(text.toLowerCase(), 32)) return text.toLowerCase();
  return loadKey(text).publicKey;
}

interface ProposeOptions {
  rpc: string;
  key: string;
  deployContract: string[];
  upgradeContract: string[];
  retireContract: string[];
  addMember: string[];
  removeMember: string[];
  setThreshold?: number;
  addNode: string[];
  removeNode: string[];
  allowMeasurement: string[];
  retireMeasurement: string[];
  setPolicy?: string;
  setConsensus?: string;
  rotateSecret: boolean;
  approve: boolean;
  timeout: number;
}

/** The actions the flags name, in a fixed order (contracts, members, threshold, nodes, measurements, policy, parameters, secret). */
async function actionsOf(opts: ProposeOptions): Promise<GovernanceActionInput[]> {
  const actions: GovernanceActionInput[] = [];
  for (const spec of opts.deployContract) {
    const at = spec.indexOf('=');
    const dir = at < 0 ? spec : spec.slice(0, at);
    const initArgs = at < 0 ? [] : parseJsonArg(spec.slice(at + 1), `--deploy-contract ${dir}= init arguments`);
    if (!Array.isArray(initArgs)) throw new CliError(`--deploy-contract ${dir}=…: the init arguments must be a JSON array`);
    const bundle = await loadCheckedBundle(dir);
    actions.push({ type: 'deployContract', name: bundle.manifest.name, bundle, initArgs: initArgs as JsonValue[] });
  }
  for (const spec of opts.upgradeContract) {
    const [name, dir] = pair(spec, '--upgrade-contract', 'NAME=DIR');
    actions.push({ type: 'upgradeContract', name, bundle: await loadCheckedBundle(dir) });
  }
  for (const name of opts.retireContract) actions.push({ type: 'retireContract', name });
  for (const spec of opts.addMember) {
    const [id, key] = pair(spec, '--add-member', 'NAME=KEY (a public key in hex, or a key file)');
    actions.push({ type: 'addMember', id, publicKey: memberKey(key) });
  }
  for (const id of opts.removeMember) actions.push({ type: 'removeMember', id });
  if (opts.setThreshold !== undefined) actions.push({ type: 'setThreshold', threshold: opts.setThreshold });
  for (const file of opts.addNode) {
    const node = readJsonFile(file, '--add-node') as { nodeId?: unknown; voteKey?: unknown };
    if (typeof node.nodeId !== 'string' || typeof node.voteKey !== 'string') throw new CliError(`--add-node ${file}: the JSON \`cloister node init\` printed, with "nodeId" and "voteKey"`);
    actions.push({ type: 'addNode', nodeId: node.nodeId, voteKey: node.voteKey });
  }
  for (const nodeId of opts.removeNode) actions.push({ type: 'removeNode', nodeId });
  for (const [flag, list, type] of [
    ['--allow-measurement', opts.allowMeasurement, 'allowMeasurement'],
    ['--retire-measurement', opts.retireMeasurement, 'retireMeasurement'],
  ] as const) {
    for (const spec of list) {
      const [platform, measurement] = pair(spec, flag, 'PLATFORM=HEX');
      actions.push({ type, platform, measurement: measurement.toLowerCase() });
    }
  }
  if (opts.setPolicy !== undefined) actions.push({ type: 'setPolicy', policy: readJsonFile(opts.setPolicy, '--set-policy') as JsonValue });
  if (opts.setConsensus !== undefined) {
    const params = readJsonFile(opts.setConsensus, '--set-consensus');
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new CliError(`--set-consensus ${opts.setConsensus}: a JSON object of consensus parameters`);
    actions.push({ type: 'setConsensus', params: params as Record<string, number> });
  }
  if (opts.rotateSecret) actions.push({ type: 'rotateSecret' });
  if (actions.length === 0) throw new CliError('name at least one action (--deploy-contract, --add-member, … see --help)');
  return actions;
}

/**
 * Signs a governance transaction with the member's key, sends it, waits for
 * its block and prints the proposal as it then stands. A refusal by the node
 * (not a member, an invalid action, a closed proposal) is one line with its
 * code and exit 1; a refusal in the block, exit 3.
 */
async function submit(opts: { rpc: string; key: string; timeout: number }, method: GovernanceMethod, args: JsonValue[]): Promise<void> {
  const signer = new Ed25519Signer(loadKey(opts.key).privateKey);
  const node = linkTo(opts.rpc);
  const { chainId } = await node.ask('reading the chain id', (c) => c.status());
  const nonce = await node.ask("asking for the member's next nonce", (c) => c.getNonce(signer.publicKey));
  const tx = governanceTx(chainId, signer, nonce, method, args);
  const hash = await node.ask(`sending the ${method} transaction (it may have been accepted)`, (c) => c.sendTransaction(tx), EXIT.TX_OUTCOME_UNKNOWN);
  const receipt = await awaitReceipt(node, hash, opts.timeout);
  if (receipt.status !== 'success') {
    throw new CliError(`${method} was committed in block ${receipt.blockHeight} but refused: ${receipt.error?.code}: ${receipt.error?.message}`, EXIT.TX_FAILED);
  }
  const { id } = receipt.result as { id: number };
  const proposal = await node.ask(`reading proposal ${id}`, (c) => c.getProposal(id));
  print(proposal);
  if (proposal.state === 'open') {
    process.stderr.write(`proposal ${id} is open (${proposal.approvals} of ${proposal.required} approvals): members vote with \`cloister gov vote --rpc URL --key MEMBER.json --proposal ${id} --approve\`\n`);
  }
  if (proposal.state === 'failed') throw new CliError(`proposal ${id} passed but failed to apply: ${proposal.failure}`, EXIT.TX_FAILED);
}

function proposalId(text: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1) throw new CliError(`--proposal must be a proposal id (a positive integer): ${text}`);
  return id;
}

const memberOptions = (cmd: Command): Command =>
  cmd
    .addOption(rpcOption())
    .requiredOption('--key <file>', "the member's key file (a devnet's member-N.json, `cloister dev`'s member.json)")
    .option('--timeout <ms>', 'how long to wait for the block', parsePositiveInt, 60_000);

export function registerGovCommands(program: Command, contract: Command): void {
  const gov = program.command('gov').description("the consortium's governance: members propose changes and vote on them");
  memberOptions(
    gov
      .command('propose')
      .description('propose one or more actions (applied together, in this order, once enough members approve); prints the proposal with its id and state'),
  )
    .option('--deploy-contract <dir[=initArgs]>', 'deploy a contract bundle (named by its manifest), with its init arguments as a JSON array; repeatable', collect, [])
    .option('--upgrade-contract <name=dir>', 'replace a contract\'s code, keeping its state; repeatable', collect, [])
    .option('--retire-contract <name>', 'retire a contract (its name is not used again); repeatable', collect, [])
    .option('--add-member <name=key>', 'add a member: its ed25519 public key in hex, or its key file; repeatable', collect, [])
    .option('--remove-member <name>', 'remove a member; repeatable', collect, [])
    .option('--set-threshold <n>', 'approvals a proposal needs (default: a strict majority of the members)', parsePositiveInt)
    .option('--add-node <file>', 'add a validator: the JSON `cloister node init` printed; repeatable', collect, [])
    .option('--remove-node <id>', 'remove a validator by node id; repeatable', collect, [])
    .option('--allow-measurement <platform=hex>', 'allow an enclave measurement; repeatable', collect, [])
    .option('--retire-measurement <platform=hex>', 'retire an enclave measurement: nodes running it are refused at their next admission check; repeatable', collect, [])
    .option('--set-policy <file>', 'replace the attestation policy (JSON)')
    .option('--set-consensus <file>', 'change consensus parameters (a JSON object of the ones to change)')
    .option('--rotate-secret', 'rotate the consortium secret', false)
    .option('--approve', 'approve it with the same transaction (the proposer votes like everyone else)', false)
    .action(async (opts: ProposeOptions) => {
      const actions = await actionsOf(opts);
      await submit(opts, 'propose', opts.approve ? [actions as unknown as JsonValue, true] : [actions as unknown as JsonValue]);
    });
  memberOptions(gov.command('vote').description("approve or reject a proposal; prints the proposal after the vote (accepted when this vote decided it)"))
    .requiredOption('--proposal <id>', 'the proposal', proposalId)
    .option('--approve', 'approve it', false)
    .option('--reject', 'reject it', false)
    .action(async (opts: { rpc: string; key: string; timeout: number; proposal: number; approve: boolean; reject: boolean }) => {
      if (opts.approve === opts.reject) throw new CliError('give exactly one of --approve and --reject');
      await submit(opts, 'vote', [opts.proposal, opts.approve]);
    });
  memberOptions(gov.command('withdraw').description('withdraw an open proposal you made'))
    .requiredOption('--proposal <id>', 'the proposal', proposalId)
    .action(async (opts: { rpc: string; key: string; timeout: number; proposal: number }) => {
      await submit(opts, 'withdraw', [opts.proposal]);
    });
  gov
    .command('list')
    .description('print the proposals, newest first (at most 100), as JSON')
    .addOption(rpcOption())
    .option('--state <state>', `only proposals in this state: ${PROPOSAL_STATES.join(', ')}`)
    .action(async (opts: { rpc: string; state?: string }) => {
      if (opts.state !== undefined && !PROPOSAL_STATES.includes(opts.state as ProposalState)) {
        throw new CliError(`--state must be one of ${PROPOSAL_STATES.join(', ')}: ${opts.state}`);
      }
      const node = linkTo(opts.rpc);
      print(await node.ask('listing the proposals', (c) => c.listProposals(opts.state as ProposalState | undefined)));
    });
  gov
    .command('show')
    .description('print a proposal (actions, votes, tally, state) as JSON')
    .addOption(rpcOption())
    .requiredOption('--proposal <id>', 'the proposal', proposalId)
    .action(async (opts: { rpc: string; proposal: number }) => {
      const node = linkTo(opts.rpc);
      print(await node.ask(`reading proposal ${opts.proposal}`, (c) => c.getProposal(opts.proposal)));
    });
  gov
    .command('view')
    .description('print the chain view the next block runs under (validators, policy, consensus parameters, members), as JSON: save it from your own node for `--chain-view`')
    .addOption(rpcOption())
    .action(async (opts: { rpc: string }) => {
      const node = linkTo(opts.rpc);
      print(await node.ask('reading the chain view', (c) => c.chainView()));
    });
  gov
    .command('members')
    .description('print the members and the approvals a proposal needs, as JSON')
    .addOption(rpcOption())
    .action(async (opts: { rpc: string }) => {
      const node = linkTo(opts.rpc);
      print(await node.ask('reading the members', (c) => c.members()));
    });

  memberOptions(
    contract
      .command('deploy <dir>')
      .description(
        'propose deploying a contract bundle, with your approval: it is deployed at once where you alone are enough (as in `cloister dev`), else when enough members approve',
      ),
  )
    .option('--init-args <json>', "the contract's init arguments as a JSON array", '[]')
    .action(async (dir: string, opts: { rpc: string; key: string; timeout: number; initArgs: string }) => {
      const initArgs = parseJsonArg(opts.initArgs, '--init-args');
      if (!Array.isArray(initArgs)) throw new CliError('--init-args must be a JSON array');
      const bundle = await loadCheckedBundle(dir);
      const action: GovernanceActionInput = { type: 'deployContract', name: bundle.manifest.name, bundle, initArgs: initArgs as JsonValue[] };
      await submit(opts, 'propose', [[action] as unknown as JsonValue, true]);
    });
  memberOptions(
    contract
      .command('upgrade <name> <dir>')
      .description("propose replacing a deployed contract's code (its state is kept), with your approval: applied at once where you alone are enough"),
  ).action(async (name: string, dir: string, opts: { rpc: string; key: string; timeout: number }) => {
    const action: GovernanceActionInput = { type: 'upgradeContract', name, bundle: await loadCheckedBundle(dir) };
    await submit(opts, 'propose', [[action] as unknown as JsonValue, true]);
  });
}
