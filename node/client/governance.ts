import { signTx, type Ed25519Signer, type JsonValue, type SignedTx } from '../../consensus/index.js';
import { CONSORTIUM_CONTRACT, systemTxGas, type ProposalState } from '../../contracts/index.js';
import type { ContractBundle } from '../../contracts/index.js';
import type { ReceiptView } from '../chain/api.js';

export type { ProposalState, ProposalView } from '../../contracts/index.js';

/** The members and the approvals a proposal needs (gov_members). */
export interface GovernanceMembersView {
  members: { id: string; publicKey: string }[];
  threshold: number;
  isMember: boolean;
}

/** A governance action as a proposal carries it (see the README's Governance section). */
export type GovernanceActionInput =
  | { type: 'deployContract'; name: string; bundle: ContractBundle; initArgs?: JsonValue[] }
  | { type: 'upgradeContract'; name: string; bundle: ContractBundle }
  | { type: 'retireContract'; name: string }
  | { type: 'addMember'; id: string; publicKey: string }
  | { type: 'removeMember'; id: string }
  | { type: 'setThreshold'; threshold: number }
  | { type: 'allowMeasurement'; platform: string; measurement: string }
  | { type: 'retireMeasurement'; platform: string; measurement: string }
  | { type: 'setPolicy'; policy: JsonValue }
  | { type: 'setConsensus'; params: Record<string, number> }
  | { type: 'addNode'; nodeId: string; voteKey: string }
  | { type: 'removeNode'; nodeId: string };

export type GovernanceMethod = 'propose' | 'vote' | 'withdraw';

/** A member's governance transaction to the system contract, with exactly the gas it uses. */
export function governanceTx(chainId: string, signer: Ed25519Signer, nonce: number, method: GovernanceMethod, args: JsonValue[]): SignedTx {
  return signTx({ chainId, from: signer.publicKey, nonce, contract: CONSORTIUM_CONTRACT, method, args, gasLimit: systemTxGas(args) }, signer);
}

/** A governance transaction that was included but refused (its receipt failed): the receipt's code says why (GOV_…). */
export class GovernanceTxFailed extends Error {
  override readonly name = 'GovernanceTxFailed';
  readonly code: string;
  constructor(readonly receipt: ReceiptView) {
    super(receipt.error?.message ?? 'the governance transaction failed');
    this.code = receipt.error?.code ?? 'FAILED';
  }
}

/** What a governance transaction did: its hash and receipt, and the proposal it made or moved ({id, state}). */
export interface GovernanceResult {
  hash: string;
  receipt: ReceiptView;
  proposal: { id: number; state: ProposalState };
}

export function governanceResult(hash: string, receipt: ReceiptView): GovernanceResult {
  if (receipt.status !== 'success') throw new GovernanceTxFailed(receipt);
  return { hash, receipt, proposal: receipt.result as unknown as GovernanceResult['proposal'] };
}
