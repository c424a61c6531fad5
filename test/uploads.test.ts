// uploadMedia: files in over real GraphQL multipart requests (operations, map, file part), checked by
// their bytes, stored once per content, served back at a stable public URL that createVideoTask takes;
// and every refusal, each leaving nothing behind in MEDIA_DIR.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  GIF, LAST_FRAME_PNG, SAMPLE_MP4, WEBP, eventually, jpeg, listFiles, mp3, mp4Chunks, rawId, sha256, startMediaApp, wav,
  type MediaApp, type UploadFile,
} from './support/media-kit.ts';

const PUBLIC_URL = 'https://media.example.test';
const MAX_IMAGE = 20_000;
const MAX_MEDIA = 60_000;

const CREATE = `mutation($input: CreateVideoTaskInput!) {
  createVideoTask(input: $input) { task { id status imageUrls videos audios } userErrors { field code message } }
}`;
const TASK = `query($id: ID!) { videoTask(id: $id) { id status error { code message } archive { status reason } } }`;

interface Kind {
  name: string;
  file: UploadFile;
  kind: 'IMAGE' | 'VIDEO' | 'AUDIO';
  contentType: string;
  extension: string;
}

const KINDS: Kind[] = [
  { name: 'JPEG', file: { bytes: jpeg(300), filename: 'photo.jpg', type: 'image/jpeg' }, kind: 'IMAGE', contentType: 'image/jpeg', extension: 'jpg' },
  { name: 'PNG', file: { bytes: LAST_FRAME_PNG, filename: 'frame.png' }, kind: 'IMAGE', contentType: 'image/png', extension: 'png' },
  { name: 'WEBP', file: { bytes: WEBP, filename: 'dot.webp', type: 'image/webp' }, kind: 'IMAGE', contentType: 'image/webp', extension: 'webp' },
  { name: 'MP4', file: { bytes: SAMPLE_MP4, filename: 'clip.mp4', type: 'video/mp4' }, kind: 'VIDEO', contentType: 'video/mp4', extension: 'mp4' },
  { name: 'MP3', file: { bytes: mp3(), filename: 'voice.mp3', type: 'audio/mpeg' }, kind: 'AUDIO', contentType: 'audio/mpeg', extension: 'mp3' },
  // No declared type and no extension: the bytes alone decide.
  { name: 'WAV', file: { bytes: wav(), filename: 'recording' }, kind: 'AUDIO', contentType: 'audio/wav', extension: 'wav' },
];

