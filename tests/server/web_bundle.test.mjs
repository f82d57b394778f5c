// web/dist/index.html (committed, embedded by the build) is what `npm run build` makes of web/src today: the bundle
// is rebuilt in memory with the pinned esbuild and compared byte for byte. Skipped, saying why, where
// web/node_modules (installed by scripts/setup.sh) is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE_DIR = process.env.DS_SOURCE_DIR;
assert.ok(SOURCE_DIR, 'DS_SOURCE_DIR must be set (run through ctest)');
const WEB = path.join(SOURCE_DIR, 'web');
const why = fs.existsSync(path.join(WEB, 'node_modules/esbuild/package.json')) ? null
  : 'web/node_modules is not installed (scripts/setup.sh runs `npm ci` there)';
if (why) console.log('web_bundle: SKIPPED: ' + why);

test('web/dist/index.html is up to date with web/src', { skip: why || false }, () => {
  const r = spawnSync(process.execPath, [path.join(WEB, 'build.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
