/**
 * The checks an HTTP upgrade request passes before the WebSocket is accepted:
 * path, origin allowlist, then the application's `authorize` hook.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Codec } from '../protocol/envelope.js';
import { FORMATS, isFormat, type Format } from '../protocol/formats.js';
import { queryParameter } from './control.js';

/** Result of `authorize`: accept (`true` or an identity object) or reject (`false` → 401, or 401/403). */
export type AuthorizeResult = boolean | 401 | 403 | object | null | undefined;

export interface UpgradeGateOptions {
  /** The format of connections that do not ask for one (`?format=`). */
  format: Format;
  /** The broadcaster's codec: formats other than `batchcast` carry JSON and need `json`. */
  codec: Codec;
  path?: string;
  allowedOrigins?: string[];
  authorize?: (request: IncomingMessage) => AuthorizeResult | Promise<AuthorizeResult>;
}

/** Accept with the identity `authorize` returned and the connection's format, or reject with an HTTP status. */
export type UpgradeVerdict = { accept: true; identity: unknown; format: Format } | { accept: false; status: number; reason: string };

/** Decides on an upgrade request. A throwing or rejecting `authorize` rejects with 401, and `onError` hears of it. */
export async function admitUpgrade(
  request: IncomingMessage,
  options: UpgradeGateOptions,
  onError: (error: unknown) => void,
): Promise<UpgradeVerdict> {
  const { path, allowedOrigins, authorize } = options;
  if (path !== undefined && pathname(request.url) !== path) return { accept: false, status: 404, reason: 'no WebSocket endpoint at this path' };
  const format = formatOf(request.url, options);
  if (typeof format !== 'string') return format;
  if (allowedOrigins !== undefined && !allowedOrigins.includes(request.headers.origin ?? '')) {
    return { accept: false, status: 403, reason: 'origin not allowed' };
  }
  if (authorize === undefined) return { accept: true, identity: undefined, format };
  let verdict: AuthorizeResult;
  try {
    verdict = await authorize(request);
  } catch (error) {
    onError(error);
    verdict = false;
  }
  if (verdict === 403) return { accept: false, status: 403, reason: 'forbidden' };
  if (verdict === false || verdict === 401 || verdict === null || verdict === undefined) return { accept: false, status: 401, reason: 'unauthorized' };
  return { accept: true, identity: typeof verdict === 'object' ? verdict : undefined, format };
}

/** The format the request asks for (`?format=`), the default, or a 400 naming what is wrong. */
function formatOf(url: string | undefined, options: UpgradeGateOptions): Format | Extract<UpgradeVerdict, { accept: false }> {
  const asked = queryParameter(url, 'format');
  if (asked === null || asked === '') return options.format;
  if (!isFormat(asked)) return { accept: false, status: 400, reason: `unknown format ${JSON.stringify(asked.slice(0, 40))}: expected ${FORMATS.join(', ')}` };
  if (asked !== 'batchcast' && options.codec !== 'json') {
    return { accept: false, status: 400, reason: `format ${asked} carries JSON; this server's codec is ${options.codec} (use format=batchcast)` };
  }
  return asked;
}

/** Answers the upgrade request with a plain HTTP error and closes the socket once it is sent. */
export function rejectUpgrade(socket: Duplex, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
}

function pathname(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
