/**
 * Writing log lines to a stream that may not keep up (a slow disk, a pipe nobody reads): a
 * stream buffers whatever it is given, so without a bound serve's memory would grow with every
 * line it cannot write. Here the stream's own count of bytes it still holds (`writableLength`)
 * is checked before each line: beyond `maxBytes` the line is dropped and counted, and the
 * stream's 'drain' (or the next line that fits) ends the episode. Each episode is reported once
 * when it begins and once when it ends, never per line.
 */
import {type Writable} from 'node:stream'

/** What serve's logs hold queued at most before they drop lines: far more than a healthy disk ever holds back. */
export const DEFAULT_MAX_QUEUED_BYTES = 4 * 1024 * 1024

/** A destination: a Node stream, or a plain sink (a test's array) that takes each line at once. */
export interface LineDestination {
  on?: Writable['on']
  removeListener?: Writable['removeListener']
  write(line: string, callback?: (error?: Error | null) => void): unknown
  writableLength?: number
}

export interface BoundedWriterOptions {
  /** Bytes queued in the stream beyond which lines are dropped; default DEFAULT_MAX_QUEUED_BYTES. */
  maxBytes?: number
  /** Each line dropped (a metric). */
  onDrop?: () => void
  /** Dropping began: the bytes queued then. */
  onDropStart: (queuedBytes: number) => void
  /** Dropping ended: the lines this episode dropped. */
  onDropEnd: (dropped: number) => void
}

export class BoundedWriter {
  /** Lines dropped since the start. */
  dropped = 0
  private readonly maxBytes: number
  /** Lines dropped in the current episode; 0 when none is under way. */
  private episode = 0
  private waiting: {stream: LineDestination; resume: () => void} | undefined

  constructor(private readonly options: BoundedWriterOptions) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_QUEUED_BYTES
  }

  /** Writes the line unless the stream already holds too much; false when it was dropped. */
  write(stream: LineDestination, line: string, callback?: (error?: Error | null) => void): boolean {
    const queued = stream.writableLength ?? 0
    if (queued > 0 && queued + Buffer.byteLength(line) > this.maxBytes) {
      this.dropped++
      this.options.onDrop?.()
      if (this.episode++ === 0) {
        this.options.onDropStart(queued)
        this.wait(stream)
      }

      return false
    }

    this.end()
    stream.write(line, callback)
    return true
  }

  /** The stream is let go (a reopen, a close): an episode under way ends with it. */
  release(): void {
    this.end()
  }

  private wait(stream: LineDestination): void {
    if (!stream.on || !stream.removeListener) return
    // The stream is over its high-water mark (it holds more than maxBytes), so its last write
    // returned false and it will say 'drain' once it has written what it holds.
    const resume = () => this.end()
    this.waiting = {resume, stream}
    stream.on('drain', resume)
  }

  private end(): void {
    if (this.waiting) {
      this.waiting.stream.removeListener?.('drain', this.waiting.resume)
      this.waiting = undefined
    }

    if (this.episode === 0) return
    const dropped = this.episode
    this.episode = 0
    this.options.onDropEnd(dropped)
  }
}
