// client.mjs: a Node backend mints a user token with the npm jsonwebtoken
// package (not fastws's own code: any HS256 JWT library works), and a
// websocket client (npm ws) connects with it and waits for a message the
// application pushes to its user.
//
//   FASTWS_WS=ws://127.0.0.1:19911 FASTWS_TOKEN_SECRET=... node client.mjs u123 alice "expected text"
//
// Prints "ready" once authenticated, then the pushed message; exits 0 when
// the expected text arrives, 1 on a timeout or an error.
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

const [user = 'u123', name = 'alice', expected = ''] = process.argv.slice(2);
const url = process.env.FASTWS_WS || 'ws://127.0.0.1:19911';
const secret = process.env.FASTWS_TOKEN_SECRET;
if (!secret) {
  console.error('set FASTWS_TOKEN_SECRET to the [api] tokenSecret');
  process.exit(2);
}

// The token: sub = the application's user id, name = the nick, exp required.
const token = jwt.sign({ sub: user, name }, secret, { algorithm: 'HS256', expiresIn: '1h' });

const ws = new WebSocket(`${url}/?token=${encodeURIComponent(token)}`, 'fastws.v1.json');
const timer = setTimeout(() => { console.error('timed out'); process.exit(1); }, 15000);
ws.on('message', (data) => {
  const ev = JSON.parse(data.toString());
  if (ev.type === 'auth') {
    console.log('ready', JSON.stringify(ev));
  } else if (ev.type === 'error') {
    console.error('refused:', ev.text);
    process.exit(1);
  } else if (ev.type === 'message' && ev.from === 0 && ev.nick === 'server') {
    console.log('pushed', JSON.stringify(ev));
    if (ev.text === expected) {
      clearTimeout(timer);
      ws.close();
      process.exit(0);
    }
  }
});
ws.on('error', (err) => { console.error(err.message); process.exit(1); });
