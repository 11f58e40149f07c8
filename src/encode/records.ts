/**
 * The msgpackr "records" codec of the hand-off (see handoff.ts): one packer and one
 * unpacker per thread, shared by the whole-batch and the sliced (segments.ts) forms.
 */
import { Packr, Unpackr } from 'msgpackr';

// Records: shapes are defined inline in each packed buffer, so every buffer unpacks on its own (any worker, any order).
export const recordPackr = new Packr({ useRecords: true });
// Maps come back as Maps (only Map instances are written as maps); 64-bit integers (only BigInts are) as BigInt.
export const recordUnpackr = new Unpackr({ useRecords: true, mapsAsObjects: false, int64AsType: 'bigint' });
// msgpackr renames a "__proto__" key to "__proto_" when unpacking (against prototype pollution), but
// JSON.parse makes such keys own properties and JSON.stringify writes them: those batches are cloned.
export const PROTO_KEY = Buffer.from('__proto__');
