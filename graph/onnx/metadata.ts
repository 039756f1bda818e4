/**
 * A model file's metadata_props without decoding its graph: the top-level fields of the ModelProto are walked and
 * only field 14 (metadata_props) is decoded, so a large model costs one read, not a full protobuf decode.
 */
import * as fs from 'fs';
import { onnx } from 'onnx-proto';
import { Reader } from 'protobufjs/minimal';

const METADATA_PROPS_FIELD = 14;

/** The metadata_props of the ONNX model in `file`, by key. */
export function readModelMetadata(file: string): Record<string, string> {
  const reader = Reader.create(fs.readFileSync(file));
  const metadata: Record<string, string> = {};
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === METADATA_PROPS_FIELD && (tag & 7) === 2) {
      const entry = onnx.StringStringEntryProto.decode(reader, reader.uint32());
      metadata[entry.key] = entry.value;
    } else {
      reader.skipType(tag & 7);
    }
  }
  return metadata;
}
