// The API-key CLI as the README gives it (`npm run keys -- create NAME [--role admin]`, `list`,
// `revoke ID|NAME`), run as a user would against a SQLite file, and a service on that same file
// honouring what it did. The file holds only hashes of the keys.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { buildApp, type App } from '../src/app.ts';
import { startSandboxServer } from '../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY, sandboxAccounts } from '../src/upstream/providers.ts';
import { memoryLogger, post, testConfig } from './support/hardening-clients.ts';

const PROJECT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

interface CliResult { code: number; stdout: string; stderr: string }

describe('npm run keys', () => {
  let dir: string;
  let databaseFile: string;
  const keys: Record<string, { id: string; key: string }> = {};

  /** `npm run keys -- <args>` in the project folder, with DATABASE_URL pointing at the test's file. */
  function keysCli(...args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile('npm', ['run', 'keys', '--', ...args], {
        cwd: PROJECT_DIR,
        env: { ...process.env, DATABASE_URL: databaseFile, LOG_LEVEL: 'silent' },
        timeout: 30_000,
      }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function create(name: string, ...extra: string[]): Promise<{ id: string; key: string; stdout: string }> {
    const result = await keysCli('create', name, ...extra);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const key = /^key: (sgk_[A-Za-z0-9_-]+)$/m.exec(result.stdout)?.[1];
    const id = /\(id ([0-9a-f-]{36})\)/.exec(result.stdout)?.[1];
    assert.ok(key && id, result.stdout);
    keys[name] = { id, key };
    return { id, key, stdout: result.stdout };
  }

  /** A service built on the same database file, API keys required. */
  async function startService(): Promise<{ url: string; app: App; stop(): Promise<void> }> {
    const config = testConfig(dir, { ANONYMOUS_ACCESS: 'false', DATABASE_URL: databaseFile });
    const sandbox = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 0.01, port: 0 });
    const app = buildApp({ config, logger: memoryLogger('silent').logger, accounts: sandboxAccounts(sandbox.url) });
    const url = await app.start(0, '127.0.0.1');
    return { url, app, async stop() { await app.stop(); await sandbox.close(); } };
  }

  const statusWith = async (url: string, key: string) => (await post(url, '{ videoModels { id } }', undefined, { key })).status;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'seedance-keys-cli-'));
    databaseFile = join(dir, 'keys.sqlite');
  });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('create NAME prints a client key once, with its id and how to send it', async () => {
    const { key, stdout } = await create('alice');
    assert.match(stdout, /created client key "alice"/);
    assert.equal(stdout.split(key).length - 1, 1, 'the key is printed exactly once');
    assert.match(stdout, /Authorization: Bearer <key>/);
    assert.match(stdout, /only its hash is kept/);
  });

  it('create NAME --role admin (either order) makes an admin key', async () => {
    // Three users at once: the file is shared, each write waits for the others.
    const [rootOps, nightOps, bob] = await Promise.all([
      create('root-ops', '--role', 'admin'),
      keysCli('create', '--role', 'admin', 'night-ops'),
      create('bob', '--role', 'client'),
    ]);
    assert.match(rootOps.stdout, /created admin key "root-ops"/);
    assert.equal(nightOps.code, 0, nightOps.stderr);
    assert.match(nightOps.stdout, /created admin key "night-ops"/);
    assert.match(bob.stdout, /created client key "bob"/);
  });

  it('refuses a duplicate name, a missing name and an unknown role', async () => {
    // None of them writes: run side by side.
    const [duplicate, missing, badRole] = await Promise.all([
      keysCli('create', 'alice'),
      keysCli('create'),
      keysCli('create', 'mallory', '--role', 'root'),
    ]);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /a key named "alice" exists already/);
    assert.doesNotMatch(duplicate.stdout, /sgk_/);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /usage: npm run keys -- create NAME/);
    assert.equal(badRole.code, 2);
    assert.match(badRole.stderr, /usage/);
  });

  it('list shows id, name, role, prefix and state, never the key', async () => {
    const { code, stdout } = await keysCli('list');
    assert.equal(code, 0);
    const rows = stdout.split('\n').filter((l) => l.includes('\t')).map((l) => l.split('\t'));
    const byName = new Map(rows.map((r) => [r[1], r]));
    assert.deepEqual([...byName.keys()].sort(), ['alice', 'bob', 'night-ops', 'root-ops']);
    for (const [name, role] of [['alice', 'client'], ['bob', 'client'], ['root-ops', 'admin']] as const) {
      const row = byName.get(name)!;
      assert.equal(row[0], keys[name]!.id);
      assert.equal(row[2], role);
      assert.equal(row[3], `${keys[name]!.key.slice(0, 10)}...`, 'a short prefix, to tell keys apart');
      assert.ok(!Number.isNaN(Date.parse(row[4]!)));
      assert.equal(row[5], 'active');
    }
    for (const { key } of Object.values(keys)) assert.ok(!stdout.includes(key), 'a key is listed');
    assert.ok(!stdout.includes(keys.alice!.key.slice(0, 16)), 'no more of a key than its prefix');
  });

  it('revoke by name and by id: a service on the same file refuses the key from then on, and after a restart', async () => {
    let service = await startService();
    try {
      assert.equal(await statusWith(service.url, keys.alice!.key), 200);
      assert.equal(await statusWith(service.url, keys.bob!.key), 200);
      // The admin key's role reached the service: it sees the client's task.
      const created = await post(service.url, `mutation { createVideoTask(input: { model: "seedance-2", prompt: "x" }) { task { id } userErrors { code } } }`, undefined, { key: keys.alice!.key });
      const taskId = created.body.data.createVideoTask.task.id;
      const asAdmin = await post(service.url, `query($id: ID!) { videoTask(id: $id) { id } }`, { id: taskId }, { key: keys['root-ops']!.key });
      assert.equal(asAdmin.body.data.videoTask.id, taskId);
      const asBob = await post(service.url, `query($id: ID!) { videoTask(id: $id) { id } }`, { id: taskId }, { key: keys.bob!.key });
      assert.equal(asBob.body.data.videoTask, null);

      const [byName, byId] = await Promise.all([keysCli('revoke', 'alice'), keysCli('revoke', keys.bob!.id)]);
      assert.equal(byName.code, 0, byName.stderr);
      assert.match(byName.stdout, new RegExp(`revoked key "alice" \\(id ${keys.alice!.id}\\)`));
      assert.equal(byId.code, 0, byId.stderr);
      assert.match(byId.stdout, /revoked key "bob"/);
      assert.equal(await statusWith(service.url, keys.alice!.key), 401, 'refused by the running service');
      assert.equal(await statusWith(service.url, keys.bob!.key), 401);
      assert.equal(await statusWith(service.url, keys['root-ops']!.key), 200, 'other keys still work');
    } finally {
      await service.stop();
    }

    // Refusals write nothing: run side by side with the listing.
    const [again, unknown, listed] = await Promise.all([keysCli('revoke', 'alice'), keysCli('revoke', 'nobody'), keysCli('list')]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no active key with id or name "alice"/);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no active key with id or name "nobody"/);
    const state = (name: string) => listed.stdout.split('\n').find((l) => l.split('\t')[1] === name)?.split('\t')[5];
    assert.match(state('alice') ?? '', /^revoked \d{4}-/);
    assert.match(state('bob') ?? '', /^revoked \d{4}-/);
    assert.equal(state('root-ops'), 'active');

    service = await startService();
    try {
      assert.equal(await statusWith(service.url, keys.alice!.key), 401, 'still refused after a restart');
      assert.equal(await statusWith(service.url, keys.bob!.key), 401);
      assert.equal(await statusWith(service.url, keys['root-ops']!.key), 200);
    } finally {
      await service.stop();
    }
  });

  it('the database holds only hashes: no key appears in its files', () => {
    const files = readdirSync(dir).filter((f) => f.startsWith('keys.sqlite'));
    assert.ok(files.includes('keys.sqlite'));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
    assert.ok(Object.keys(keys).length >= 3);
    for (const { key } of Object.values(keys)) {
      assert.equal(bytes.indexOf(key), -1, 'a key is stored in the clear');
      // Nothing past the short prefix the list shows.
      assert.equal(bytes.indexOf(key.slice(0, 16)), -1, 'more than the key\'s prefix is stored');
      assert.notEqual(bytes.indexOf(createHash('sha256').update(key).digest('hex')), -1, 'its SHA-256 is stored');
    }
  });
});
