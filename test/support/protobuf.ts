/** A minimal protobuf writer for hand-made OTLP export bodies (tests only). */
function varint(value: number): Buffer {
  const bytes: number[] = []
  let rest = value
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80)
    rest >>>= 7
  }

  bytes.push(rest)
  return Buffer.from(bytes)
}

/** A length-delimited field (wire type 2): bytes, a string or an embedded message. */
export const message = (field: number, bytes: Buffer) => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes])

/** A fixed64 field (wire type 1), e.g. a span's start and end in nanoseconds. */
export function fixed64(field: number, value: bigint): Buffer {
  const bytes = Buffer.alloc(8)
  bytes.writeBigUInt64LE(value)
  return Buffer.concat([varint((field << 3) | 1), bytes])
}
