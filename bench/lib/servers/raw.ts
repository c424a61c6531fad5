// The ceilings: plain node:http handlers doing only the essential work of each operation, answering the
// same JSON our GraphQL answers. Reads run the SQL ours runs (whole rows, the same keyset conditions)
// through prepared better-sqlite3 statements on the same file (opened as the service opens it:
// openGroupCommitDatabase, synchronous=NORMAL); the create does the same durable writes around the same
// upstream POST, made durable the same way (a shared WAL sync before the POST and before the answer),
// through a pooled undici Agent.
// Options (one JSON argument): { database: string; sandboxUrl?: string; createModel?: string }.
// Routes:
//   GET  /task?id=ID                      videoTask(id)
//   GET  /tasks?first=N[&after=CURSOR]    videoTasks(first, after), keyset: the SQL our TaskStore.list runs
//   GET  /tasks-offset?first=N&offset=K   the same page by LIMIT/OFFSET, to show what keyset paging avoids
//   POST /create  {"prompt": "..."}       createVideoTask of `createModel` with that prompt
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { openGroupCommitDatabase } from '../../../src/storage/database.ts';
import { decodeCursor, encodeCursor } from '../../../src/storage/task-store.ts';
import { validateCreateVideoTask } from '../../../src/tasks/validation.ts';
import { ProviderDirectory, sandboxAccounts } from '../../../src/upstream/providers.ts';
import { childOptions, serveChild } from '../child-process.ts';

interface Options {
  database: string;
  sandboxUrl?: string;
  /** The model bench/create.ts creates tasks of. */
  createModel?: string;
}

interface TaskRow {
  id: string;
  status: string;
  progress: number;
  prompt: string | null;
  model: string;
  created_at: number;
  video_url: string | null;
  archive_status: string | null;
  owner_id: string;
}

/** Whole rows, as ours reads them (TaskStore selects every column): the same SQL, only the work around it differs. */
const COLUMNS = '*';

/** Relay's global id, as Pothos encodes it. */
const globalId = (id: string) => Buffer.from(`VideoTask:${id}`).toString('base64');

/** The fields of the benchmarks' selection, in its order, as our GraphQL serializes them. */
const taskJson = (row: TaskRow) => ({
  id: globalId(row.id),
  status: row.status,
  progress: row.progress,
  prompt: row.prompt,
  model: row.model,
  createdAt: new Date(row.created_at).toISOString(),
  // Archived copies get a signed link in ours; the benchmarks' rows are not archived.
  videoUrl: row.video_url,
});

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

