/**
 * DEFLATE (RFC 1951) byte layouts that let one compression of a batch serve every
 * wire form, laid out by copying, never by compressing again:
 *
 *   core       the batch body deflated as a fresh stream and sync-flushed, less the
 *              flush's last 4 bytes (`00 00 ff ff`): it ends inside the header of an
 *              empty stored block, exactly as RFC 7692 wants a message to end.
 *   envelope   core + `00 00 ff ff` + `03 00` (a final, empty fixed-Huffman block):
 *              a complete raw DEFLATE stream, the body of a compressed envelope.
 *   pmd        a stored block holding literal bytes (a header that is stamped per
 *              batch), then core: valid for every permessage-deflate client, whatever
 *              its inflater saw before, because nothing refers back past its start.
 *   zlib       `78 9c` + the envelope stream + Adler-32 of the body (RFC 1950), what
 *              `pako.inflate` reads.
 *
 * A stored block's bytes stay literal in the stream, so a header with a sequence
 * number can go in front of a compressed body without touching it.
 * Browser-safe: no Node APIs.
 */

/** What a sync flush ends with: LEN and NLEN of an empty stored block. */
export const SYNC_TAIL = Uint8Array.of(0x00, 0x00, 0xff, 0xff);
/** A final, empty fixed-Huffman block: ends a stream after a sync flush (what zlib's Z_FINISH adds there). */
export const FINAL_EMPTY_BLOCK = Uint8Array.of(0x03, 0x00);
/** Bytes an envelope stream has beyond its core. */
export const ENVELOPE_SUFFIX_BYTES = SYNC_TAIL.byteLength + FINAL_EMPTY_BLOCK.byteLength;
/** A stored block's header: the block-type byte (BFINAL 0, BTYPE 00, padding), LEN, NLEN. */
export const STORED_HEADER_BYTES = 5;
/** The longest a stored block can be. */
export const MAX_STORED_BYTES = 0xffff;
/** A zlib header for a 32 KiB window and default compression (CMF 0x78, FLG 0x9c: (CMF·256 + FLG) % 31 = 0). */
export const ZLIB_HEADER = Uint8Array.of(0x78, 0x9c);

/**
 * Writes the header of a non-final stored block of `length` bytes (≤ 65535) at `offset`;
 * returns the offset after it. The block starts on a byte boundary, as every block of
 * these layouts does.
 */
export function writeStoredBlockHeader(target: Uint8Array, offset: number, length: number): number {
  target[offset] = 0x00;
  target[offset + 1] = length & 0xff;
  target[offset + 2] = length >>> 8;
  target[offset + 3] = ~length & 0xff;
  target[offset + 4] = (~length >>> 8) & 0xff;
  return offset + STORED_HEADER_BYTES;
}

/**
 * The core of an envelope stream laid out as above (a view, no copy), or null when
 * the stream does not end with the sync-flush tail and the final empty block.
 */
export function coreOfEnvelopeStream(stream: Uint8Array): Uint8Array | null {
  const end = stream.byteLength;
  if (end < ENVELOPE_SUFFIX_BYTES) return null;
  const at = end - ENVELOPE_SUFFIX_BYTES;
  for (let i = 0; i < SYNC_TAIL.byteLength; i++) if (stream[at + i] !== SYNC_TAIL[i]) return null;
  if (stream[end - 2] !== FINAL_EMPTY_BLOCK[0] || stream[end - 1] !== FINAL_EMPTY_BLOCK[1]) return null;
  return stream.subarray(0, at);
}

/** Adler-32 (RFC 1950) of `bytes`: the checksum a zlib stream ends with. */
export function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    // Reduce every 2000 bytes: b stays under 2^30, V8's small integers (measured ~0.9 ns/byte).
    const end = Math.min(i + 2000, n);
    for (; i + 8 <= end; i += 8) {
      a += bytes[i]!; b += a; a += bytes[i + 1]!; b += a; a += bytes[i + 2]!; b += a; a += bytes[i + 3]!; b += a;
      a += bytes[i + 4]!; b += a; a += bytes[i + 5]!; b += a; a += bytes[i + 6]!; b += a; a += bytes[i + 7]!; b += a;
    }
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
