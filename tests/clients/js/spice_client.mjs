// Spice's JavaScript SDK (npm @spiceai/spice 3.2.0) driven against a sluice server by
// tests/python/test_client_spicejs.py, as docs/clients.md shows it.
//
//   node spice_client.mjs MODE FLIGHT_HOST_PORT HTTP_URL SQL [API_KEY]
//
// MODE: "default" (Arrow Flight, falling back to HTTP POST /v1/sql on a Flight error,
// the SDK's default), "flight" (flightOnly) or "http" (httpOnly). Prints
// {"rows": [...]} (values as JSON: bigints as strings, binary as 0x hex) or
// {"error": "<the message the SDK throws>"}.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { SpiceClient } = require("@spiceai/spice");

const [mode, flightUrl, httpUrl, sql, apiKey] = process.argv.slice(2);

function jsonValue(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return String(v);
  if (v instanceof Uint8Array) return "0x" + Buffer.from(v).toString("hex");
  if (typeof v === "object" && typeof v.toJSON === "function") {
    const j = v.toJSON();
    return typeof j === "string" && j.startsWith('"') ? JSON.parse(j) : j;
  }
  return v;
}

const client = new SpiceClient({
  flightUrl,              // host:port; plaintext because the host is localhost / 127.0.0.1
  httpUrl,                // sluice's JSON Lines port, which serves POST /v1/sql
  apiKey: apiKey || undefined,
  flightOnly: mode === "flight",
  httpOnly: mode === "http",
  logging: false,
});

let answer;
try {
  const table = await client.sql(sql);
  const fields = table.schema.fields;
  const rows = [];
  for (let i = 0; i < table.numRows; i++) {
    const o = {};
    for (const f of fields) {
      const v = table.getChild(f.name).get(i);
      // Timestamps (type id 10) come back in milliseconds: Unix microseconds, a number.
      o[f.name] = f.type.typeId === 10 && typeof v === "number" ? Math.round(v * 1000) : jsonValue(v);
    }
    rows.push(o);
  }
  answer = { rows };
} catch (e) {
  answer = { error: String(e?.message ?? e) };
}
// Exit once the answer is written: a pipe is written asynchronously, and the SDK's
// gRPC channel would keep the process alive.
process.stdout.write(JSON.stringify(answer) + "\n", () => process.exit(0));
