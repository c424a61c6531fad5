import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('configuration', () => {
  it('has working defaults for a fresh machine', () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 4000);
    assert.equal(config.DATABASE_URL, './data/seedance.sqlite');
    assert.equal(config.TOAPIS_BASE_URL, 'https://toapis.com');
    assert.equal(config.ODKKK_BASE_URL, 'https://ai.odkkk.com/apiv1');
    assert.equal(config.TOAPIS_API_KEY, undefined);
    assert.equal(config.PUBLIC_URL, undefined);
  });

  it('treats an empty key as no key', () => {
    assert.equal(loadConfig({ TOAPIS_API_KEY: '' }).TOAPIS_API_KEY, undefined);
  });

  it('accepts a file: DATABASE_URL and strips trailing slashes from base URLs', () => {
    const config = loadConfig({ DATABASE_URL: 'file:/tmp/x.sqlite', TOAPIS_BASE_URL: 'https://relay.example/', PUBLIC_URL: 'https://api.example/' });
    assert.equal(config.DATABASE_URL, '/tmp/x.sqlite');
    assert.equal(config.TOAPIS_BASE_URL, 'https://relay.example');
    assert.equal(config.PUBLIC_URL, 'https://api.example');
  });

  for (const [name, value] of [
    ['PORT', 'eighty'], ['PORT', '70000'], ['LOG_LEVEL', 'loud'], ['PUBLIC_URL', 'not a url'],
    ['TOAPIS_BASE_URL', 'ftp://x'], ['ODKKK_TASK_PATH', 'tasks'], ['SANDBOX_TIME_SCALE', '-1'],
  ] as const) {
    it(`refuses ${name}=${value} with a message naming the variable`, () => {
      assert.throws(() => loadConfig({ [name]: value }), (error: unknown) =>
        error instanceof ConfigError && error.message.includes(name));
    });
  }
});