describe('uploadMedia', () => {
  let h: MediaApp;
  let key: string;
  const urls = new Map<string, string>();
  /** The asset's public URL (under PUBLIC_URL) as reached on this test server. */
  const local = (url: string) => h.url + new URL(url).pathname;
  const assetRows = () => (h.app.db.$client.prepare('SELECT count(*) AS n FROM media_assets').get() as { n: number }).n;

  before(async () => {
    h = await startMediaApp({
      env: {
        ANONYMOUS_ACCESS: 'false',
        PUBLIC_URL,
        UPLOAD_MAX_IMAGE_BYTES: String(MAX_IMAGE),
        UPLOAD_MAX_MEDIA_BYTES: String(MAX_MEDIA),
      },
    });
    key = h.app.apiKeys.create('uploader', 'client').key;
  });
  after(async () => { await h?.stop(); });

  it('takes a JPEG, PNG, WEBP, MP4, MP3 and WAV over multipart, typed by their bytes, and serves each back at a stable public URL', async () => {
    for (const kind of KINDS) {
      const { status, body } = await h.upload(kind.file, key);
      assert.equal(status, 200, `${kind.name}: ${JSON.stringify(body)}`);
      assert.deepEqual(body.errors, undefined, kind.name);
      const { asset, userErrors } = body.data.uploadMedia;
      assert.deepEqual(userErrors, [], kind.name);
      const digest = sha256(kind.file.bytes);
      assert.equal(asset.kind, kind.kind, kind.name);
      assert.equal(asset.contentType, kind.contentType, kind.name);
      assert.equal(asset.bytes, kind.file.bytes.length, kind.name);
      assert.equal(asset.sha256, digest, kind.name);
      assert.equal(asset.filename, kind.file.filename, kind.name);
      assert.equal(asset.url, `${PUBLIC_URL}/media/uploads/${digest}.${kind.extension}`, `${kind.name}: content-addressed, under PUBLIC_URL`);
      urls.set(kind.name, asset.url);

      const served = await fetch(local(asset.url));
      assert.equal(served.status, 200, kind.name);
      assert.equal(served.headers.get('content-type'), kind.contentType, kind.name);
      assert.equal(served.headers.get('content-length'), String(kind.file.bytes.length), kind.name);
      assert.equal(served.headers.get('etag'), `"${digest}"`, kind.name);
      assert.match(served.headers.get('cache-control') ?? '', /public.*immutable/, kind.name);
      assert.equal(served.headers.get('accept-ranges'), 'bytes', kind.name);
      assert.ok(Buffer.from(await served.arrayBuffer()).equals(kind.file.bytes), `${kind.name}: the same bytes come back`);

      const revalidated = await fetch(local(asset.url), { headers: { 'if-none-match': `"${digest}"` } });
      assert.equal(revalidated.status, 304, `${kind.name}: a cached copy is revalidated by its ETag`);
      await revalidated.arrayBuffer();
    }
    // Uploads are public by URL (the name is the content's hash) but served by nobody else's name.
    const unknown = await fetch(`${h.url}/media/uploads/${'0'.repeat(64)}.png`);
    assert.equal(unknown.status, 404);
    await unknown.arrayBuffer();
  });

  it('passes those URLs straight to createVideoTask: images, a reference video and reference audios reach the sandbox', async () => {
    assert.equal(urls.size, KINDS.length, 'the uploads above ran');
    const images = ['JPEG', 'PNG', 'WEBP'].map((name) => urls.get(name)!);
    const video = urls.get('MP4')!;
    const audios = ['MP3', 'WAV'].map((name) => urls.get(name)!);

    const multimodal = await h.gql(CREATE, {
      input: { model: 'doubao-seedance-2.0', prompt: 'image 1 walks into image 2', imageUrls: images, videos: [video], audios },
    }, key);
    assert.deepEqual(multimodal.body.data.createVideoTask.userErrors, []);
    const firstFrame = await h.gql(CREATE, {
      input: { model: 'seedance-2-fast', prompt: 'The frame comes alive', imageUrls: [urls.get('PNG')] },
    }, key);
    assert.deepEqual(firstFrame.body.data.createVideoTask.userErrors, []);

    const bodies = h.upstream.sandbox.tasks();
    const multimodalBody = bodies.find((t) => t.model === 'doubao-seedance-2.0')!.body;
    assert.deepEqual(multimodalBody.image_urls, images, 'the sandbox received the uploaded images');
    assert.deepEqual(multimodalBody.video_urls, [video], 'and the reference video');
    assert.deepEqual(multimodalBody.audio_urls, audios, 'and the reference audios');
    const firstFrameBody = bodies.find((t) => t.model === 'seedance-2-fast')!.body;
    assert.deepEqual(firstFrameBody.image_urls, [urls.get('PNG')]);

    for (const created of [multimodal, firstFrame]) {
      const id = created.body.data.createVideoTask.task.id as string;
      const done = await eventually(async () => {
        const task = (await h.gql(TASK, { id }, key)).body.data.videoTask;
        return ['COMPLETED', 'FAILED'].includes(task.status) && task.archive?.status !== 'PENDING' && task;
      }, `task ${rawId(id)} finished and its result archived`, 15_000);
      assert.equal(done.status, 'COMPLETED', JSON.stringify(done.error));
      // Settled before the refusals below count the files under MEDIA_DIR.
      assert.equal(done.archive?.status, 'ARCHIVED', JSON.stringify(done.archive));
    }
  });

  it('stores identical uploads once: same checksum, same URL, one file on disk', async () => {
    const bytes = jpeg(1234, 0x41);
    const first = (await h.upload({ bytes, filename: 'a.jpg' }, key)).body.data.uploadMedia;
    const filesAfterFirst = listFiles(h.mediaDir);
    const second = (await h.upload({ bytes, filename: 'copy-of-a.jpeg', type: 'image/jpeg' }, key)).body.data.uploadMedia;
    assert.deepEqual(first.userErrors, []);
    assert.deepEqual(second.userErrors, []);
    assert.equal(second.asset.sha256, first.asset.sha256);
    assert.equal(second.asset.url, first.asset.url);
    assert.equal(second.asset.id, first.asset.id, 'the same asset');
    assert.deepEqual(listFiles(h.mediaDir), filesAfterFirst, 'the second upload added no file');
    const copies = listFiles(join(h.mediaDir, 'uploads')).filter((name) => name.startsWith(first.asset.sha256));
    assert.deepEqual(copies, [`${first.asset.sha256}.jpg`]);
    assert.deepEqual(listFiles(join(h.mediaDir, '.staging')), [], 'no staging leftovers');
  });

  describe('refusals: a clear error on the file field, and nothing left behind', () => {
    const png = LAST_FRAME_PNG;
    const cases: { name: string; file: UploadFile; code: string; message: RegExp }[] = [
      { name: 'an empty file', file: { bytes: Buffer.alloc(0), filename: 'empty.png', type: 'image/png' }, code: 'EMPTY', message: /empty/i },
      { name: `an image over UPLOAD_MAX_IMAGE_BYTES (${MAX_IMAGE})`, file: { bytes: jpeg(25_000), filename: 'big.jpg' }, code: 'TOO_LARGE', message: new RegExp(`at most ${MAX_IMAGE} bytes.*25026`) },
      { name: `a file over UPLOAD_MAX_MEDIA_BYTES (${MAX_MEDIA})`, file: { bytes: Buffer.concat([...mp4Chunks(100_000)]), filename: 'long.mp4', type: 'video/mp4' }, code: 'TOO_LARGE', message: new RegExp(`larger than ${MAX_MEDIA} bytes`) },
      { name: 'a truncated JPEG (no EOI)', file: { bytes: jpeg(500).subarray(0, 400), filename: 'cut.jpg' }, code: 'TRUNCATED', message: /image\/jpeg.*incomplete/ },
      { name: 'a truncated PNG (no IEND)', file: { bytes: png.subarray(0, png.length - 2000), filename: 'cut.png' }, code: 'TRUNCATED', message: /image\/png.*incomplete/ },
      { name: 'a truncated MP4 (boxes cut short)', file: { bytes: SAMPLE_MP4.subarray(0, 5000), filename: 'cut.mp4' }, code: 'TRUNCATED', message: /video\/mp4.*incomplete/ },
      { name: 'a PNG named cat.jpg', file: { bytes: png, filename: 'cat.jpg' }, code: 'MISLABELLED', message: /named or declared as jpg but its content is image\/png/ },
      { name: 'a PNG declared as image/jpeg', file: { bytes: png, filename: 'cat.png', type: 'image/jpeg' }, code: 'MISLABELLED', message: /as jpg but its content is image\/png/ },
      { name: 'an MP3 named song.wav', file: { bytes: mp3(), filename: 'song.wav' }, code: 'MISLABELLED', message: /as wav but its content is audio\/mpeg/ },
      { name: 'a text file named x.png', file: { bytes: Buffer.from('just some text, honestly\n'), filename: 'x.png', type: 'image/png' }, code: 'UNSUPPORTED_TYPE', message: /JPEG, PNG or WEBP images, MP4 video, MP3 or WAV audio/ },
      { name: 'a GIF', file: { bytes: GIF, filename: 'anim.gif', type: 'image/gif' }, code: 'UNSUPPORTED_TYPE', message: /not one of/ },
      { name: 'a GIF named still.png', file: { bytes: GIF, filename: 'still.png' }, code: 'UNSUPPORTED_TYPE', message: /not one of/ },
    ];
    for (const refusal of cases) {
      it(`refuses ${refusal.name} with ${refusal.code}`, async () => {
        const filesBefore = listFiles(h.mediaDir);
        const rowsBefore = assetRows();
        const { status, body } = await h.upload(refusal.file, key);
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal(body.errors, undefined, JSON.stringify(body.errors));
        const { asset, userErrors } = body.data.uploadMedia;
        assert.equal(asset, null);
        assert.equal(userErrors.length, 1, JSON.stringify(userErrors));
        assert.deepEqual(userErrors[0].field, ['file']);
        assert.equal(userErrors[0].code, refusal.code, userErrors[0].message);
        assert.match(userErrors[0].message, refusal.message);
        assert.deepEqual(listFiles(h.mediaDir), filesBefore, 'no new file anywhere under MEDIA_DIR (.staging included)');
        assert.equal(assetRows(), rowsBefore, 'no asset recorded');
      });
    }

    it('leaves nothing behind when the client disconnects mid-upload (UPLOAD_INCOMPLETE)', async () => {
      const filesBefore = listFiles(h.mediaDir);
      const rowsBefore = assetRows();
      const boundary = '----media-test-boundary';
      const file = Buffer.concat([...mp4Chunks(50_000)]);
      const head = Buffer.from([
        `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: 'mutation($file: Upload!) { uploadMedia(file: $file) { asset { id } userErrors { code } } }', variables: { file: null } })}\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${JSON.stringify({ 0: ['variables.file'] })}\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="partial.mp4"\r\nContent-Type: video/mp4\r\n\r\n`,
      ].join(''));
      const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
      const url = new URL(`${h.url}/graphql`);
      const req = request({
        host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + file.length + tail.length),
          authorization: `Bearer ${key}`,
        },
      });
      req.on('error', () => undefined);
      req.on('response', (res) => res.resume());
      req.write(head);
      req.write(file.subarray(0, 20_000));
      // The upload has started streaming into a staging file...
      await eventually(() => listFiles(join(h.mediaDir, '.staging')).length > 0, 'the upload streams into a staging file');
      // ...and the client goes away with 30 KB still unsent.
      req.destroy();
      await eventually(() => listFiles(join(h.mediaDir, '.staging')).length === 0, 'the partial upload is removed');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(listFiles(h.mediaDir), filesBefore, 'nothing left under MEDIA_DIR');
      assert.equal(assetRows(), rowsBefore, 'no asset recorded');
    });
  });

  it('refuses a data: URL in a task input, naming uploadMedia', async () => {
    const dataUrl = `data:image/png;base64,${LAST_FRAME_PNG.subarray(0, 200).toString('base64')}`;
    const { body } = await h.gql(CREATE, { input: { model: 'seedance-2-fast', prompt: 'Inline', imageUrls: [dataUrl] } }, key);
    const { task, userErrors } = body.data.createVideoTask;
    assert.equal(task, null);
    assert.equal(userErrors.length, 1);
    assert.deepEqual(userErrors[0].field, ['input', 'imageUrls', '0']);
    assert.equal(userErrors[0].code, 'UPLOAD_REQUIRED');
    assert.match(userErrors[0].message, /upload the file first with the uploadMedia mutation/);
  });

  it('requires the caller\'s key when anonymous access is off (401), storing nothing', async () => {
    const filesBefore = listFiles(h.mediaDir);
    const rowsBefore = assetRows();
    for (const credential of [undefined, 'sgk_not-a-real-key']) {
      const { status, body, headers } = await h.upload({ bytes: jpeg(64, 0x42), filename: 'anon.jpg' }, credential);
      assert.equal(status, 401, JSON.stringify(body));
      assert.equal(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      assert.equal(headers.get('www-authenticate'), 'Bearer');
    }
    assert.deepEqual(listFiles(h.mediaDir), filesBefore);
    assert.equal(assetRows(), rowsBefore);
  });
});

describe('uploadMedia with the default limits', () => {
  it('takes a reference video larger than 25 MB (under UPLOAD_MAX_MEDIA_BYTES), not only small files', async () => {
    const h = await startMediaApp();
    try {
      assert.equal(h.config.UPLOAD_MAX_MEDIA_BYTES, 100 * 1024 * 1024);
      const bytes = Buffer.concat([...mp4Chunks(26 * 1024 * 1024)]);
      const { status, body } = await h.upload({ bytes, filename: 'reference.mp4', type: 'video/mp4' });
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.data?.uploadMedia.userErrors, []);
      assert.equal(body.data.uploadMedia.asset.kind, 'VIDEO');
      assert.equal(body.data.uploadMedia.asset.bytes, bytes.length);
      assert.equal(body.data.uploadMedia.asset.sha256, sha256(bytes));
    } finally {
      await h.stop();
    }
  });
});
