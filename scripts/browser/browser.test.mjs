// Browser and interop tests of the fastws chat page, against the real daemon.
//
// It starts FASTWS_BIN (a built fastws binary; run.sh builds one) in the
// foreground with a temporary config.ini: one telnet and one websocket
// instance on free loopback ports, and a websocket instance with TLS (a
// throwaway certificate from openssl) whose https:// page chats with
// telnet. Then it drives the page served on GET / in Debian's chromium
// with playwright-core, talks to the daemon as a raw telnet client and as
// npm ws clients, has pages join a room (tabs, unread counts, the room
// list), restarts the daemon to check that the page reconnects (and joins
// its rooms again), and saves phone- and desktop-width screenshots in
// screenshots/.
//
//	FASTWS_BIN=/path/to/fastws node --test scripts/browser/
//
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).
// Everything waits by polling with a deadline; nothing sleeps a fixed time.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
// SCREENSHOT_DIR overrides where they go (run.sh keeps the committed ones
// unless UPDATE_SCREENSHOTS=1).
const screenshotDir = process.env.SCREENSHOT_DIR || path.join(here, 'screenshots');
const BIN = process.env.FASTWS_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const WAIT = 10_000;          // ms: a page or client sees an event
const START_WAIT = 20_000;    // ms: the daemon binds and prints its banner
const STOP_WAIT = 20_000;     // ms: the daemon exits after SIGTERM
const RECONNECT_WAIT = 30_000; // ms: the page is back after a restart (backoff caps at 10s)
const TEST_TIMEOUT = 90_000;

// ---- helpers ----

// waitFor polls fn until it returns a truthy value, and returns it. It
// throws after timeout ms, naming what it waited for and, from detail(),
// what it saw.
async function waitFor(fn, what, timeout = WAIT, detail = () => '') {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      const d = await detail();
      throw new Error(`timed out after ${timeout}ms waiting for ${what}${d ? `\n${d}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

// freePorts returns n distinct loopback ports that were free a moment ago.
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      await new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
      });
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function configText(runDir, telnetPort, wsPort, wssPort, cert, key) {
  return `; written by scripts/browser/browser.test.mjs
[fastws]
runDir = ${runDir}
metricsListen =
stopTimeout = 5s
messagesPerSecond = 0

[instance.telnet]
instanceName = Browser-Telnet
protocol = telnet
host = 127.0.0.1
port = ${telnetPort}
childProcessCount = 2

[instance.websocket]
instanceName = Browser-WebSocket
protocol = websocket
host = 127.0.0.1
port = ${wsPort}
childProcessCount = 2

[instance.wss]
instanceName = Browser-WSS
protocol = websocket
host = 127.0.0.1
port = ${wssPort}
childProcessCount = 1
tlsCert = ${cert}
tlsKey = ${key}
`;
}

// Daemon is `FASTWS_BIN -c CONFIG start` run in the foreground.
class Daemon {
  constructor(bin, config) {
    this.bin = bin;
    this.config = config;
    this.proc = null;
  }

