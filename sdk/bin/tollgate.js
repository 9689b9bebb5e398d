#!/usr/bin/env node
// Committed shim so npm can link the bin before the TypeScript build has run.
import "../dist/cli/main.js";
