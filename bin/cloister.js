#!/usr/bin/env node
// The cloister command: runs the compiled CLI (built by `npm install` through the prepare script).
import '../dist/node/cli/main.js';
