import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { printSchemaFile, SCHEMA_FILE } from '../src/graphql/print.ts';

describe('schema.graphql', () => {
  it('is the printed schema (run `npm run schema:print` after changing a type)', () => {
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), printSchemaFile());
  });

  it('keeps the names API.md promises to clients', () => {
    const printed = printSchemaFile();
    for (const name of [
      'videoTask(id: ID!): VideoTask', 'videoTasks(', 'videoModels: [VideoModel!]!', 'node(id: ID!): Node',
      'createVideoTask(input: CreateVideoTaskInput!): CreateVideoTaskPayload!',
      'type UserError', 'enum VideoTaskStatus', 'scalar DateTime',
    ]) {
      assert.ok(printed.includes(name), `schema lacks ${name}`);
    }
  });
});
