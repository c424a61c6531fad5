// Manages this service's API keys: `npm run keys -- create NAME [--role admin]`, `list`, `revoke ID|NAME`.
import { ApiKeyStore } from '../auth/api-keys.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { openDatabase } from '../storage/database.ts';

const USAGE = `usage: npm run keys -- create NAME [--role client|admin]
       npm run keys -- list
       npm run keys -- revoke ID|NAME`;

function main(argv: string[]): number {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  const db = openDatabase(config.DATABASE_URL);
  const keys = new ApiKeyStore(db);
  try {
    const [command, ...rest] = argv;
    if (command === 'create') {
      const roleAt = rest.indexOf('--role');
      const role = roleAt >= 0 ? rest[roleAt + 1] : 'client';
      // Without --role, roleAt is -1: only then is index 0 (roleAt + 1) not the role's value.
      const name = rest.filter((_, i) => roleAt < 0 || (i !== roleAt && i !== roleAt + 1))[0];
      if (!name || (role !== 'client' && role !== 'admin')) {
        console.error(USAGE);
        return 2;
      }
      if (keys.list().some((k) => k.name === name)) {
        console.error(`a key named "${name}" exists already (names stay taken after revocation)`);
        return 1;
      }
      const created = keys.create(name, role);
      console.log(`created ${created.role} key "${created.name}" (id ${created.id})`);
      console.log(`key: ${created.key}`);
      console.log('Store it now: only its hash is kept. Send it as "Authorization: Bearer <key>".');
      return 0;
    }
    if (command === 'list') {
      for (const k of keys.list()) {
        console.log([k.id, k.name, k.role, `${k.prefix}...`, k.createdAt.toISOString(), k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'].join('\t'));
      }
      return 0;
    }
    if (command === 'revoke' && rest[0]) {
      const revoked = keys.revoke(rest[0]);
      if (!revoked) {
        console.error(`no active key with id or name "${rest[0]}"`);
        return 1;
      }
      console.log(`revoked key "${revoked.name}" (id ${revoked.id})`);
      return 0;
    }
    console.error(USAGE);
    return 2;
  } finally {
    db.$client.close();
  }
}

process.exitCode = main(process.argv.slice(2));
