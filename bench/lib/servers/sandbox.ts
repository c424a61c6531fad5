// The sandbox upstream in its own process, with a fixed upstream latency.
// Options (one JSON argument): { latencyMs: number }.
import { startSandboxServer } from '../../../src/sandbox/sandbox-upstream.ts';
import { SANDBOX_API_KEY } from '../../../src/upstream/providers.ts';
import { childOptions, serveChild } from '../child-process.ts';

serveChild(async () => {
  const { latencyMs } = childOptions<{ latencyMs: number }>();
  const server = await startSandboxServer({ apiKey: SANDBOX_API_KEY, timeScale: 1, port: 0, faults: { latencyMs } });
  return {
    ready: { url: server.url },
    handle: () => server.sandbox.stats(),
    stop: () => server.close(),
  };
});
