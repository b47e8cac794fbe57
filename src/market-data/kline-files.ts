/**
 * Reads Binance kline dump files (data.binance.vision) into raw rows.
 *
 * Accepted inputs: `.csv`, `.csv.gz`, and the `.zip` archives Binance
 * publishes (one CSV inside). Rows may come with or without the header line
 * `open_time,open,high,...`, with 12 columns or 11 (no `ignore`), and with
 * times in milliseconds (13 digits) or microseconds (16 digits, spot dumps
 * from 2025-01-01 on); the unit is decided per row by magnitude.
 *
 * What this module does NOT do, on purpose: OHLC consistency, gap and
 * duplicate checks, sorting. Those belong to the importer that knows the
 * symbol and interval; here a row is either well-formed or reported.
 *
 * Prices and volumes stay the exact decimal strings from the file (only
 * surrounding whitespace is trimmed) so nothing is rounded before it becomes
 * a Decimal.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync, inflateRawSync } from 'node:zlib';

export interface RawKline {
  openTime: number;
  closeTime: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quoteVolume: string;
  trades: number;
  takerBuyVolume: string;
  takerBuyQuoteVolume: string;
}

/** One rejected row: the file as given by the caller, its 1-based line, and what is wrong. */
export interface KlineFileIssue {
  file: string;
  line: number;
  message: string;
}

export interface ReadKlineFileOptions {
  /** Called once per rejected row; the row is skipped. Without it, bad rows are skipped silently. */
  onIssue?: (issue: KlineFileIssue) => void;
}

export interface LoadedKlineFile {
  klines: RawKline[];
  issues: KlineFileIssue[];
  /** Most common positive difference between consecutive open times; undefined with fewer than two rows. */
  intervalMs: number | undefined;
}

export function formatKlineFileIssue(issue: KlineFileIssue): string {
  return `${issue.file}:${issue.line}: ${issue.message}`;
}

/**
 * Streams the well-formed rows of one dump file, in file order. The whole
 * decompressed file is held in memory (a monthly 1m file is 4-15 MB), but it
 * is scanned in place: no array of lines or fields is ever built.
 *
 * Being a generator, a missing or corrupt file throws on the first `next()`.
 */
export function* readKlineFile(path: string, opts: ReadKlineFileOptions = {}): Generator<RawKline> {
  const text = decodeFile(path);
  yield* parseKlineText(text, path, opts.onIssue);
}

/**
 * The decoded text of a dump file (csv, gzip or zip), exactly what
 * readKlineFile parses; for callers that need to look at lines again (the
 * importer names the line of a row that parsed but failed a later check).
 */
export function readKlineFileText(path: string): string {
  return decodeFile(path);
}

/** Reads a whole file: its rows, every rejected row, and the interval the rows suggest. */
export function loadKlineFile(path: string): LoadedKlineFile {
  const klines: RawKline[] = [];
  const issues: KlineFileIssue[] = [];
  for (const k of readKlineFile(path, { onIssue: (i) => issues.push(i) })) klines.push(k);
  return { klines, issues, intervalMs: modalStep(klines) };
}

// ---------------------------------------------------------------------------
// Parsing

/** Column names of the dump format, in order; also the expected header. */
const COLUMNS = [
  'open_time',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'close_time',
  'quote_volume',
  'count',
  'taker_buy_volume',
  'taker_buy_quote_volume',
  'ignore',
] as const;

const COMMA = 44;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
const CR = 13;

/*
 * Epoch ranges by magnitude. 13-digit ms spans 2001..2286 and 16-digit µs
 * spans 2001..2255 (capped at 2^53 so the value is an exact double); nothing
 * in between is a plausible Binance time, so anything else is a bad row
 * rather than a guess (e.g. 10-digit seconds).
 */
const MS_MIN = 1e12;
const MS_END = 1e13;
const US_MIN = 1e15;

/**
 * Scans `text` line by line with indexOf. Exported for callers that already
 * hold the text (e.g. a download kept in memory); `file` only labels issues.
 */