  async start() {
    this.out = '';
    this.err = '';
    this.exit = null;
    const p = spawn(this.bin, ['-c', this.config, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    p.stdout.setEncoding('utf8').on('data', (d) => { this.out += d; });
    p.stderr.setEncoding('utf8').on('data', (d) => { this.err += d; });
    this.exited = new Promise((resolve) => {
      p.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    p.once('error', (err) => { this.err += `\nspawn: ${err.message}`; this.exit = { code: null, signal: 'spawn' }; });
    await waitFor(() => {
      if (this.exit) throw new Error(`fastws exited early (${JSON.stringify(this.exit)})\n${this.logs()}`);
      return this.out.includes('Press Ctrl-C to stop.');
    }, 'fastws to print "Press Ctrl-C to stop."', START_WAIT, () => this.logs());
  }

  // stop sends SIGTERM to the daemon's pid and returns its exit code.
  async stop() {
    const p = this.proc;
    if (!p) return null;
    this.proc = null;
    if (!this.exit) process.kill(p.pid, 'SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, STOP_WAIT, null); });
    const exit = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (!exit) {
      p.kill('SIGKILL');
      throw new Error(`fastws did not exit within ${STOP_WAIT}ms of SIGTERM\n${this.logs()}`);
    }
    return exit.code;
  }

  logs() {
    return `--- fastws stdout:\n${this.out}--- fastws stderr:\n${this.err}`;
  }
}

// TELNET_GREETING is the option negotiation in front of a telnet
// instance's welcome (IAC WILL BINARY, IAC DO BINARY), which a real telnet
// client consumes.
const TELNET_GREETING = Buffer.from([255, 251, 0, 255, 253, 0]);

// LineClient is a raw telnet client: lines end in \r\n both ways.
class LineClient {
  static async connect(port) {
    const c = new LineClient();
    c.lines = [];
    c.buf = Buffer.alloc(0);
    c.greeted = false;
    c.closed = false;
    c.sock = net.connect({ host: '127.0.0.1', port });
    c.sock.on('data', (d) => {
      c.buf = Buffer.concat([c.buf, d]);
      if (!c.greeted) {
        if (c.buf.length < TELNET_GREETING.length) return;
        if (c.buf.subarray(0, TELNET_GREETING.length).equals(TELNET_GREETING)) {
          c.buf = c.buf.subarray(TELNET_GREETING.length);
        }
        c.greeted = true;
      }
      let i;
      while ((i = c.buf.indexOf('\r\n')) >= 0) {
        c.lines.push(c.buf.subarray(0, i).toString('utf8'));
        c.buf = c.buf.subarray(i + 2);
      }
    });
    c.sock.on('close', () => { c.closed = true; });
    c.sock.on('error', () => {});
    await new Promise((resolve, reject) => {
      c.sock.once('connect', resolve);
      c.sock.once('error', reject);
    });
    return c;
  }

  send(line) {
    this.sock.write(line + '\r\n');
  }

  // waitLine returns the first line received that matches want (a string
  // compared exactly, or a RegExp).
  waitLine(want, timeout = WAIT) {
    const match = (l) => (typeof want === 'string' ? l === want : want.test(l));
    return waitFor(() => this.lines.find(match), `telnet line ${want}`, timeout,
      () => `telnet saw:\n  ${this.lines.join('\n  ')}`);
  }

  close() {
    this.sock.destroy();
  }
}

// WSClient is an npm ws client that keeps every frame it receives.
class WSClient {
  static async connect(url, protocol) {
    const c = new WSClient();
    c.frames = [];
    c.ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
    c.ws.on('message', (data, isBinary) => c.frames.push({ text: data.toString('utf8'), isBinary }));
    c.closed = new Promise((resolve) => c.ws.once('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('error', reject);
    });
    return c;
  }

  waitFrame(pred, what, timeout = WAIT) {
    return waitFor(() => this.frames.find(pred), what, timeout,
      () => `frames:\n  ${this.frames.map((f) => f.text).join('\n  ')}`);
  }

  async close() {
    this.ws.close(1000);
    let timer;
    await Promise.race([this.closed, new Promise((r) => { timer = setTimeout(r, WAIT); })]);
    clearTimeout(timer);
  }
}

// messages returns the page's message list as {kind, line} objects.
function messages(page) {
  return page.$$eval('#messages > *', (lis) => lis.map((li) => ({
    kind: li.dataset.kind,
    line: (li.querySelector('.line') || li).textContent,
  })));
}

async function dumpMessages(page) {
  const ms = await messages(page).catch((err) => [{ kind: 'unreadable', line: err.message }]);
  return `messages:\n  ${ms.map((m) => `[${m.kind}] ${m.line}`).join('\n  ')}`;
}

// waitMessage waits until page lists a message of kind whose text is line.
async function waitMessage(page, kind, line, timeout = WAIT) {
  await waitFor(async () => (await messages(page)).some((m) => m.kind === kind && m.line === line),
    `${page.name}: [${kind}] ${line}`, timeout, () => dumpMessages(page));
}

// myUID waits until #me names a uid and returns it.
async function myUID(page, timeout = WAIT) {
  await waitFor(async () => {
    const uid = await page.locator('#me').getAttribute('data-uid');
    const text = await page.locator('#me').textContent();
    return uid && text.includes(`uid ${uid}`);
  }, `${page.name}: #me to show a uid`, timeout, async () => `#me: ${await page.locator('#me').textContent()}`);
  return Number(await page.locator('#me').getAttribute('data-uid'));
}

async function attr(page, selector, name) {
  return page.locator(selector).getAttribute(name);
}

async function text(page, selector) {
  return (await page.locator(selector).textContent()) ?? '';
}

async function waitText(page, selector, want, timeout = WAIT) {
  const ok = (t) => (typeof want === 'string' ? t.includes(want) : want.test(t));
  await waitFor(async () => (await page.locator(selector).count()) > 0 && ok(await text(page, selector)),
    `${page.name}: ${selector} to show ${want}`, timeout,
    async () => `${selector}: ${(await page.locator(selector).count()) ? await text(page, selector) : '(missing)'}`);
}

// tabs returns the page's room tabs in order as {room, selected, unread}.
function tabs(page) {
  return page.$$eval('#tabs .tab', (ts) => ts.map((t) => ({
    room: t.dataset.room,
    selected: t.querySelector('[role="tab"]').getAttribute('aria-selected'),
    unread: t.dataset.unread,
  })));
}

const tabSel = (room) => `#tabs .tab[data-room="${room}"]`;
const tabButton = (room) => `${tabSel(room)} [role="tab"]`;

// waitTabs waits until page's tabs are rooms, in order, with selected
// the one shown.
async function waitTabs(page, rooms, selected, timeout = WAIT) {
  await waitFor(async () => {
    const ts = await tabs(page);
    return ts.map((t) => t.room).join(' ') === rooms.join(' ')
      && ts.every((t) => t.selected === String(t.room === selected));
  }, `${page.name}: tabs ${rooms.join(' ')} with ${selected} selected`, timeout,
  async () => `tabs: ${JSON.stringify(await tabs(page))}`);
}

async function waitUnread(page, room, want, timeout = WAIT) {
  await waitFor(async () => (await tabs(page)).find((t) => t.room === room)?.unread === String(want),
    `${page.name}: unread ${want} on #${room}`, timeout, async () => `tabs: ${JSON.stringify(await tabs(page))}`);
}

// roomMessages returns the page's message list as {kind, line, room,
// hidden} objects (room undefined: shown in every tab).
function roomMessages(page) {
  return page.$$eval('#messages > *', (lis) => lis.map((li) => ({
    kind: li.dataset.kind,
    line: (li.querySelector('.line') || li).textContent,
    room: li.dataset.room,
    hidden: li.hidden,
  })));
}

// waitRoomMessage waits until page lists a message of kind in room whose
// text is line, shown (the room's tab is the selected one) or not.
async function waitRoomMessage(page, room, kind, line, shown, timeout = WAIT) {
  await waitFor(async () => (await roomMessages(page)).some((m) => m.room === room && m.kind === kind && m.line === line && m.hidden === !shown),
    `${page.name}: [${kind}] ${line} in #${room}, ${shown ? 'shown' : 'hidden'}`, timeout,
    async () => `messages:\n  ${(await roomMessages(page)).map((m) => `[${m.kind}${m.room ? ' #' + m.room : ''}${m.hidden ? ' hidden' : ''}] ${m.line}`).join('\n  ')}`);
}

async function say(page, line) {
  await page.locator('#input').fill(line);
  await page.locator('#input').press('Enter');
}

// ---- the test ----

describe('fastws chat page', { timeout: 10 * TEST_TIMEOUT }, () => {
  let tmp, daemon, browser, telnetPort, wsPort, wssPort, origin;
  let ctxA, ctxB, pageA, pageB, tel;
  let uidA, uidB, uidT;
  const pageErrors = [];
  const foreignRequests = [];

  async function openPage(ctx, name, setup) {
    const page = await ctx.newPage();
    page.name = name;
    setup?.(page);
    page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
    page.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith(origin) && !u.startsWith('data:')) foreignRequests.push(`${name}: ${u}`);
    });
    await page.goto(origin + '/');
    return page;
  }

  before(async () => {
    assert.ok(BIN, 'FASTWS_BIN is not set: build fastws and point FASTWS_BIN at it (scripts/browser/run.sh does both)');
    await fs.access(BIN).catch(() => assert.fail(`FASTWS_BIN=${BIN} does not exist`));
    await fs.access(CHROMIUM).catch(() => assert.fail(`${CHROMIUM} is missing: apt-get install chromium (run.sh does)`));
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fastws-browser-'));
    [telnetPort, wsPort, wssPort] = await freePorts(3);
    origin = `http://127.0.0.1:${wsPort}`;
    // A throwaway self-signed certificate for the https:// instance
    // (scripts/test.sh installs openssl).
    const cert = path.join(tmp, 'cert.pem'), key = path.join(tmp, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl req: ${made.stderr}`);
    const config = path.join(tmp, 'config.ini');
    await fs.writeFile(config, configText(path.join(tmp, 'run'), telnetPort, wsPort, wssPort, cert, key));
    daemon = new Daemon(BIN, config);
    await daemon.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic',
        // The https:// instance's certificate is a throwaway self-signed
        // one made above, for loopback only: nothing to trust it with.
        '--ignore-certificate-errors'],
    });
    await fs.mkdir(screenshotDir, { recursive: true });
  });

  after(async () => {
    tel?.close();
    await browser?.close().catch(() => {});
    if (daemon?.proc) await daemon.stop().catch(() => {});
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  test('GET / serves the page; other paths are 404', { timeout: TEST_TIMEOUT }, async () => {
    const res = await fetch(origin + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const body = await res.text();
    assert.match(body, /fastws\.v1\.json/);
    const missing = await fetch(origin + '/no-such-page');
    assert.equal(missing.status, 404);
  });

  test('each page gets a uid and sees the others in #who', { timeout: TEST_TIMEOUT }, async () => {
    ctxA = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ctxB = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    pageA = await openPage(ctxA, 'A');
    pageB = await openPage(ctxB, 'B');
    uidA = await myUID(pageA);
    uidB = await myUID(pageB);
    assert.notEqual(uidA, uidB);
    for (const p of [pageA, pageB]) {
      assert.equal(await attr(p, '#status', 'data-state'), 'open');
      assert.equal(await p.locator('#input').isEnabled(), true);
    }
    await pageA.locator(`#who [data-uid="${uidB}"]`).waitFor({ timeout: WAIT });
    await pageB.locator(`#who [data-uid="${uidA}"]`).waitFor({ timeout: WAIT });

    tel = await LineClient.connect(telnetPort);
    const welcome = await tel.waitLine(/^Welcome to fastws! You are uid \d+\./);
    uidT = Number(welcome.match(/uid (\d+)/)[1]);
    await waitMessage(pageA, 'join', `* uid ${uidT} joined`);
    // A join names no protocol; the page learns it from /who.
    await waitText(pageA, `#who [data-uid="${uidT}"]`, 'telnet');
    await waitText(pageB, `#who [data-uid="${uidT}"]`, 'telnet');
  });

  test('a broadcast from a page reaches both pages and telnet', { timeout: TEST_TIMEOUT }, async () => {
    const msg = 'hello <b>everyone</b> & 你好';
    await say(pageA, msg);
    await waitMessage(pageA, 'broadcast', `uid ${uidA}: ${msg}`);
    await waitMessage(pageB, 'broadcast', `uid ${uidA}: ${msg}`);
    await tel.waitLine(`uid ${uidA}: ${msg}`);
    assert.equal(await pageA.locator('#input').inputValue(), '', 'the send box is cleared after sending');
    for (const p of [pageA, pageB]) {
      assert.equal(await p.locator('#messages b').count(), 0, `${p.name}: user text became HTML`);
    }
  });

  test('a private message to a user picked in #who', { timeout: TEST_TIMEOUT }, async () => {
    await pageA.locator(`#who [data-uid="${uidB}"] button`).click();
    assert.equal(await attr(pageA, '#to', 'data-uid'), String(uidB));
    await waitText(pageA, '#to', `to: uid ${uidB}`);
    assert.equal(await pageA.locator('#to-clear').isVisible(), true);

    const msg = 'psst, just you';
    await say(pageA, msg);
    await waitMessage(pageB, 'private', `uid ${uidA} (private): ${msg}`);
    await waitMessage(pageA, 'private-sent', `(to uid ${uidB}): ${msg}`);

    // A line sent after it by telnet reaches everyone; by then a leaked
    // private message would have reached telnet too.
    tel.send('marker after the private message');
    for (const p of [pageA, pageB]) await waitMessage(p, 'broadcast', `uid ${uidT}: marker after the private message`);
    await tel.waitLine(`uid ${uidT}: marker after the private message`);
    assert.deepEqual(tel.lines.filter((l) => l.includes(msg)), [], 'telnet saw the private message');
    for (const p of [pageA, pageB]) {
      const leaked = (await messages(p)).filter((m) => m.line.includes(msg) && !m.kind.startsWith('private'));
      assert.deepEqual(leaked, [], `${p.name} shows the private message as something else`);
      const copies = (await messages(p)).filter((m) => m.line.includes(msg));
      assert.equal(copies.length, 1, `${p.name} shows the private message ${copies.length} times`);
    }

    await pageA.locator('#to-clear').click();
    assert.equal(await attr(pageA, '#to', 'data-uid'), '0');
    await waitText(pageA, '#to', 'to: everyone');
    assert.equal(await pageA.locator('#to-clear').isVisible(), false);
  });

  test('a line from telnet appears in both pages', { timeout: TEST_TIMEOUT }, async () => {
    tel.send('hi from telnet, 你好');
    for (const p of [pageA, pageB]) await waitMessage(p, 'broadcast', `uid ${uidT}: hi from telnet, 你好`);
  });

  test('/nick from page A updates #me, the who lists and telnet', { timeout: TEST_TIMEOUT }, async () => {
    await pageA.locator('#nick-input').fill('alice');
    await pageA.locator('#nick-set').click();
    await waitText(pageA, '#me', 'alice');
    await waitText(pageA, '#me', `uid ${uidA}`);
    await waitText(pageB, `#who [data-uid="${uidA}"]`, `alice(${uidA})`);
    await waitMessage(pageB, 'nick', `* uid ${uidA} is now alice`);
    await tel.waitLine(`* uid ${uidA} is now alice`);

    // The new name is used both ways in private messages.
    await pageB.locator(`#who [data-uid="${uidA}"] button`).click();
    await waitText(pageB, '#to', `to: alice(${uidA})`);
    await say(pageB, 'hi alice');
    await waitMessage(pageA, 'private', `uid ${uidB} (private): hi alice`);
    await waitMessage(pageB, 'private-sent', `(to alice(${uidA})): hi alice`);
    await pageB.locator('#to-clear').click();

    await say(pageA, 'now with a nick');
    await waitMessage(pageB, 'broadcast', `alice(${uidA}): now with a nick`);
    await tel.waitLine(`alice(${uidA}): now with a nick`);
  });

  test('errors and /who typed in the send box', { timeout: TEST_TIMEOUT }, async () => {
    await say(pageA, '/nosuchcommand');
    await waitFor(async () => (await messages(pageA)).some((m) => m.kind === 'error' && m.line.startsWith('! unknown command /nosuchcommand')),
      'A: an error line for /nosuchcommand', WAIT, () => dumpMessages(pageA));
    const color = await pageA.locator('#messages [data-kind="error"] .line').last().evaluate((e) => getComputedStyle(e).color);
    const [r, g, b] = color.match(/\d+/g).map(Number);
    assert.ok(r > 150 && g < 100 && b < 100, `error text is ${color}, want red`);

    await say(pageA, '/who');
    await waitFor(async () => (await messages(pageA)).some((m) => m.kind === 'who' && m.line.includes(`* uid ${uidT} (telnet)`)),
      'A: the /who listing', WAIT, () => dumpMessages(pageA));
  });

  test('npm ws clients, with fastws.v1.json and in text mode, see a telnet broadcast', { timeout: TEST_TIMEOUT }, async () => {
    const url = `ws://127.0.0.1:${wsPort}/`;
    const json = await WSClient.connect(url, 'fastws.v1.json');
    const plain = await WSClient.connect(url);
    try {
      assert.equal(json.ws.protocol, 'fastws.v1.json');
      assert.equal(plain.ws.protocol, '');

      const welcome = await json.waitFrame(() => true, 'a JSON welcome');
      const w = JSON.parse(welcome.text);
      assert.equal(w.type, 'welcome');
      assert.ok(Number.isInteger(w.uid) && w.uid > 0, `welcome uid ${w.uid}`);
      assert.ok(!Number.isNaN(Date.parse(w.time)), `welcome time ${w.time}`);
      const plainWelcome = await plain.waitFrame(() => true, 'a text welcome');
      assert.match(plainWelcome.text, /^Welcome to fastws! You are uid \d+\. /);

      tel.send('ws interop check');
      const m = await json.waitFrame((f) => f.text.includes('ws interop check'), 'the JSON message');
      const ev = JSON.parse(m.text);
      assert.equal(ev.type, 'message');
      assert.equal(ev.from, uidT);
      assert.equal(ev.private, false);
      assert.equal(ev.to, 0);
      assert.equal(ev.text, 'ws interop check');
      await plain.waitFrame((f) => f.text === `uid ${uidT}: ws interop check`, `the text frame "uid ${uidT}: ws interop check"`);

      for (const c of [json, plain]) {
        assert.deepEqual(c.frames.filter((f) => f.isBinary), [], 'binary frames');
        assert.deepEqual(c.frames.filter((f) => /\r|\n/.test(f.text) && !f.text.startsWith('{')), [], 'a text frame holds more than one line');
      }
    } finally {
      await json.close();
      await plain.close();
    }
  });

  test('rooms: two pages join games, a third stays in the lobby', { timeout: TEST_TIMEOUT }, async () => {
    const ctxG = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const sent = []; // what page G sends, as JSON texts
    try {
      const pageG = await openPage(ctxG, 'G', (p) => p.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload)))));
      const uidG = await myUID(pageG);
      await waitText(pageA, `#who [data-uid="${uidG}"]`, `uid ${uidG}`);
      for (const p of [pageA, pageB, pageG]) await waitTabs(p, ['lobby'], 'lobby');
      assert.equal(await pageA.locator(`${tabSel('lobby')} [data-testid="tab-leave"]`).count(), 0, 'the lobby tab has no leave button');

      // A creates games by name, from the room list.
      await pageA.locator('#rooms-toggle').click();
      assert.equal(await pageA.locator('#rooms-panel').isVisible(), true);
      assert.equal(await attr(pageA, '#rooms-toggle', 'aria-expanded'), 'true');
      await pageA.locator('#room-input').fill('games');
      await pageA.locator('#room-join').click();
      await waitTabs(pageA, ['lobby', 'games'], 'games');
      await waitRoomMessage(pageA, 'games', 'entered', '* you are now in #games (1 member)', true);
      assert.equal(await pageA.locator('#rooms-panel').isVisible(), false, 'joining closes the room list');
      await waitText(pageA, '#who-toggle', 'In #games');
      await waitText(pageA, '#to', 'to: #games');

      // G joins it from the list /rooms filled.
      await pageG.locator('#rooms-toggle').click();
      await pageG.locator('#room-list .room-chip[data-room="games"]').click({ timeout: WAIT });
      await waitTabs(pageG, ['lobby', 'games'], 'games');
      await waitRoomMessage(pageG, 'games', 'entered', '* you are now in #games (2 members)', true);
      await waitRoomMessage(pageA, 'games', 'join', `* uid ${uidG} joined #games`, true);
      // The who panel lists the room's members only.
      await waitFor(async () => (await pageA.locator('#who > li').count()) === 2 && (await text(pageA, '#who-count')) === '2'
        && (await pageA.locator(`#who [data-uid="${uidG}"]`).count()) === 1,
      'A: #who lists the two members of #games', WAIT, async () => `#who: ${await text(pageA, '#who')}`);

      // A line in games reaches A and G, in their games tab.
      await say(pageA, 'hello games');
      await waitRoomMessage(pageG, 'games', 'broadcast', `alice(${uidA}): hello games`, true);
      await waitRoomMessage(pageA, 'games', 'broadcast', `alice(${uidA}): hello games`, true);
      await say(pageG, 'hi from G');
      await waitRoomMessage(pageA, 'games', 'broadcast', `uid ${uidG}: hi from G`, true);
      assert.ok(sent.includes(JSON.stringify({ room: 'games', text: 'hi from G' })), `G sent:\n  ${sent.join('\n  ')}`);

      // Tabs switch: the games lines hide, the lobby's show, and so do the
      // lobby's members and where the send box sends.
      await pageA.locator(tabButton('lobby')).click();
      await waitTabs(pageA, ['lobby', 'games'], 'lobby');
      await waitText(pageA, '#who-toggle', 'Online');
      await waitText(pageA, '#to', 'to: everyone');
      await pageA.locator(`#who [data-uid="${uidT}"]`).waitFor({ timeout: WAIT });
      const inLobby = await roomMessages(pageA);
      assert.ok(inLobby.some((m) => m.room === 'games') && inLobby.filter((m) => m.room === 'games').every((m) => m.hidden),
        'A: the games lines are hidden in the lobby tab');
      assert.ok(inLobby.some((m) => m.room === 'lobby' && !m.hidden && m.line === `uid ${uidT}: hi from telnet, 你好`),
        'A: the lobby lines are shown in the lobby tab');
      assert.equal(await pageA.locator('#messages li:not([hidden])', { hasText: 'hello games' }).count(), 0);
      // The arrow keys move between tabs too.
      await pageA.locator(tabButton('lobby')).press('ArrowRight');
      await waitTabs(pageA, ['lobby', 'games'], 'games');
      await pageA.locator(tabButton('games')).press('ArrowLeft');
      await waitTabs(pageA, ['lobby', 'games'], 'lobby');

      // An unread count on A's background games tab.
      await say(pageG, 'are you there, alice?');
      await waitUnread(pageA, 'games', 1);
      await waitRoomMessage(pageA, 'games', 'broadcast', `uid ${uidG}: are you there, alice?`, false);
      assert.equal(await pageA.locator(`${tabSel('games')} [data-testid="unread"]`).isVisible(), true);
      assert.equal(await text(pageA, `${tabSel('games')} [data-testid="unread"]`), '1 unread');
      assert.equal(await pageA.locator(`${tabSel('lobby')} [data-testid="unread"]`).isVisible(), false);
      await waitFor(async () => (await pageA.title()) === '(1) fastws chat', 'A: the title counts unread messages');

      // A line from A's lobby tab goes to the lobby: to B and telnet, and
      // to G's lobby tab, in the background.
      await say(pageA, 'anyone for a game?');
      await waitMessage(pageB, 'broadcast', `alice(${uidA}): anyone for a game?`);
      await tel.waitLine(`alice(${uidA}): anyone for a game?`);
      await waitRoomMessage(pageG, 'lobby', 'broadcast', `alice(${uidA}): anyone for a game?`, false);
      await waitUnread(pageG, 'lobby', 1);

      // G's lobby tab: the count goes, and a plain line goes to the lobby
      // (the daemon's current room is games until G's page says otherwise).
      await pageG.locator(tabButton('lobby')).click();
      await waitUnread(pageG, 'lobby', 0);
      await say(pageG, 'me! see #games');
      await waitMessage(pageB, 'broadcast', `uid ${uidG}: me! see #games`);
      await waitRoomMessage(pageA, 'lobby', 'broadcast', `uid ${uidG}: me! see #games`, true);
      const i = sent.indexOf(JSON.stringify({ text: 'me! see #games' }));
      assert.ok(i > 0 && sent[i - 1] === JSON.stringify({ join: 'lobby' }), `G sent:\n  ${sent.join('\n  ')}`);

      // A command acts on the tab shown.
      await pageG.locator(tabButton('games')).click();
      await say(pageG, '/who');
      await waitFor(async () => (await messages(pageG)).some((m) => m.kind === 'who' && m.line.endsWith('* 2 in #games')),
        'G: /who in the games tab lists #games', WAIT, () => dumpMessages(pageG));

      // B, in the lobby alone, never shows a games line; telnet neither.
      await waitTabs(pageB, ['lobby'], 'lobby');
      const bs = await roomMessages(pageB);
      assert.deepEqual(bs.filter((m) => m.room === 'games' || /hello games|hi from G|are you there/.test(m.line)), [],
        'B shows a games line');
      assert.deepEqual(tel.lines.filter((l) => /hello games|hi from G|are you there/.test(l)), [], 'telnet saw a games line');

      // G leaves games from its tab: the tab goes, A hears it.
      await pageG.locator(`${tabSel('games')} [data-testid="tab-leave"]`).click();
      await waitTabs(pageG, ['lobby'], 'lobby');
      await waitRoomMessage(pageA, 'games', 'leave', `* uid ${uidG} left #games`, false);
      assert.equal((await roomMessages(pageG)).filter((m) => m.room === 'games').length, 0, 'G keeps the lines of a room it left');
    } finally {
      await ctxG.close();
    }
  });

