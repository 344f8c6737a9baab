import '../node/polyfills.js';
