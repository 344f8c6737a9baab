// token: balances under "balance:<address>", the minter under "owner", the
// total under "supply". A zero balance is deleted rather than stored.

const ADDRESS_RE = /^[0-9a-f]{64}$/;
const OWNER_KEY = 'owner';
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

export function init(owner) {
  requireAddress(owner, 'owner');
  cloister.state.set(OWNER_KEY, owner);
  cloister.state.set(SUPPLY_KEY, 0);
}

export function mint(to, amount) {
  requireAddress(to, 'to');
  requireAmount(amount);
  if (cloister.caller !== cloister.state.get(OWNER_KEY)) throw new Error('only the owner may mint');
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

export function owner() {
  return cloister.state.get(OWNER_KEY);
}

export function totalSupply() {
  return cloister.state.get(SUPPLY_KEY) ?? 0;
}
