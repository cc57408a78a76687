/**
 * Where JSON.parse gave up in an auth store file, as "unexpected X at line L, column C": V8's own
 * message has no position for some errors, and quotes file content (password hashes) for others.
 * Only JSON's own punctuation is quoted back; any other character could be part of a secret.
 */

/** The message for `text`, which JSON.parse refused; undefined when no position can be given. */
export function jsonSyntaxMessage(text: string): string | undefined {
  try {
    new JsonScanner(text).document()
    return undefined
  } catch (error) {
    // A number is where the scan stopped; anything else (a stack overflow on deep nesting) has no position.
    if (typeof error !== 'number') return undefined
    return positionMessage(text, error)
  }
}

function positionMessage(text: string, offset: number): string {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  const column = offset - before.lastIndexOf('\n')
  const what = offset >= text.length ? 'end of file' : '{}[],:"'.includes(text[offset]) ? JSON.stringify(text[offset]) : 'character'
  return `unexpected ${what} at line ${line}, column ${column}`
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

/** A recursive-descent reader of JSON's grammar that only tracks its offset; a failure throws the offset. */
class JsonScanner {
  private i = 0

  constructor(private readonly text: string) {}

  /** One value, then nothing but whitespace. */
  document(): void {
    this.value()
    this.space()
    if (this.i < this.text.length) this.fail()
  }

  private fail(): never {
    throw this.i
  }

  private space(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i])) this.i++
  }

  private expect(char: string): void {
    if (this.text[this.i] !== char) this.fail()
    this.i++
  }

  private value(): void {
    this.space()
    const char = this.text[this.i]
    if (char === '{') this.object()
    else if (char === '[') this.array()
    else if (char === '"') this.string()
    else if (char === 't' || char === 'f' || char === 'n') {
      for (const letter of char === 't' ? 'true' : char === 'f' ? 'false' : 'null') this.expect(letter)
    } else this.number()
  }

  private object(): void {
    this.i++
    this.space()
    if (this.text[this.i] === '}') return void this.i++
    for (;;) {
      this.space()
      if (this.text[this.i] !== '"') this.fail()
      this.string()
      this.space()
      this.expect(':')
      this.value()
      this.space()
      if (this.text[this.i] === '}') return void this.i++
      this.expect(',')
    }
  }

  private array(): void {
    this.i++
    this.space()
    if (this.text[this.i] === ']') return void this.i++
    for (;;) {
      this.value()
      this.space()
      if (this.text[this.i] === ']') return void this.i++
      this.expect(',')
    }
  }

  private string(): void {
    const {text} = this
    this.i++
    for (;;) {
      if (this.i >= text.length || text.charCodeAt(this.i) < 0x20) this.fail()
      const char = text[this.i++]
      if (char === '"') return
      if (char === '\\') this.escape()
    }
  }

  /** After a backslash: one of JSON's escapes, or \u and four hex digits. */
  private escape(): void {
    const escape = this.text[this.i] ?? this.fail()
    if (escape === 'u') {
      for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(this.text[this.i + k] ?? '')) this.fail()
      this.i += 5
    } else if ('"\\/bfnrt'.includes(escape)) this.i++
    else this.fail()
  }

  private number(): void {
    NUMBER.lastIndex = this.i
    if (!NUMBER.test(this.text)) this.fail()
    this.i = NUMBER.lastIndex
  }
}
