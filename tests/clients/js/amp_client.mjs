// Amp's TypeScript SDK (npm @edgeandnode/amp 0.0.51: ArrowFlight.make(transport).query /
// .stream, stream/ProtocolStream.createProtocolStream) driven against a sluice server by
// tests/python/test_client_amp.py, exactly as docs/clients.md shows it.
//
//   node amp_client.mjs query URL SQL [TOKEN]
//       The batch answer: {"rows": [...]} (values as JSON: bigint and numbers as
//       strings, binary as 0x hex, timestamps as Unix microseconds), or {"error": "..."}.
//   node amp_client.mjs stream URL SQL [RESUME_RANGES_JSON] [TOKEN]
//       Streams for ever: one JSON line per protocol message the SDK emits:
//       {"type": "data", "ranges": [...], "rows": [...]} |
//       {"type": "watermark", "ranges": [...]} |
//       {"type": "reorg", "previous": [...], "incoming": [...], "invalidation": [...]},
//       then {"type": "error", ...} if the stream fails. RESUME_RANGES_JSON is the
//       `ranges` of a watermark, the SDK's own resume point.
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as Effect from "effect/Effect";
import * as Stream from "effect/Stream";
import * as ArrowFlight from "@edgeandnode/amp/api/ArrowFlight";
import * as Model from "@edgeandnode/amp/Model";
import { createProtocolStream } from "@edgeandnode/amp/stream/ProtocolStream";
import * as Schema from "effect/Schema";

const [command, url, sql, ...rest] = process.argv.slice(2);

function transport(token) {
  // What `amp query --bearer-token` does: an interceptor setting the header.
  const interceptors = token
    ? [(next) => (req) => {
        req.header.set("Authorization", `Bearer ${token}`);
        return next(req);
      }]
    : [];
  return createGrpcTransport({ baseUrl: url, interceptors });
}

function jsonValue(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return String(v);
  if (v instanceof Uint8Array) return "0x" + Buffer.from(v).toString("hex");
  if (v instanceof Date) return v.getTime() * 1000;
  if (typeof v === "object" && typeof v.toJSON === "function") {
    // Decimals (apache-arrow's BN): toJSON() is the digits in JSON string form.
    const j = v.toJSON();
    return typeof j === "string" && j.startsWith('"') ? JSON.parse(j) : j;
  }
  return v;
}

function rowsOf(batch) {
  const names = batch.schema.fields.map((f) => f.name);
  const units = batch.schema.fields.map((f) => (f.type.typeId === 10 ? f.type.unit : null));
  const out = [];
  for (let i = 0; i < batch.numRows; i++) {
    const row = {};
    names.forEach((name, c) => {
      let v = batch.getChildAt(c).get(i);
      // Timestamps come back in milliseconds (a number): Unix microseconds, a number.
      row[name] = units[c] !== null && typeof v === "number" ? Math.round(v * 1000) : jsonValue(v);
    });
    out.push(row);
  }
  return out;
}

function describe(error) {
  // The ArrowFlightError's cause is the ConnectError carrying the server's message.
  const cause = error?.cause ?? error;
  return { error: String(error?.message ?? error), method: error?.method ?? null,
           message: cause?.rawMessage ?? cause?.message ?? String(cause),
           code: cause?.code ?? null };
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function query(token) {
  const flight = ArrowFlight.make(transport(token));
  const program = flight.query(sql).pipe(Stream.runCollect);
  const exit = await Effect.runPromiseExit(program);
  if (exit._tag === "Failure") {
    const failure = exit.cause.error ?? exit.cause.defect ?? exit.cause;
    print(describe(failure));
    return;
  }
  const rows = [];
  for (const batch of exit.value) rows.push(...rowsOf(batch));
  print({ rows });
}

const rangesJson = (ranges) =>
  ranges.map((r) => ({ network: r.network, numbers: r.numbers, hash: r.hash,
                       prev_hash: r.prevHash ?? null }));

async function stream(resumeJson, token) {
  const flight = ArrowFlight.make(transport(token));
  let resume;
  if (resumeJson) {
    const decode = Schema.decodeUnknownSync(Model.BlockRanges);
    resume = decode(JSON.parse(resumeJson).map((r) => ({ ...r, prevHash: r.prev_hash ?? undefined })));
  }
  const messages = createProtocolStream(flight.stream(sql, resume), resume);
  const program = messages.pipe(Stream.runForEach((m) => Effect.sync(() => {
    if (m._tag === "ProtocolMessageData") {
      print({ type: "data", ranges: rangesJson(m.ranges), rows: rowsOf(m.batch) });
    } else if (m._tag === "ProtocolMessageWatermark") {
      print({ type: "watermark", ranges: rangesJson(m.ranges) });
    } else {
      print({ type: "reorg", previous: rangesJson(m.previous), incoming: rangesJson(m.incoming),
              invalidation: m.invalidation.map((r) => ({ network: r.network, numbers: r.numbers })) });
    }
  })));
  const exit = await Effect.runPromiseExit(program);
  if (exit._tag === "Failure") {
    print({ type: "error", ...describe(exit.cause.error ?? exit.cause.defect ?? exit.cause) });
  }
}

if (command === "query") {
  await query(rest[0]);
} else if (command === "stream") {
  await stream(rest[0] || null, rest[1]);
} else {
  console.error("usage: amp_client.mjs query|stream URL SQL ...");
  process.exit(2);
}
