/**
 * WebSocket (RFC 6455) frame headers for server-to-client frames: unmasked, FIN set.
 * The worker prefixes each envelope with one of these so the main thread's fan-out
 * is a single socket write of a finished buffer per client.
 */

export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;

/** Length of an unmasked frame header for a payload of `payloadLength` bytes. */
export function wsFrameHeaderLength(payloadLength: number): number {
  if (payloadLength < 126) return 2;
  if (payloadLength < 65536) return 4;
  return 10;
}

/**
 * Writes an unmasked, final frame header at offset 0 of `target`.
 * `rsv1` marks a permessage-deflate compressed payload. Returns the header length.
 */
export function writeWsFrameHeader(target: Uint8Array, payloadLength: number, opcode: number, rsv1 = false): number {
  target[0] = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
  if (payloadLength < 126) {
    target[1] = payloadLength;
    return 2;
  }
  if (payloadLength < 65536) {
    target[1] = 126;
    target[2] = payloadLength >>> 8;
    target[3] = payloadLength & 0xff;
    return 4;
  }
  target[1] = 127;
  const view = new DataView(target.buffer, target.byteOffset, 10);
  view.setUint32(2, Math.floor(payloadLength / 2 ** 32));
  view.setUint32(6, payloadLength >>> 0);
  return 10;
}

/** Where the payload starts in an unmasked frame this module wrote. */
export function wsPayloadOffset(frame: Uint8Array): number {
  const length = frame[1]! & 0x7f;
  return length < 126 ? 2 : length === 126 ? 4 : 10;
}
