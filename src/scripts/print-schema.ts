// Prints the schema to schema.graphql (committed; test/schema.test.ts fails when it is stale).
import { writeFileSync } from 'node:fs';
import { printSchemaFile, SCHEMA_FILE } from '../graphql/print.ts';

writeFileSync(SCHEMA_FILE, printSchemaFile());
console.log(`wrote ${SCHEMA_FILE}`);