export function* parseKlineText(text: string, file: string, onIssue?: (issue: KlineFileIssue) => void): Generator<RawKline> {
  const len = text.length;
  // cuts[i] is the index of the comma before field i (cuts[0] = line start - 1).
  // Reused for every row: one small allocation per file, none per row.
  const cuts = new Int32Array(COLUMNS.length + 2);
  const report = (line: number, message: string): void => {
    onIssue?.({ file, line, message });
  };

  let pos = 0;
  // A BOM (files re-saved by spreadsheet tools) would otherwise break the header test.
  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  // One forward-only comma cursor for the whole text keeps the scan linear even
  // when many lines have no comma at all (indexOf would otherwise rescan to the
  // end of the text from every such line).
  let comma = nextIndex(text, ',', pos, len);
  let line = 0;
  // A header is only recognised before the first data row.
  let firstRow = true;

  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end === -1) end = len;
    line++;
    let stop = end;
    if (stop > pos && text.charCodeAt(stop - 1) === CR) stop--;
    const start = pos;
    pos = end + 1;

    if (isBlank(text, start, stop)) continue;

    // Split into fields: stop collecting after 13 (one too many) but keep
    // counting so the message can say how many there were.
    if (comma < start) comma = nextIndex(text, ',', start, len);
    cuts[0] = start - 1;
    let commas = 0;
    while (comma < stop) {
      commas++;
      if (commas < cuts.length) cuts[commas] = comma;
      comma = nextIndex(text, ',', comma + 1, len);
    }
    const fields = commas + 1;

    if (firstRow) {
      firstRow = false;
      if (isHeader(text, start, fields === 1 ? stop : cuts[1]!)) {
        const problem = headerProblem(text.slice(start, stop));
        if (problem !== undefined) report(line, problem);
        continue;
      }
    }
    if (fields !== 12 && fields !== 11) {
      report(line, `expected 12 columns (11 without ignore), got ${fields}`);
      continue;
    }
    if (fields < cuts.length) cuts[fields] = stop;

    // Times. The unit comes from open_time; close_time must agree.
    const rawOpen = readUint(text, cuts[0]! + 1, cuts[1]!);
    if (rawOpen < 0) {
      report(line, `open_time: expected an integer, got ${quoteField(text, cuts[0]! + 1, cuts[1]!)}`);
      continue;
    }
    const micros = rawOpen >= US_MIN && rawOpen <= Number.MAX_SAFE_INTEGER;
    if (!micros && !(rawOpen >= MS_MIN && rawOpen < MS_END)) {
      report(line, `open_time: expected epoch milliseconds (13 digits) or microseconds (16 digits), got ${quoteField(text, cuts[0]! + 1, cuts[1]!)}`);
      continue;
    }
    if (micros && rawOpen % 1000 !== 0) {
      report(line, `open_time: microsecond time ${quoteField(text, cuts[0]! + 1, cuts[1]!)} is not a whole millisecond`);
      continue;
    }
    const rawClose = readUint(text, cuts[6]! + 1, cuts[7]!);
    if (rawClose < 0) {
      report(line, `close_time: expected an integer, got ${quoteField(text, cuts[6]! + 1, cuts[7]!)}`);
      continue;
    }
    const closeMicros = rawClose >= US_MIN && rawClose <= Number.MAX_SAFE_INTEGER;
    if (closeMicros !== micros || (!micros && !(rawClose >= MS_MIN && rawClose < MS_END))) {
      report(line, `close_time: expected epoch ${micros ? 'microseconds (16 digits) like open_time' : 'milliseconds (13 digits) like open_time'}, got ${quoteField(text, cuts[6]! + 1, cuts[7]!)}`);
      continue;
    }
    // Real µs dumps end a candle at xxx999999 (the last µs of the last ms), so a
    // close time may be a whole ms or the last µs of one; floor maps both onto
    // the ms convention (open + 59999 for 1m).
    if (micros && rawClose % 1000 !== 0 && rawClose % 1000 !== 999) {
      report(line, `close_time: microsecond time ${quoteField(text, cuts[6]! + 1, cuts[7]!)} is neither a whole millisecond nor its last microsecond`);
      continue;
    }
    // Remainder first: exact integer division, where Math.floor(v / 1000) could round up.
    const openTime = micros ? (rawOpen - (rawOpen % 1000)) / 1000 : rawOpen;
    const closeTime = micros ? (rawClose - (rawClose % 1000)) / 1000 : rawClose;
    if (closeTime < openTime) {
      report(line, `close_time ${closeTime} is before open_time ${openTime}`);
      continue;
    }

    const trades = readUint(text, cuts[8]! + 1, cuts[9]!);
    if (trades < 0 || trades > Number.MAX_SAFE_INTEGER) {
      report(line, `count: expected a non-negative integer, got ${quoteField(text, cuts[8]! + 1, cuts[9]!)}`);
      continue;
    }

    const open = readDecimal(text, cuts[1]! + 1, cuts[2]!);
    const high = readDecimal(text, cuts[2]! + 1, cuts[3]!);
    const low = readDecimal(text, cuts[3]! + 1, cuts[4]!);
    const close = readDecimal(text, cuts[4]! + 1, cuts[5]!);
    const volume = readDecimal(text, cuts[5]! + 1, cuts[6]!);
    const quoteVolume = readDecimal(text, cuts[7]! + 1, cuts[8]!);
    const takerBuyVolume = readDecimal(text, cuts[9]! + 1, cuts[10]!);
    const takerBuyQuoteVolume = readDecimal(text, cuts[10]! + 1, cuts[11]!);
    if (
      open === undefined ||
      high === undefined ||
      low === undefined ||
      close === undefined ||
      volume === undefined ||
      quoteVolume === undefined ||
      takerBuyVolume === undefined ||
      takerBuyQuoteVolume === undefined
    ) {
      // Rare path: find the first bad field again to name it.
      for (const i of [1, 2, 3, 4, 5, 7, 9, 10]) {
        if (readDecimal(text, cuts[i]! + 1, cuts[i + 1]!) === undefined) {
          report(line, `${COLUMNS[i]}: expected a decimal, got ${quoteField(text, cuts[i]! + 1, cuts[i + 1]!)}`);
          break;
        }
      }
      continue;
    }
    // `ignore` is not checked: Binance documents it as unused.

    yield { openTime, closeTime, open, high, low, close, volume, quoteVolume, trades, takerBuyVolume, takerBuyQuoteVolume };
  }
}

