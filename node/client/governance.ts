import { signTx, type Ed25519Signer, type JsonValue, type SignedTx } from '../../consensus/index.js';
import { CONSORTIUM_CONTRACT, systemTxGas, type GovernanceAction, type ProposalState } from '../../contracts/index.js';
import type { ReceiptView } from '../chain/api.js';

export type { ProposalState, ProposalView } from '../../contracts/index.js';

/** The members and the approvals a proposal needs (gov_members). */
export interface GovernanceMembersView {
  members: { id: string; publicKey: string }[];
  threshold: number;
  isMember: boolean;
}

type DeployAction = Extract<GovernanceAction, { type: 'deployContract' }>;

/** A governance action as a proposal carries it (see the README's Governance section); a deployment's initArgs default to none. */
export type GovernanceActionInput = Exclude<GovernanceAction, DeployAction> | (Omit<DeployAction, 'initArgs'> & { initArgs?: JsonValue[] });

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
