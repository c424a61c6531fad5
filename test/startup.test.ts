// Start-up as an operator meets it: a bad setting stops the process with a message naming it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('start-up', () => {
  for (const [name, value] of [['PORT', 'eighty'], ['TOAPIS_BASE_URL', 'not a url'], ['POLL_LEASE_MS', '10']] as const) {
    it(`stops with exit code 1 and names ${name} when it is ${JSON.stringify(value)}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'seedance-startup-'));
      try {
        const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
          cwd: root,
          env: { PATH: process.env.PATH, DATABASE_URL: join(dir, 'db.sqlite'), [name]: value },
          encoding: 'utf8',
          timeout: 30_000,
        });
        assert.equal(result.status, 1, result.stderr);
        assert.match(result.stderr, new RegExp(`${name}:`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
