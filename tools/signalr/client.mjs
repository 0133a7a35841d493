// A SignalR client for Hark's hub tests: the official @microsoft/signalr
// HubConnection, driven line by line. Commands are JSON lines on stdin,
// what happens is JSON lines on stdout (one object per line, `event`
// naming it). It exits when stdin closes.
//
//   {"cmd":"start","url":"http://127.0.0.1:8080/chat","token":"…",
//    "transport":"WebSockets"|"LongPolling"|"ServerSentEvents"|null,
//    "reconnect":[0,500,1000]|null}
//       -> {"event":"started","connectionId":"…"}
//        | {"event":"start_failed","error":"…"}
//   {"cmd":"invoke","id":1,"method":"SendMessage","args":["2","hi"]}
//       -> {"event":"result","id":1,"ok":true,"result":…}
//        | {"event":"result","id":1,"ok":false,"error":"…"}
//   {"cmd":"send","method":"Typing","args":[3]}      (no completion)
//   {"cmd":"stop"}  -> {"event":"stopped"}
//
// Pushed by the server or the connection:
//   {"event":"ReceiveMessage","args":["text"]}  (also ReceiveChatMessage,
//   Receipt, Typing), {"event":"token_requested","count":n},
//   {"event":"reconnecting","error":…}, {"event":"reconnected","connectionId":…},
//   {"event":"closed","error":…}
//
// HARK_SIGNALR_LOG=debug (or information, warning…) logs the client to stderr.

import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
let signalR;
try {
  signalR = require("@microsoft/signalr");
} catch (e) {
  console.error("@microsoft/signalr is not installed: run scripts/signalr.sh setup");
  process.exit(3);
}
const { HubConnectionBuilder, HttpTransportType, LogLevel } = signalR;

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const message = (e) => (e === undefined || e === null ? null : String(e && e.message ? e.message : e));

const level = process.env.HARK_SIGNALR_LOG;
const logger = {
  log(lvl, msg) {
    if (level && lvl >= (LogLevel[level[0].toUpperCase() + level.slice(1)] ?? LogLevel.Debug)) {
      console.error(`[signalr ${LogLevel[lvl]}] ${msg}`);
    }
  },
};

let connection = null;
let tokens = 0;

async function start(cmd) {
  const options = {
    accessTokenFactory: () => {
      tokens += 1;
      out({ event: "token_requested", count: tokens });
      return cmd.token;
    },
  };
  if (cmd.transport) options.transport = HttpTransportType[cmd.transport];
  let builder = new HubConnectionBuilder().withUrl(cmd.url, options).configureLogging(logger);
  if (cmd.reconnect) builder = builder.withAutomaticReconnect(cmd.reconnect);
  connection = builder.build();
  // Handlers return nothing: a value returned is a client result, which the
  // client logs as an error for an invocation that expects none.
  for (const name of ["ReceiveMessage", "ReceiveChatMessage", "Receipt", "Typing"]) {
    connection.on(name, (...args) => void out({ event: name, args }));
  }
  connection.onreconnecting((e) => out({ event: "reconnecting", error: message(e) }));
  connection.onreconnected((id) => out({ event: "reconnected", connectionId: id ?? null }));
  connection.onclose((e) => out({ event: "closed", error: message(e) }));
  try {
    await connection.start();
    out({ event: "started", connectionId: connection.connectionId ?? null });
  } catch (e) {
    out({ event: "start_failed", error: message(e) });
  }
}

async function handle(cmd) {
  switch (cmd.cmd) {
    case "start":
      return start(cmd);
    case "invoke":
      try {
        const result = await connection.invoke(cmd.method, ...(cmd.args ?? []));
        out({ event: "result", id: cmd.id, ok: true, result: result ?? null });
      } catch (e) {
        out({ event: "result", id: cmd.id, ok: false, error: message(e) });
      }
      return;
    case "send":
      try {
        await connection.send(cmd.method, ...(cmd.args ?? []));
      } catch (e) {
        out({ event: "send_failed", error: message(e) });
      }
      return;
    case "stop":
      if (connection) await connection.stop();
      out({ event: "stopped" });
      return;
    default:
      out({ event: "error", error: `unknown command ${cmd.cmd}` });
  }
}

out({ event: "ready", version: require("@microsoft/signalr/package.json").version });
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ event: "error", error: `not JSON: ${line}` });
    return;
  }
  // Commands run concurrently (an invoke may wait while events arrive).
  handle(cmd).catch((e) => out({ event: "error", error: message(e) }));
});
lines.on("close", async () => {
  try {
    if (connection) await connection.stop();
  } finally {
    process.exit(0);
  }
});
