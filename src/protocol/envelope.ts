/**
 * The batchcast envelope (protocol version 1): a fixed 18-byte header, the channel
 * name, then the body. Shared by the worker (writes), the server (patches the
 * sequence number) and the clients (read). No Node-only APIs: this runs in browsers.
 *
 *   offset size  field
 *   0      1     magic 0xBC
 *   1      1     version (1)
 *   2      1     kind: 1 = batch, 2 = notice (JSON body, never compressed)
 *   3      1     flags: bit 0 = body is raw DEFLATE; bits 4-7 = codec (0 JSON, 1 msgpack)
 *   4      4     message count, u32 big-endian
 *   8      8     sequence number of the first message, u64 big-endian
 *   16     2     channel name length n, u16 big-endian
 *   18     n     channel name, ASCII
 *   18+n   ...   body: JSON array or msgpack array of the messages
 */
import { MAX_CHANNEL_LENGTH, isValidChannel } from './channel.js';

export const MAGIC = 0xbc;
export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 18;
export const SEQ_OFFSET = 8;

export const KIND_BATCH = 1;
export const KIND_NOTICE = 2;

export const FLAG_COMPRESSED = 0x01;
/** Flag bits 1-3: reserved, always 0 in version 1. */
export const FLAGS_RESERVED = 0x0e;

export const CODEC_IDS = { json: 0, msgpack: 1 } as const;
export type Codec = keyof typeof CODEC_IDS;
export const CODEC_NAMES: readonly Codec[] = ['json', 'msgpack'];

/** Fields of an envelope header. */
export interface EnvelopeHeader {
  kind: number;
  codec: Codec;
  compressed: boolean;
  count: number;
  firstSeq: number;
  channel: string;
  /** Offset of the body within the envelope. */
  bodyOffset: number;
}

const TWO_32 = 2 ** 32;

/** Bytes an envelope header takes for `channel` (ASCII). */
export function envelopeHeaderLength(channel: string): number {
  return HEADER_BYTES + channel.length;
}

/**
 * Writes an envelope header for `channel` at `offset` of `target`.
 * The sequence number can be patched later with {@link writeFirstSeq}.
 */
export function writeEnvelopeHeader(
  target: Uint8Array,
  offset: number,
  kind: number,
  codec: Codec,
  compressed: boolean,
  count: number,
  firstSeq: number,
  channel: string,
): number {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  target[offset] = MAGIC;
  target[offset + 1] = PROTOCOL_VERSION;
  target[offset + 2] = kind;
  target[offset + 3] = (compressed ? FLAG_COMPRESSED : 0) | (CODEC_IDS[codec] << 4);
  view.setUint32(offset + 4, count);
  writeFirstSeq(view, offset, firstSeq);
  view.setUint16(offset + 16, channel.length);
  for (let i = 0; i < channel.length; i++) target[offset + HEADER_BYTES + i] = channel.charCodeAt(i);
  return offset + HEADER_BYTES + channel.length;
}

/** Writes the first-message sequence number into the envelope starting at `envelopeOffset`. */
export function writeFirstSeq(view: DataView, envelopeOffset: number, seq: number): void {
  view.setUint32(envelopeOffset + SEQ_OFFSET, Math.floor(seq / TWO_32));
  view.setUint32(envelopeOffset + SEQ_OFFSET + 4, seq >>> 0);
}

/**
 * Reads an envelope header. Returns a string naming what is wrong when the bytes
 * are not a version-1 envelope (callers turn it into their own error type).
 */
export function readEnvelopeHeader(bytes: Uint8Array): EnvelopeHeader | string {
  if (bytes.byteLength < HEADER_BYTES) return `frame of ${bytes.byteLength} bytes is shorter than the ${HEADER_BYTES}-byte header`;
  if (bytes[0] !== MAGIC) return `bad magic byte 0x${(bytes[0] ?? 0).toString(16)} (expected 0xbc)`;
  if (bytes[1] !== PROTOCOL_VERSION) return `unsupported protocol version ${bytes[1]} (this decoder reads ${PROTOCOL_VERSION})`;
  const kind = bytes[2]!;
  if (kind !== KIND_BATCH && kind !== KIND_NOTICE) return `unknown frame kind ${kind}`;
  const flags = bytes[3]!;
  if ((flags & FLAGS_RESERVED) !== 0) return `reserved flag bits set (flags 0x${flags.toString(16)})`;
  const codec = CODEC_NAMES[flags >> 4];
  if (codec === undefined) return `unknown codec id ${flags >> 4}`;
  const compressed = (flags & FLAG_COMPRESSED) !== 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(4);
  const firstSeq = view.getUint32(SEQ_OFFSET) * TWO_32 + view.getUint32(SEQ_OFFSET + 4);
  if (kind === KIND_NOTICE && (count !== 0 || compressed)) return 'notice with a message count or the compressed flag';
  // Past 2^53 sequence numbers lose precision in JavaScript: no server gets there, a hostile one could.
  if (firstSeq + count > Number.MAX_SAFE_INTEGER) return `sequence numbers ${firstSeq}+${count} pass 2^53`;
  const channelLength = view.getUint16(16);
  if (channelLength > MAX_CHANNEL_LENGTH) return `channel length ${channelLength} is over ${MAX_CHANNEL_LENGTH}`;
  const bodyOffset = HEADER_BYTES + channelLength;
  if (bodyOffset > bytes.byteLength) return `channel length ${channelLength} runs past the end of the frame`;
  let channel = '';
  for (let i = HEADER_BYTES; i < bodyOffset; i++) channel += String.fromCharCode(bytes[i]!);
  if (kind === KIND_BATCH ? !isValidChannel(channel) : channel !== '' && !isValidChannel(channel)) {
    return `channel name ${JSON.stringify(channel.slice(0, 40))} is not a valid channel`;
  }
  return { kind, codec, compressed, count, firstSeq, channel, bodyOffset };
}
