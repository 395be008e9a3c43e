// validate.mjs runs the Khronos glTF-Validator on each file named on the
// command line and prints one JSON document on stdout:
//
//   {"version": "<validator version>", "reports": [{"file": "...", "report": {...}}]}
//
// External resources (buffers, images) are resolved relative to the folder of
// the file that references them, as an engine would. The exit status is 0
// whenever every file could be read and validated, whatever the issues found;
// the Go tests in exporters/gltf judge the reports. Any other failure (missing
// file, validator not installed) exits 1 with the reason on stderr.
//
// Set-up (idempotent): npm install --no-audit --no-fund  (in this folder)

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

let validator;
try {
  validator = require('gltf-validator');
} catch (err) {
  process.stderr.write(
    'gltf-validator is not installed: run `npm install --no-audit --no-fund` in ' +
      here + '\n');
  process.exit(1);
}

// The pinned version lives in package.json; refuse a stale install so every
// machine judges exported files with the same rules.
const wanted = require('./package.json').dependencies['gltf-validator'];
if (validator.version() !== wanted) {
  process.stderr.write(
    `gltf-validator ${validator.version()} is installed but package.json pins ${wanted}: ` +
      'run `npm install --no-audit --no-fund` in ' +
      here + '\n');
  process.exit(1);
}

async function validate(file) {
  const data = await readFile(file);
  const dir = path.dirname(path.resolve(file));
  return validator.validateBytes(new Uint8Array(data), {
    uri: path.basename(file),
    maxIssues: 0,
    writeTimestamp: false,
    externalResourceFunction: async (uri) => {
      const bytes = await readFile(path.resolve(dir, decodeURIComponent(uri)));
      return new Uint8Array(bytes);
    },
  });
}

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: node validate.mjs FILE.gltf|FILE.glb...\n');
  process.exit(2);
}

try {
  const reports = [];
  for (const file of files) {
    reports.push({ file, report: await validate(file) });
  }
  process.stdout.write(JSON.stringify({ version: validator.version(), reports }) + '\n');
} catch (err) {
  process.stderr.write(`validate: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}