  test('screenshots at phone and desktop widths', { timeout: TEST_TIMEOUT }, async () => {
    const ctxP = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      const phone = await openPage(ctxP, 'phone');
      const uidP = await myUID(phone);
      await phone.locator('#nick-input').fill('phone');
      await phone.locator('#nick-set').click();
      await waitText(phone, '#me', 'phone');
      await waitText(pageA, `#who [data-uid="${uidP}"]`, `phone(${uidP})`);
      // The phone joins games by command, then goes back to the lobby tab.
      await say(phone, '/join games');
      await waitTabs(phone, ['lobby', 'games'], 'games');
      await phone.locator(tabButton('lobby')).click();
      await waitTabs(phone, ['lobby', 'games'], 'lobby');

      await say(pageA, 'Welcome! This page works on a phone, too.');
      await say(pageA, '#games the games room is over here');
      await waitRoomMessage(phone, 'games', 'broadcast', `alice(${uidA}): the games room is over here`, false);
      await waitUnread(phone, 'games', 1);
      tel.send('hello from a telnet user');
      await pageA.locator(`#who [data-uid="${uidP}"] button`).click();
      await say(pageA, 'and this one is only for you');
      await pageA.locator('#to-clear').click();
      await say(pageB, 'A longer message, to see how text wraps on a narrow screen when somebody has a lot to say.');
      await waitMessage(phone, 'private', `alice(${uidA}) (private): and this one is only for you`);
      await waitMessage(phone, 'broadcast', `uid ${uidB}: A longer message, to see how text wraps on a narrow screen when somebody has a lot to say.`);
      await phone.locator('#input').fill('typing…');

      // Narrow: the who list folds into a section above the messages.
      assert.equal(await phone.locator('#who').isVisible(), false, 'the who list is collapsed on a phone');
      assert.equal(await phone.locator('#who-toggle').isVisible(), true);
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
      await phone.screenshot({ path: path.join(screenshotDir, 'phone.png') });

      await phone.locator('#who-toggle').click();
      await phone.locator(`#who [data-uid="${uidA}"]`).waitFor({ state: 'visible', timeout: WAIT });
      await phone.screenshot({ path: path.join(screenshotDir, 'phone-who.png') });
      await phone.locator(`#who [data-uid="${uidA}"] button`).click();
      assert.equal(await phone.locator('#who').isVisible(), false, 'picking a user folds the who list');
      await waitText(phone, '#to', `to: alice(${uidA})`);

      // The room list on a phone.
      await phone.locator('#rooms-toggle').click();
      await phone.locator('#room-list .room-chip[data-room="games"]').waitFor({ state: 'visible', timeout: WAIT });
      await phone.locator('#room-input').fill('support');
      const roomsOverflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(roomsOverflow <= 0, `with the room list open, the page is ${roomsOverflow}px wider than a phone screen`);
      await phone.screenshot({ path: path.join(screenshotDir, 'phone-rooms.png') });
      await phone.locator('#room-input').press('Escape');
      assert.equal(await phone.locator('#rooms-panel').isVisible(), false, 'Escape closes the room list');

      // Wide: the who list is a side panel, always shown.
      await pageA.locator(`#who [data-uid="${uidB}"] button`).click();
      await pageA.locator('#input').fill('typing a private reply…');
      assert.equal(await pageA.locator('#who').isVisible(), true);
      assert.equal(await pageA.locator('#who-toggle .chevron').isVisible(), false);
      const wide = await pageA.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(wide <= 0, `the page is ${wide}px wider than the window`);
      await pageA.screenshot({ path: path.join(screenshotDir, 'desktop.png') });
      await pageA.locator('#to-clear').click();
      await pageA.locator('#input').fill('');

      // Wide, in the games tab: its lines, its members.
      await pageA.locator(tabButton('games')).click();
      await waitTabs(pageA, ['lobby', 'games'], 'games');
      await waitText(pageA, '#who-toggle', 'In #games');
      await waitText(pageA, `#who [data-uid="${uidP}"]`, `phone(${uidP})`);
      await pageA.locator('#input').fill('typing in #games…');
      await pageA.screenshot({ path: path.join(screenshotDir, 'desktop-rooms.png') });
      await pageA.locator('#input').fill('');
      await pageA.locator(tabButton('lobby')).click();
      await waitTabs(pageA, ['lobby', 'games'], 'lobby');
    } finally {
      await ctxP.close();
    }
  });

  test('the page shows the shutdown and reconnects to a restarted daemon', { timeout: 2 * TEST_TIMEOUT }, async () => {
    const code = await daemon.stop();
    assert.equal(code, 0, `fastws exit code after SIGTERM\n${daemon.logs()}`);
    await tel.waitLine('* server is shutting down');
    await waitFor(() => tel.closed, 'the telnet connection to close');

    for (const p of [pageA, pageB]) {
      await waitMessage(p, 'shutdown', '* server is shutting down');
      await waitFor(async () => (await attr(p, '#status', 'data-state')) === 'disconnected',
        `${p.name}: #status disconnected`, WAIT, async () => `#status: ${await text(p, '#status')}`);
      assert.equal(await attr(p, '#me', 'data-uid'), '');
      assert.equal(await p.locator('#input').isDisabled(), true, 'the send box is disabled while disconnected');
      assert.equal(await p.locator('#send').isDisabled(), true);
    }
    const shutdowns = (await messages(pageA)).filter((m) => m.kind === 'shutdown').length;

    await daemon.start().catch((err) => {
      if (/address already in use/.test(err.message)) {
        err.message += '\nA restarted daemon must bind its ports while the old connections are in TIME_WAIT: '
          + 'listen with SO_REUSEADDR (gnet.WithReuseAddr(true)).';
      }
      throw err;
    });
    uidA = await myUID(pageA, RECONNECT_WAIT);
    uidB = await myUID(pageB, RECONNECT_WAIT);
    for (const p of [pageA, pageB]) {
      assert.equal(await attr(p, '#status', 'data-state'), 'open');
      assert.equal(await p.locator('#input').isEnabled(), true);
    }
    assert.equal((await messages(pageA)).filter((m) => m.kind === 'shutdown').length, shutdowns);
    // A keeps its nick across the reconnect.
    await waitText(pageA, '#me', 'alice');
    await waitText(pageB, `#who [data-uid="${uidA}"]`, `alice(${uidA})`);
    // A joins games again and stays on its lobby tab, where it writes.
    await waitTabs(pageA, ['lobby', 'games'], 'lobby');
    await waitText(pageA, '#who-toggle', 'Online');
    await say(pageA, 'back again');
    await waitMessage(pageB, 'broadcast', `alice(${uidA}): back again`);
    await pageA.locator(tabButton('games')).click();
    await say(pageA, 'games is back too');
    await waitRoomMessage(pageA, 'games', 'broadcast', `alice(${uidA}): games is back too`, true);
  });

  test('the page over https:// (wss://) chats with a plain telnet user', { timeout: TEST_TIMEOUT }, async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    let t;
    try {
      const page = await ctx.newPage();
      page.on('pageerror', (err) => pageErrors.push(`S: ${err.message}`));
      await page.goto(`https://127.0.0.1:${wssPort}/`);
      assert.equal(await page.evaluate(() => location.protocol), 'https:');
      const uidS = await myUID(page);
      t = await LineClient.connect(telnetPort);
      const welcome = await t.waitLine(/^Welcome to fastws! You are uid \d+\./);
      const uidX = Number(welcome.match(/uid (\d+)/)[1]);
      await waitMessage(page, 'join', `* uid ${uidX} joined`);
      await say(page, 'hello from an https page');
      await t.waitLine(`uid ${uidS}: hello from an https page`);
      t.send('hello back over TLS');
      await waitMessage(page, 'broadcast', `uid ${uidX}: hello back over TLS`);
    } finally {
      t?.close();
      await ctx.close();
    }
  });

  test('no script errors and nothing fetched from elsewhere', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(foreignRequests, []);
  });

  test('the daemon exits 0 on SIGTERM', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(daemon?.proc, 'fastws is not running: it did not start or did not restart');
    const code = await daemon.stop();
    assert.equal(code, 0, `fastws exit code after SIGTERM\n${daemon.logs()}`);
  });
});
