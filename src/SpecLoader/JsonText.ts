/**
 * JSON bytes to text that V8 parses faster and stores in half the memory. Decoding UTF-8 gives a two-byte
 * string as soon as one character is above U+00FF, although most specs have only a few such characters (the
 * 13 MB GitHub spec has 140 non-ASCII bytes): that string takes twice the file's size, and `JSON.parse` reads
 * it more slowly. Written instead as ASCII, with each non-ASCII character as a `\uXXXX` escape, the text is a
 * one-byte string, and `JSON.parse` gives the same values: JSON allows non-ASCII characters only inside
 * strings, where the escape stands for the same character.
 */
import { isAscii } from "node:buffer"

/** Below this many bytes, a stretch with non-ASCII bytes is searched byte by byte rather than halved again. */
const STRETCH = 64

/**
 * Where the search stops and the text is decoded as it is: the escaped text would be more than a tenth longer,
 * or there are more runs of non-ASCII bytes than one per 16 KB (finding each costs more than decoding).
 */
const MAX_EXTRA = 0.1
const BYTES_PER_RUN = 16_384

const BACKSLASH = 0x5c

const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

/**
 * The text with every non-ASCII character written as `\uXXXX`. For JSON text as JSON.stringify writes it
 * (no raw backslash before such a character), the same JSON, which parseJsonBytes reads without searching.
 */
export const asciiJson = (json: string): string => json.replace(/[\u0080-\uffff]/g, escapeChar)

/**
 * The document in `bytes` when they are JSON (UTF-8, a byte order mark allowed), parsed from its ASCII text;
 * undefined when they do not start like JSON or do not parse, for the caller to parse the text the usual
 * way (JSON-looking YAML, and the error message of invalid JSON, come from the text as it is).
 */
export const parseJsonBytes = (bytes: Uint8Array): unknown => {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const start = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0
  let first = start
  while (buf[first] === 0x20 || buf[first] === 0x0a || buf[first] === 0x0d || buf[first] === 0x09) first++
  if (buf[first] !== 0x7b && buf[first] !== 0x5b) return undefined // { [
  const text = asciiText(buf, start)
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * `buf` from `start` as ASCII text, each non-ASCII character written as `\uXXXX`. Undefined when one follows
 * a backslash (invalid JSON that the escape would make valid), or when there are so many that decoding the
 * UTF-8 is faster (MAX_EXTRA, BYTES_PER_RUN). Text outside strings needs no care: a non-ASCII character
 * there is a syntax error, escaped or not.
 */
const asciiText = (buf: Buffer, start: number): string | undefined => {
  if (isAscii(buf)) return buf.toString("latin1")
  // non-ASCII runs: [from, to) in bytes, and what replaces each
  const runs: Array<number> = []
  const escapes: Array<string> = []
  let extra = 0
  let done = start
  let usable = true
  // Halves the text while a half holds a non-ASCII byte (isAscii is native and fast); a JS loop over every
  // byte would take longer than decoding the whole text.
  const search = (from: number, to: number): void => {
    from = Math.max(from, done)
    if (!usable || from >= to || isAscii(buf.subarray(from, to))) return
    if (to - from > STRETCH) {
      const middle = (from + to) >>> 1
      search(from, middle)
      search(middle, to)
      return
    }
    for (let i = from; i < to;) {
      if (buf[i]! < 0x80) {
        i++
        continue
      }
      const runFrom = i
      while (i < buf.length && buf[i]! >= 0x80) i++
      if (runFrom > start && buf[runFrom - 1] === BACKSLASH) {
        usable = false
        return
      }
      // a run between ASCII bytes decodes the same on its own as in the whole text (an ASCII byte ends any
      // malformed sequence, which becomes U+FFFD either way), and to non-ASCII characters only
      const replacement = asciiJson(buf.toString("utf8", runFrom, i))
      runs.push(runFrom, i)
      escapes.push(replacement)
      extra += replacement.length - (i - runFrom)
      done = i
      if (extra > MAX_EXTRA * buf.length || escapes.length > 16 + buf.length / BYTES_PER_RUN) {
        usable = false
        return
      }
    }
  }
  search(start, buf.length)
  if (!usable) return undefined
  const out = Buffer.allocUnsafeSlow(buf.length - start + extra)
  let at = 0
  let next = start
  for (let r = 0; r < escapes.length; r++) {
    at += buf.copy(out, at, next, runs[2 * r])
    at += out.write(escapes[r]!, at, "latin1")
    next = runs[2 * r + 1]!
  }
  buf.copy(out, at, next)
  return out.toString("latin1")
}
