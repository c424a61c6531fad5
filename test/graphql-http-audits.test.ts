// The GraphQL-over-HTTP specification's audits (graphql-http), run against the running server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serverAudits } from 'graphql-http';
import { startHarness, type Harness } from './support/harness.ts';

describe('GraphQL over HTTP audits', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(async () => { await h.stop(); });

  for (const audit of serverAudits({ url: () => `${h.url}/graphql` })) {
    const must = audit.name.startsWith('MUST');
    it(audit.name, async () => {
      const result = await audit.fn();
      if (must) assert.notEqual(result.status, 'error', result.status === 'error' ? result.reason : '');
    });
  }
});
