// Creates the schema builder. No types are defined here (see schema/): one file per type.
import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import type { FileUpload } from 'graphql-upload/processRequest.mjs';
import type { GraphQLContext } from './context.ts';

export interface PothosTypes {
  Context: GraphQLContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    SafeInt: { Input: number; Output: number };
    /** graphql-upload's scalar: a file of a GraphQL multipart request, still streaming in. */
    Upload: { Input: Promise<FileUpload>; Output: never };
    ID: { Input: string; Output: string };
  };
  DefaultFieldNullability: false;
}

export const builder = new SchemaBuilder<PothosTypes>({
  plugins: [RelayPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // Connections carry no totalCount: counting 100,000 rows on every page is what keyset paging avoids.
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