serveChild(async () => {
  const options = childOptions<Options>();
  const { db, durability } = openGroupCommitDatabase(options.database);
  const sqlite = db.$client;
  const byId = sqlite.prepare<[string], TaskRow>(`SELECT ${COLUMNS} FROM video_tasks WHERE id = ?`);
  // The statements TaskStore.list builds for an anonymous caller: owner, keyset condition, newest first.
  const firstPage = sqlite.prepare<[string, number], TaskRow>(
    `SELECT ${COLUMNS} FROM video_tasks WHERE owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`);
  const pageAfter = sqlite.prepare<[string, number, string, number], TaskRow>(
    `SELECT ${COLUMNS} FROM video_tasks WHERE owner_id = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`);
  const pageAtOffset = sqlite.prepare<[string, number, number], TaskRow>(
    `SELECT ${COLUMNS} FROM video_tasks WHERE owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`);

  const connection = (rows: TaskRow[], first: number) => {
    const page = rows.slice(0, first);
    return {
      data: {
        videoTasks: {
          edges: page.map((row) => ({ cursor: encodeCursor({ id: row.id, createdAt: new Date(row.created_at) }), node: taskJson(row) })),
          pageInfo: {
            hasNextPage: rows.length > first,
            endCursor: page.length > 0 ? encodeCursor({ id: page.at(-1)!.id, createdAt: new Date(page.at(-1)!.created_at) }) : null,
          },
        },
      },
    };
  };

  // The create: the same normalized request and upstream body as ours, computed once (validation is
  // ours' work, not the ceiling's); per request only the prompt changes.
  const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  const providers = new ProviderDirectory(options.sandboxUrl ? sandboxAccounts(options.sandboxUrl) : []);
  const model = options.createModel ?? 'doubao-seedance-1-0-pro-fast';
  const validation = validateCreateVideoTask({ model, prompt: 'template' }, { trustedUrls: [] });
  if (!validation.ok) throw new Error(`the create input is invalid: ${JSON.stringify(validation.errors)}`);
  const route = providers.route(model, undefined);
  // Written before the POST leaves (the attempt recorded with it), then the upstream's answer: the two
  // durable writes a crash-safe create needs.
  const insertTask = sqlite.prepare(`INSERT INTO video_tasks (id, model, provider, request, prompt, status, progress,
    created_at, updated_at, next_poll_at, lease_owner, lease_expires_at, submission_attempted_at, owner_id)
    VALUES (?, ?, ?, ?, ?, 'SUBMITTING', 0, ?, ?, ?, 'raw', ?, ?, 'anonymous')`);
  const recordSubmitted = sqlite.prepare(`UPDATE video_tasks SET upstream_task_id = ?, upstream_status = ?, status = ?,
    next_poll_at = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? RETURNING ${COLUMNS}`);

  const create = async (req: IncomingMessage, res: ServerResponse) => {
    if (!route) throw new Error('no sandbox configured for the create route');
    const input = JSON.parse(await readBody(req)) as { prompt: string };
    const videoRequest = { ...validation.request, prompt: input.prompt };
    const id = randomUUID();
    const now = Date.now();
    insertTask.run(id, model, route.provider, JSON.stringify(videoRequest), input.prompt, now, now, now + 60_000, now + 60_000, now);
    await durability.sync();
    const answer = await request(route.baseUrl + route.adapter.createPath, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${route.apiKey}`, accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify(route.adapter.buildCreateBody(route.model, videoRequest, {})),
    });
    const text = await answer.body.text();
    if (answer.statusCode !== 200) {
      sendJson(res, 502, { errors: [{ message: `upstream ${answer.statusCode}: ${text}` }] });
      return;
    }
    const task = route.adapter.readTask(JSON.parse(text));
    const row = recordSubmitted.get(task.upstreamTaskId, task.statusWord, task.status ?? 'QUEUED', Date.now() + 3_600_000, Date.now(), id) as TaskRow;
    await durability.sync();
    sendJson(res, 200, { data: { createVideoTask: { task: { id: globalId(row.id), status: row.status }, userErrors: [] } } });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://raw.invalid');
    const first = Number(url.searchParams.get('first') ?? 20);
    try {
      switch (url.pathname) {
        case '/task': {
          const row = byId.get(url.searchParams.get('id') ?? '');
          sendJson(res, 200, { data: { videoTask: row && row.owner_id === 'anonymous' ? taskJson(row) : null } });
          return;
        }
        case '/tasks': {
          const after = url.searchParams.get('after');
          const cursor = after ? decodeCursor(after) : null;
          if (after && !cursor) return sendJson(res, 400, { errors: [{ message: 'bad cursor' }] });
          // One more than asked, to know whether there is a next page (as Pothos's resolveCursorConnection does).
          const rows = cursor ? pageAfter.all('anonymous', cursor.createdAt, cursor.id, first + 1) : firstPage.all('anonymous', first + 1);
          sendJson(res, 200, connection(rows, first));
          return;
        }
        case '/tasks-offset': {
          const rows = pageAtOffset.all('anonymous', first + 1, Number(url.searchParams.get('offset') ?? 0));
          sendJson(res, 200, connection(rows, first));
          return;
        }
        case '/create':
          create(req, res).catch((error: unknown) => sendJson(res, 500, { errors: [{ message: String(error) }] }));
          return;
        default:
          sendJson(res, 404, { errors: [{ message: 'not found' }] });
      }
    } catch (error) {
      sendJson(res, 500, { errors: [{ message: String(error) }] });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    ready: { url: `http://127.0.0.1:${port}` },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await agent.close();
      sqlite.close();
    },
  };
});
