// counter: one number in state under the key "value".

const KEY = 'value';

export function increment() {
  const value = (cloister.state.get(KEY) ?? 0) + 1;
  cloister.state.set(KEY, value);
  cloister.emit('Incremented', { value });
  return value;
}

export function get() {
  return cloister.state.get(KEY) ?? 0;
}
