// JSON-lines bridge from the Python tests to a headless Chromium driven by playwright-core.
// stdin: {"id": n, "op": "...", "args": {...}} per line; stdout: {"id": n, "ok": true, "result": ...}
// or {"id": n, "ok": false, "error": "..."}. playwright-core is resolved from HERON_PW_DIR (an npm
// --prefix directory outside the repo); the browser is the system Chromium (CHROMIUM, /usr/bin/chromium).
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import readline from "node:readline";

const require = createRequire(join(process.env.HERON_PW_DIR || ".", "node_modules", "x.js"));
const { chromium } = require("playwright-core");

let context = null;
let page = null;
let userDir = null;
const problems = []; // console errors and page errors since the last "problems" call

// playwright adds --headless itself (headless: true)
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

function watch(p) {
  p.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "assert") problems.push({ kind: "console", text: msg.text(), url: msg.location()?.url });
  });
  p.on("pageerror", (err) => problems.push({ kind: "pageerror", text: String(err && err.stack || err) }));
  p.on("requestfailed", (req) => {
    const f = req.failure();
    if (f && !/ERR_ABORTED/.test(f.errorText)) problems.push({ kind: "requestfailed", text: `${req.url()} ${f.errorText}` });
  });
}

const ops = {
  async launch({ colorScheme = "dark", width = 1600, height = 1000 } = {}) {
    userDir = mkdtempSync(join(tmpdir(), "heron-web-chromium-"));
    context = await chromium.launchPersistentContext(userDir, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true, args: ARGS,
      viewport: { width, height }, colorScheme, deviceScaleFactor: 1,
    });
    page = context.pages()[0] || await context.newPage();
    watch(page);
    return { version: context.browser()?.version() || null };
  },
  async goto({ url }) { await page.goto(url, { waitUntil: "domcontentloaded" }); return page.url(); },
  async url() { return page.url(); },
  async wait({ selector, state = "visible", timeout = 15000 }) { await page.waitForSelector(selector, { state, timeout }); return true; },
  async waitFn({ expr, timeout = 15000 }) { await page.waitForFunction(expr, null, { timeout }); return true; },
  async text({ selector }) { return page.locator(selector).first().innerText(); },
  async texts({ selector }) { return page.locator(selector).allInnerTexts(); },
  async count({ selector }) { return page.locator(selector).count(); },
  async attr({ selector, name }) { return page.locator(selector).first().getAttribute(name); },
  async click({ selector }) { await page.locator(selector).first().click(); return true; },
  async fill({ selector, value }) { await page.locator(selector).first().fill(value); return true; },
  async press({ selector, key }) { await page.locator(selector).first().press(key); return true; },
  async keyboard({ key }) { await page.keyboard.press(key); return true; },
  async select({ selector, value }) { await page.locator(selector).first().selectOption(value); return true; },
  async eval({ expr }) { return page.evaluate(expr); },
  async screenshot({ path, fullPage = true }) { await page.screenshot({ path, fullPage, animations: "disabled" }); return path; },
  async problems() { return problems.splice(0); },
  async close() {
    if (context) await context.close();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
    context = null;
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let msg;
  try { msg = JSON.parse(line); } catch { continue; }
  let out;
  try {
    const fn = ops[msg.op];
    if (!fn) throw new Error(`unknown op ${msg.op}`);
    out = { id: msg.id, ok: true, result: await fn(msg.args || {}) };
  } catch (err) {
    out = { id: msg.id, ok: false, error: String(err && err.message || err) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
  if (msg.op === "close") break;
}
process.exit(0);
