// Every other node: module, in the explorer's browser build of the verifier: the modules of the shared
// code that import them are bundled, but nothing on the verifier's path calls them.
'use strict';
module.exports = new Proxy(
  {},
  {
    get(_target, name) {
      if (name === '__esModule' || typeof name === 'symbol') return undefined;
      return function unavailable() {
        throw new Error(`node module function ${String(name)} is not available in the browser`);
      };
    },
  },
);
