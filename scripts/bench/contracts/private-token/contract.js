// private-token: contracts/examples/token as a confidential contract, for the
// confidential benchmark (`npm run bench -- --confidential`). Balances under
// "balance:<address>", the minter under "issuer", the total under "supply"; a
// zero balance is deleted rather than stored. The state is stored sealed.
//
// A confidential contract cannot write state at genesis (there is no consortium
// secret yet), so there is no init: the first caller of mint becomes the issuer,
// and only the issuer may mint afterwards. transfer and balanceOf are token's,
// line for line (same checks, same state reads and writes, so the same gas):
// the benchmark compares the two like with like.

const ADDRESS_RE = /^[0-9a-f]{64}$/;
const ISSUER_KEY = 'issuer';
const SUPPLY_KEY = 'supply';

function balanceKey(address) {
  return 'balance:' + address;
}

function requireAddress(value, what) {
  if (typeof value !== 'string' || !ADDRESS_RE.test(value)) {
    throw new Error(what + ' must be an ed25519 public key: 64 lowercase hex characters');
  }
  return value;
}

function requireAmount(value) {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new Error('amount must be a positive safe integer');
  }
  return value;
}

function balance(address) {
  return cloister.state.get(balanceKey(address)) ?? 0;
}

function setBalance(address, amount) {
  cloister.state.set(balanceKey(address), amount === 0 ? null : amount);
}

export function mint(to, amount) {
  requireAddress(to, 'to');
  requireAmount(amount);
  const issuer = cloister.state.get(ISSUER_KEY);
  if (issuer === null) cloister.state.set(ISSUER_KEY, cloister.caller);
  else if (cloister.caller !== issuer) throw new Error('only the issuer may mint');
  const supply = cloister.state.get(SUPPLY_KEY) ?? 0;
  if (amount > Number.MAX_SAFE_INTEGER - supply) throw new Error('the total supply would exceed 2^53 - 1');
  const next = balance(to) + amount;
  cloister.state.set(SUPPLY_KEY, supply + amount);
  setBalance(to, next);
  cloister.emit('Minted', { to, amount });
  return next;
}

export function transfer(to, amount) {
  requireAddress(to, 'to');
  requireAmount(amount);
  const from = cloister.caller;
  const fromBalance = balance(from);
  if (fromBalance < amount) throw new Error('insufficient balance');
  if (from !== to) {
    setBalance(from, fromBalance - amount);
    setBalance(to, balance(to) + amount);
  }
  cloister.emit('Transfer', { from, to, amount });
  return true;
}

export function balanceOf(address) {
  return balance(requireAddress(address, 'address'));
}

export function issuer() {
  return cloister.state.get(ISSUER_KEY);
}

export function totalSupply() {
  return cloister.state.get(SUPPLY_KEY) ?? 0;
}
