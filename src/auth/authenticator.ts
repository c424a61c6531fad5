// Turns the credential a request carries (HTTP `Authorization: Bearer <key>`, or the graphql-ws
// `connectionParams`) into a principal, or refuses it with a typed 401.
import { GraphQLError } from 'graphql';
import type { ApiKeyStore } from './api-keys.ts';
import { ANONYMOUS, type Principal } from './principal.ts';

export function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
  });
}

export class Authenticator {
  constructor(private readonly keys: ApiKeyStore, readonly allowAnonymous: boolean) {}

  /** A given key must be valid even when anonymous access is on: a typo should not turn into "anonymous". */
  principalFor(authorization: string | null | undefined): Principal {
    const credential = authorization?.trim();
    if (!credential) {
      if (this.allowAnonymous) return ANONYMOUS;
      throw unauthenticated('An API key is required: send "Authorization: Bearer <key>" (or connectionParams.authorization over WebSocket).');
    }
    const key = credential.replace(/^Bearer\s+/i, '');
    const principal = this.keys.authenticate(key);
    if (!principal) throw unauthenticated('The API key is unknown or revoked.');
    return principal;
  }

  /** graphql-ws clients send `{ authorization: "Bearer <key>" }` (or `{ apiKey }`) as connectionParams. */
  principalForConnection(params: Readonly<Record<string, unknown>> | undefined): Principal {
    const value = params?.authorization ?? params?.Authorization ?? params?.apiKey;
    return this.principalFor(typeof value === 'string' ? value : undefined);
  }
}