function nextIndex(text: string, ch: string, from: number, len: number): number {
  const i = text.indexOf(ch, from);
  return i === -1 ? len : i;
}

function isBlank(text: string, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (text.charCodeAt(i) > 32) return false;
  return true;
}

/** The first line is a header when its first field is not a number but the word open_time. */
function isHeader(text: string, s: number, e: number): boolean {
  return text.slice(s, e).trim().toLowerCase() === 'open_time';
}

/** A header with other columns means the file is not the format we think, so say so. */
function headerProblem(header: string): string | undefined {
  const names = header.split(',').map((n) => n.trim().toLowerCase());
  const expected = names.length === 11 ? COLUMNS.slice(0, 11) : COLUMNS;
  if (names.length === expected.length && names.every((n, i) => n === expected[i])) return undefined;
  return `header: expected "${COLUMNS.join(',')}" (ignore optional), got ${JSON.stringify(truncate(header))}`;
}

/**
 * Digits only, surrounding whitespace allowed; the value, or -1 when the
 * field is empty or holds anything else. Values past 2^53 come back inexact
 * (or Infinity) but still above MAX_SAFE_INTEGER, which every caller rejects
 * with a range message rather than "not an integer".
 */
function readUint(text: string, s: number, e: number): number {
  while (s < e && text.charCodeAt(s) <= 32) s++;
  while (e > s && text.charCodeAt(e - 1) <= 32) e--;
  if (s === e) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) return -1;
    v = v * 10 + (c - ZERO);
  }
  return v;
}

/**
 * The trimmed field when it matches /^\d+(\.\d+)?$/, else undefined. A
 * charCode scan rather than the regex because it runs 8 times per row. No
 * sign and no exponent: Binance never writes them, and a negative price or
 * volume is not a kline.
 */
function readDecimal(text: string, s: number, e: number): string | undefined {
  const s0 = s;
  const e0 = e;
  while (s < e && text.charCodeAt(s) <= 32) s++;
  while (e > s && text.charCodeAt(e - 1) <= 32) e--;
  if (s === e) return undefined;
  let dot = -1;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c >= ZERO && c <= NINE) continue;
    if (c !== DOT || dot !== -1) return undefined;
    dot = i;
  }
  if (dot === s || dot === e - 1) return undefined;
  return s === s0 && e === e0 ? text.slice(s0, e0) : text.slice(s, e);
}

function quoteField(text: string, s: number, e: number): string {
  return JSON.stringify(truncate(text.slice(s, e)));
}

