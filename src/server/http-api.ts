/**
 * The standalone server's HTTP side: `POST /publish/:channel`, `GET /history/:channel`,
 * `GET /healthz`, `GET /stats`, `GET /metrics` (Prometheus), and the live page (`GET /`). Publishing and reading history need the publish token
 * when one is configured; without a token they are accepted from loopback peers only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broadcaster } from '../broadcaster.js';
import { BatchcastError, ERROR_CODES, InvalidChannelError } from '../errors.js';
import type { LiveFeed } from '../observe/live.js';
import { isValidChannel } from '../protocol/channel.js';

export interface HttpApiOptions {
  /** Bearer token for `POST /publish` (`BATCHCAST_PUBLISH_TOKEN`); unset: loopback peers only. */
  publishToken?: string;
  /** Largest accepted request body in bytes. */
  maxBodyBytes: number;
  /** The live page (`GET /`, `/live/…`); absent: no page. */
  live?: LiveFeed;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Builds the request handler for the HTTP endpoints. */
export function createHttpApi(broadcaster: Broadcaster, options: HttpApiOptions) {
  const tokenDigest = options.publishToken === undefined ? null : digest(options.publishToken);

  return function handle(request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? '/';
    const path = url.split('?', 1)[0]!;
    // 503 while shutting down, so a load balancer stops sending clients here.
    if (request.method === 'GET' && path === '/healthz') return broadcaster.closing ? json(response, 503, { status: 'closing' }) : json(response, 200, { status: 'ok' });
    if (request.method === 'GET' && path === '/stats') return json(response, 200, broadcaster.stats());
    if (request.method === 'GET' && path === '/metrics') return metrics(broadcaster, response);
    if (options.live?.handle(request, response, path) === true) return;
    if (path.startsWith('/publish/')) {
      if (request.method !== 'POST') return json(response, 405, { error: 'use POST /publish/:channel' }, { allow: 'POST' });
      const refusal = checkPublishAccess(request, tokenDigest);
      if (refusal !== null) return json(response, refusal.status, { error: refusal.message, code: ERROR_CODES.UNAUTHORIZED });
      const channel = decodeChannel(path.slice('/publish/'.length));
      if (channel === null) return json(response, 400, { error: new InvalidChannelError(path.slice('/publish/'.length)).message, code: ERROR_CODES.INVALID_CHANNEL });
      publishFromRequest(broadcaster, channel, request, response, options.maxBodyBytes).catch((error: unknown) => {
        // The producer went away mid-upload ('aborted'), or a bug: never let one request take the server down.
        if (!response.headersSent && !request.destroyed) json(response, 500, { error: `publish failed: ${(error as Error).message}` });
        else request.destroy();
      });
      return;
    }
    if (path.startsWith('/history/')) {
      if (request.method !== 'GET') return json(response, 405, { error: 'use GET /history/:channel' }, { allow: 'GET' });
      const refusal = checkPublishAccess(request, tokenDigest);
      if (refusal !== null) return json(response, refusal.status, { error: refusal.message, code: ERROR_CODES.UNAUTHORIZED });
      const channel = decodeChannel(path.slice('/history/'.length));
      if (channel === null) return json(response, 400, { error: new InvalidChannelError(path.slice('/history/'.length)).message, code: ERROR_CODES.INVALID_CHANNEL });
      return readHistoryRequest(broadcaster, channel, url, response);
    }
    json(response, 404, { error: `no route for ${request.method} ${path}` });
  };
}

/** `GET /metrics`: the Prometheus text exposition; 404 when the broadcaster has metrics off. */
function metrics(broadcaster: Broadcaster, response: ServerResponse): void {
  const { metrics } = broadcaster;
  if (metrics === null) return json(response, 404, { error: 'metrics are off (metrics: false)' });
  metrics.text().then(
    (text) => {
      response.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
      response.end(text);
    },
    (error: unknown) => json(response, 500, { error: `metrics failed: ${(error as Error).message}` }),
  );
}

/** The channel named by a URL path segment, or null if it is not valid percent-encoding of a valid channel. */
function decodeChannel(segment: string): string | null {
  let channel: string;
  try {
    channel = decodeURIComponent(segment);
  } catch {
    return null;
  }
  return isValidChannel(channel) ? channel : null;
}

