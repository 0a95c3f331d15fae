// notifier: a RuQi executor that posts a text message to a chat robot's webhook.
//
// cmds: `dingtalk:ROBOT#TEXT`, `feishu:ROBOT#TEXT` (`lark:ROBOT#TEXT` for Lark, Feishu's
// international edition) and `wecom:ROBOT#TEXT`. ROBOT names a webhook the operator granted in
// this plugin's `[config]` (`plugins/notifier.toml`), so secrets never appear in a cmd:
//
//   "dingtalk.ops"        = "https://oapi.dingtalk.com/robot/send?access_token=..."
//   "dingtalk.ops.secret" = "SEC..."          # when the robot signs ("加签")
//   "feishu.dev"          = "https://open.feishu.cn/open-apis/bot/v2/hook/..."
//   "feishu.dev.secret"   = "..."             # when the robot checks signatures
//   "wecom.oncall"        = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."
//
// The request goes out with `fetch`, which componentize-js implements with `wasi:http`: the
// host lets it reach only the `hosts` the operator granted. Signatures use the standard Web
// Crypto API (`crypto.subtle`, HMAC-SHA256). A run succeeds when the robot answers HTTP 2xx
// with its success code (`errcode` 0 for DingTalk and WeCom, `code` 0 for Feishu / Lark).

import { config, log } from "ruqi:executor/host@0.3.0";

const VERSION = "0.1.0";
/** Longest text sent: the robots' own limits are larger (DingTalk 20,000 bytes, WeCom 2,048). */
const MAX_TEXT = 2048;
const ROBOT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The robot kinds, by cmd prefix. */
const KINDS = {
  "dingtalk:": { key: "dingtalk", sign: signDingtalk, body: textBody, ok: (a) => a.errcode === 0 },
  "feishu:": { key: "feishu", sign: signFeishu, body: feishuBody, ok: feishuOk },
  "lark:": { key: "lark", sign: signFeishu, body: feishuBody, ok: feishuOk },
  "wecom:": { key: "wecom", sign: null, body: textBody, ok: (a) => a.errcode === 0 },
};

/** DingTalk and WeCom: `{"msgtype":"text","text":{"content":TEXT}}`. */
function textBody(text) {
  return { msgtype: "text", text: { content: text } };
}

/** Feishu / Lark: `{"msg_type":"text","content":{"text":TEXT}}` (plus `timestamp`, `sign`). */
function feishuBody(text) {
  return { msg_type: "text", content: { text } };
}

/** Feishu answers `{"code":0,...}` (older robots `{"StatusCode":0,...}`). */
function feishuOk(a) {
  return a.code === 0 || (a.code === undefined && a.StatusCode === 0);
}

/**
 * Splits and checks a cmd; throws a string (the WIT `err`) saying what is wrong. Returns what a
 * run needs: the kind, the robot's webhook URL and secret, and the text.
 */
function parse(cmd) {
  const prefix = Object.keys(KINDS).find((p) => cmd.startsWith(p));
  if (prefix === undefined) {
    throw `notifier cmds start with ${Object.keys(KINDS).join(" ")}`;
  }
  const kind = KINDS[prefix];
  const rest = cmd.slice(prefix.length);
  const hash = rest.indexOf("#");
  if (hash < 0) {
    throw `notifier cmds look like ${prefix}ROBOT#TEXT`;
  }
  const robot = rest.slice(0, hash);
  const text = rest.slice(hash + 1);
  if (!ROBOT_NAME.test(robot)) {
    throw `robot names are 1 to 64 letters, digits, - or _, not ${JSON.stringify(robot)}`;
  }
  if (text.trim() === "") {
    throw `the text after ${prefix}${robot}# is empty`;
  }
  if (text.length > MAX_TEXT) {
    throw `the text is ${text.length} characters, more than ${MAX_TEXT}`;
  }
  const url = config(`${kind.key}.${robot}`);
  if (url === undefined) {
    throw `no ${kind.key} robot named ${JSON.stringify(robot)}: grant "${kind.key}.${robot}" = "WEBHOOK URL" in [config] of plugins/notifier.toml`;
  }
  if (!/^https?:\/\/[^/]+/.test(url)) {
    throw `the webhook of ${kind.key} robot ${robot} is not an http(s) URL`;
  }
  return { prefix, kind, robot, text, url, secret: config(`${kind.key}.${robot}.secret`) };
}

const encoder = new TextEncoder();

/** base64(HMAC-SHA256(key, message)). */
async function hmacBase64(key, message) {
  const k = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(message)));
  let binary = "";
  for (const b of mac) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * DingTalk: `sign` = urlencode(base64(HmacSHA256(key = secret, "timestamp\nsecret"))) with the
 * time in milliseconds; both go on the URL.
 */
async function signDingtalk(req, secret) {
  const timestamp = String(Date.now());
  const sign = await hmacBase64(secret, `${timestamp}\n${secret}`);
  const sep = req.url.includes("?") ? "&" : "?";
  req.url = `${req.url}${sep}timestamp=${timestamp}&sign=${encodeURIComponent(sign)}`;
}

/**
 * Feishu / Lark: `sign` = base64(HmacSHA256(key = "timestamp\nsecret", empty message)) with the
 * time in seconds; both go in the JSON body.
 */
async function signFeishu(req, secret) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  req.body = { timestamp, sign: await hmacBase64(`${timestamp}\n${secret}`, ""), ...req.body };
}

/** One notification; throws a string when it could not be delivered. */
async function notify(cmd) {
  const p = parse(cmd);
  const req = { url: p.url, body: p.kind.body(p.text) };
  if (p.secret !== undefined && p.kind.sign !== null) {
    await p.kind.sign(req, p.secret);
  }
  let response;
  try {
    response = await fetch(req.url, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify(req.body),
    });
  } catch (e) {
    throw `${p.kind.key} robot ${p.robot}: sending failed: ${e && e.message ? e.message : e}`;
  }
  const text = await response.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = null;
  }
  if (!response.ok || answer === null || !p.kind.ok(answer)) {
    throw `${p.kind.key} robot ${p.robot} refused the message: HTTP ${response.status}: ${text.slice(0, 500)}`;
  }
  log("info", `${p.kind.key} robot ${p.robot} took the message`);
  return text;
}

export const executor = reportErrors({
  describe() {
    return { name: "notifier", version: VERSION, prefixes: Object.keys(KINDS) };
  },

  validate(cmd) {
    parse(cmd);
  },

  async execute(run) {
    return { success: true, output: await notify(run.cmd) };
  },
});

// componentize-js hands what a function throws to the host as the WIT `err`, which must be a
// string: anything else (an `Error` from a bug) traps with "expected a string, received
// [object]", and the error's message is lost. This prints such an error and its stack on
// stderr first (as SpiderMonkey reports errors), where the host shows it with the trap; a
// thrown string passes through.
function reportErrors(functions) {
  const report = (e) => {
    if (typeof e !== "string") {
      const frames = String(e?.stack ?? "").trimEnd().split("\n");
      console.error(`${e}\nStack:\n${frames.map((f) => `  ${f}`).join("\n")}`);
    }
    throw e;
  };
  const wrapped = {};
  for (const [name, f] of Object.entries(functions)) {
    wrapped[name] = (...args) => {
      try {
        const result = f(...args);
        return result instanceof Promise ? result.catch(report) : result;
      } catch (e) {
        return report(e);
      }
    };
  }
  return wrapped;
}