/** Keeps messages readable when a binary or garbled line ends up in a field. */
function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function modalStep(klines: readonly RawKline[]): number | undefined {
  const counts = new Map<number, number>();
  for (let i = 1; i < klines.length; i++) {
    const d = klines[i]!.openTime - klines[i - 1]!.openTime;
    if (d > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best: number | undefined;
  let bestCount = 0;
  // Ties go to the smaller step so the answer does not depend on Map order.
  for (const [d, n] of counts) {
    if (n > bestCount || (n === bestCount && best !== undefined && d < best)) {
      best = d;
      bestCount = n;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Files

function decodeFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`kline file ${path}: cannot read: ${errorText(err)}`, { cause: err });
  }
  const lower = path.toLowerCase();
  if (lower.endsWith('.csv')) return bytes.toString('utf8');
  if (lower.endsWith('.gz')) {
    try {
      // gunzip checks the CRC-32 and length in the gzip trailer, so a truncated
      // download fails here instead of silently losing its last rows.
      return gunzipSync(bytes).toString('utf8');
    } catch (err) {
      throw new Error(`kline file ${path}: not a readable gzip file: ${errorText(err)}`, { cause: err });
    }
  }
  if (lower.endsWith('.zip')) return readSingleEntryZip(bytes, path).toString('utf8');
  throw new Error(`kline file ${path}: unsupported file type; expected .csv, .csv.gz or .zip`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const EOCD_SIG = 0x06054b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;

/**
 * The one file inside a data.binance.vision zip. Only what those archives
 * use is supported (stored or deflated, no encryption, no zip64, one entry);
 * anything else is refused rather than half-read. Sizes and the CRC come from
 * the central directory because local headers may defer them to a data
 * descriptor.
 */
function readSingleEntryZip(zip: Buffer, path: string): Buffer {
  const fail = (why: string): never => {
    throw new Error(`kline file ${path}: ${why}`);
  };
  if (zip.length < 22) fail('not a zip file (too short)');
  // The end-of-central-directory record is 22 bytes plus a comment of at most 64 KiB.
  let eocd = -1;
  for (let i = zip.length - 22, min = Math.max(0, zip.length - 22 - 0xffff); i >= min; i--) {
    if (zip.readUInt32LE(i) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd === -1) fail('not a zip file (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  const cdSize = zip.readUInt32LE(eocd + 12);
  const cdOffset = zip.readUInt32LE(eocd + 16);
  if (entries === 0xffff || cdOffset === 0xffffffff) fail('zip64 archives are not supported');
  if (cdOffset + cdSize > eocd) fail('corrupt zip (central directory out of bounds)');

  interface Entry {
    name: string;
    flags: number;
    method: number;
    crc: number;
    compressedSize: number;
    size: number;
    localOffset: number;
  }
  const files: Entry[] = [];
  let p = cdOffset;
  for (let n = 0; n < entries; n++) {
    if (p + 46 > eocd || zip.readUInt32LE(p) !== CDH_SIG) fail('corrupt zip (bad central directory entry)');
    const nameLen = zip.readUInt16LE(p + 28);
    const entry: Entry = {
      name: zip.toString('utf8', p + 46, p + 46 + nameLen),
      flags: zip.readUInt16LE(p + 8),
      method: zip.readUInt16LE(p + 10),
      crc: zip.readUInt32LE(p + 16),
      compressedSize: zip.readUInt32LE(p + 20),
      size: zip.readUInt32LE(p + 24),
      localOffset: zip.readUInt32LE(p + 42),
    };
    p += 46 + nameLen + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
    // Folder entries carry no data; some zip tools add them.
    if (!entry.name.endsWith('/')) files.push(entry);
  }
  if (files.length !== 1) {
    fail(`expected a zip holding exactly one file, found ${files.length}${files.length ? ` (${files.map((f) => f.name).slice(0, 5).join(', ')})` : ''}`);
  }
  const f = files[0]!;
  // Bit 0: traditional encryption; bit 6: strong encryption; method 99: AES.
  if (f.flags & 0x41 || f.method === 99) fail(`zip entry ${f.name} is encrypted`);
  if (f.method !== 0 && f.method !== 8) fail(`zip entry ${f.name} uses compression method ${f.method}; only stored (0) and deflate (8) are supported`);

  const lh = f.localOffset;
  if (lh + 30 > zip.length || zip.readUInt32LE(lh) !== LFH_SIG) fail(`corrupt zip (bad local header for ${f.name})`);
  const dataStart = lh + 30 + zip.readUInt16LE(lh + 26) + zip.readUInt16LE(lh + 28);
  const dataEnd = dataStart + f.compressedSize;
  if (dataEnd > zip.length) fail(`corrupt zip (entry ${f.name} is truncated)`);
  const raw = zip.subarray(dataStart, dataEnd);

  let out: Buffer;
  if (f.method === 0) out = raw;
  else {
    try {
      out = inflateRawSync(raw);
    } catch (err) {
      throw new Error(`kline file ${path}: corrupt zip entry ${f.name}: ${errorText(err)}`, { cause: err });
    }
  }
  if (out.length !== f.size) fail(`corrupt zip (entry ${f.name} inflates to ${out.length} bytes, expected ${f.size})`);
  const crc = crc32(out);
  if (crc !== f.crc) fail(`corrupt zip (entry ${f.name} CRC-32 ${hex(crc)}, expected ${hex(f.crc)})`);
  return out;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * CRC-32 (IEEE, reflected, as zip and gzip use). Hand-written because
 * zlib.crc32 only exists from Node 20.15 and package.json allows 20.6; the
 * table is built per call (256 steps, negligible next to a 15 MB entry) so
 * the module keeps no state.
 */
function crc32(bytes: Uint8Array): number {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