/** Whether a peer address is this host's loopback interface (IPv4, IPv6, or IPv4 mapped into IPv6). */
export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.has(address);
}

function checkPublishAccess(request: IncomingMessage, tokenDigest: Buffer | null): { status: number; message: string } | null {
  if (tokenDigest === null) {
    return isLoopbackAddress(request.socket.remoteAddress)
      ? null
      : { status: 403, message: 'publishing over HTTP is allowed from loopback only unless BATCHCAST_PUBLISH_TOKEN is set' };
  }
  const header = request.headers.authorization ?? '';
  const presented = header.startsWith('Bearer ') ? header.slice(7) : '';
  // Compare digests: equal length always, so timingSafeEqual never throws and timing says nothing.
  if (presented === '' || !timingSafeEqual(digest(presented), tokenDigest)) {
    return { status: 401, message: 'missing or wrong publish token (Authorization: Bearer <token>)' };
  }
  return null;
}

async function publishFromRequest(
  broadcaster: Broadcaster,
  channel: string,
  request: IncomingMessage,
  response: ServerResponse,
  maxBodyBytes: number,
): Promise<void> {
  const raw = await readBody(request, maxBodyBytes);
  if (raw === null) {
    // Answer at once; the rest of the upload is read and dropped (see readBody), so a client that writes its
    // whole body before reading still gets this 413 instead of a connection reset.
    json(response, 413, { error: `request body over ${maxBodyBytes} bytes`, code: ERROR_CODES.MESSAGE_TOO_LARGE });
    return;
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    return json(response, 400, { error: `body is not valid JSON: ${(error as Error).message}`, code: ERROR_CODES.INVALID_MESSAGE });
  }
  const messages = Array.isArray(body) ? body : [body];
  let accepted = 0;
  try {
    for (const message of messages) {
      broadcaster.publish(channel, message);
      accepted++;
    }
  } catch (error) {
    if (!(error instanceof BatchcastError)) throw error;
    // Messages before the bad one are already published: say how many.
    return json(response, error.code === ERROR_CODES.CLOSED ? 503 : 400, { error: error.message, code: error.code, accepted });
  }
  json(response, 202, { accepted: messages.length });
}

/** `GET /history/:channel?since=N&limit=M`: a page of decoded history (see `Broadcaster.history`). */
function readHistoryRequest(broadcaster: Broadcaster, channel: string, url: string, response: ServerResponse): void {
  const params = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const number = (name: string): number | undefined => {
    const text = params.get(name);
    return text === null || text === '' ? undefined : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  };
  broadcaster.history(channel, { since: number('since'), limit: number('limit') }).then(
    (page) => json(response, 200, page),
    (error: unknown) => {
      if (error instanceof BatchcastError) json(response, error.code === ERROR_CODES.BROKER ? 503 : 400, { error: error.message, code: error.code });
      else json(response, 500, { error: `history failed: ${(error as Error).message}` });
    },
  );
}

/** After a 413, how much more of an upload is read and dropped, and for how long, before the connection is cut. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/**
 * The request body, or null once it passes `maxBytes`. From then on the rest is read
 * and dropped (not buffered), up to {@link DRAIN_MAX_BYTES} or {@link DRAIN_MAX_MS}:
 * closing a socket with unread data resets the connection, and the reset can destroy
 * the 413 before the client reads it (clients such as Python's http.client write the
 * whole body first). Rejects if the client goes away before the end.
 */
function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      request.off('data', onData).off('end', onEnd).off('close', onClose);
      chunks.length = 0;
      drain(request);
      resolve(null);
    };
    const onEnd = (): void => {
      request.off('close', onClose);
      resolve(Buffer.concat(chunks));
    };
    const onClose = (): void => reject(new Error('the client closed the connection before the end of the body'));
    request.on('data', onData).once('end', onEnd).once('close', onClose);
  });
}

/** Reads and drops the rest of a refused upload, within bounds; past them the connection is destroyed. */
function drain(request: IncomingMessage): void {
  let dropped = 0;
  const timer = setTimeout(() => request.destroy(), DRAIN_MAX_MS);
  timer.unref();
  request.on('data', (chunk: Buffer) => {
    dropped += chunk.byteLength;
    if (dropped > DRAIN_MAX_BYTES) request.destroy();
  });
  request.once('close', () => clearTimeout(timer));
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}
