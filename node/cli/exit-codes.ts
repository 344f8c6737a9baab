/**
 * The exit statuses of the cloister commands, as the README's CLI section
 * documents them. Scripts branch on them: 2 means nothing reached the node (safe
 * to retry), 3 and 4 that a transaction was sent (do not simply send it again).
 */
export const EXIT = {
  /** Done; for `tx send --wait`, the transaction committed with status "success". */
  OK: 0,
  /** Any other error: bad arguments, a key file, an error answer from the node, a connection lost after the node answered. */
  ERROR: 1,
  /** The node could not be reached at all: connection refused, DNS, or no answer to the first request in time. */
  UNREACHABLE: 2,
  /** `tx send --wait`: the transaction committed, but its receipt's status is "failed" (the receipt is printed). */
  TX_FAILED: 3,
  /** `tx send`: the transaction was (or may have been) sent, but no receipt came: `--wait` timed out or the node stopped answering. */
  TX_OUTCOME_UNKNOWN: 4,
  /** `audit`: the audit ran and found something (a node unreachable, a measurement that differs…); each finding is named. */
  AUDIT_FINDINGS: 5,
  /** `receipt verify`, `state verify`, `call --prove`, `ledger verify`: the proof or the ledger does not verify (the message names the check). */
  PROOF_INVALID: 6,
} as const;
