// Signed, expiring links to archived results: a <video src> cannot send an API key, so the link itself
// is the permission, handed only to a caller who may see the task.
import { createHmac, timingSafeEqual } from 'node:crypto';

export class UrlSigner {
  constructor(private readonly secret: Buffer, private readonly ttlSeconds: number, private readonly now: () => number = Date.now) {}

  /** `path` plus `?expires=<unix s>&signature=<hmac>`. */
  sign(path: string): string {
    const expires = Math.floor(this.now() / 1000) + this.ttlSeconds;
    return `${path}?expires=${expires}&signature=${this.signature(path, expires)}`;
  }

  verify(path: string, expires: string | null, signature: string | null): boolean {
    if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return false;
    if (Number(expires) * 1000 < this.now()) return false;
    const expected = Buffer.from(this.signature(path, Number(expires)));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private signature(path: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`${path}\n${expires}`).digest('base64url');
  }
}
