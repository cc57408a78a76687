/**
 * A one-line spinner on stderr for requests that keep a person waiting: it appears only after
 * half a second (quick answers show nothing), only when stderr is a terminal (never in a pipe, a
 * log or on stdout), and erases itself when the wait ends, so it leaves nothing behind.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
const DELAY_MS = 500
const FRAME_MS = 100

export class Progress {
  private label = ''
  private shown = false
  private started = 0
  private timer: NodeJS.Timeout | undefined
  private frame = 0
  private waits = 0

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  static enabledFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
    return Boolean(stream.isTTY) && env.TERM !== 'dumb'
  }

  /** Starts (or relabels) the wait; the returned function ends it. Nested waits share one line. */
  begin(label: string): () => void {
    this.label = label
    this.waits++
    if (this.waits === 1) {
      this.started = Date.now()
      this.timer = setTimeout(() => this.tick(), DELAY_MS)
      this.timer.unref()
    }

    let ended = false
    return () => {
      if (ended) return
      ended = true
      this.waits--
      if (this.waits === 0) this.stop()
    }
  }

  /** Writes a line of status without tearing the spinner: erased first, redrawn on the next frame. */
  interrupt(write: () => void): void {
    this.erase()
    write()
  }

  private tick(): void {
    const seconds = Math.floor((Date.now() - this.started) / 1000)
    this.stream.write(`\r\u001B[2K${FRAMES[this.frame++ % FRAMES.length]} ${this.label}${seconds > 0 ? ` (${seconds}s)` : ''}`)
    this.shown = true
    this.timer = setTimeout(() => this.tick(), FRAME_MS)
    this.timer.unref()
  }

  private erase(): void {
    if (!this.shown) return
    this.stream.write('\r\u001B[2K')
    this.shown = false
  }

  private stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.erase()
  }
}
