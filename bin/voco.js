#!/usr/bin/env node
// `npx voco ...`: the command line (cli/main.ts), compiled on the fly by tsx (a dependency).
require('tsx/cjs');
require('../cli/main.ts');
