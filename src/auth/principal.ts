// Who is asking. Every read and change of a task is decided against this.
import { ANONYMOUS_OWNER } from '../storage/schema.ts';

export type Role = 'client' | 'admin';

export interface Principal {
  /** The API key's id, or ANONYMOUS_OWNER when anonymous access is on and no key was given. */
  ownerId: string;
  name: string;
  role: Role | 'anonymous';
}

export const ANONYMOUS: Principal = Object.freeze({ ownerId: ANONYMOUS_OWNER, name: 'anonymous', role: 'anonymous' });

/** An admin sees every task; anyone else only the tasks created under their own key (or anonymously). */
export function canSee(principal: Principal, task: { ownerId: string }): boolean {
  return principal.role === 'admin' || task.ownerId === principal.ownerId;
}

/** The owner filter for listings: null means all owners. */
export function ownerScope(principal: Principal): string | null {
  return principal.role === 'admin' ? null : principal.ownerId;
}
