// The server's own OpenAI-compatible API, relative to the page (so it also works behind a path prefix).
import { getApiKey } from './store.js';

export class AuthError extends Error {}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = getApiKey();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

async function failure(r) {
  let msg = `HTTP ${r.status}`;
  try {
    const j = await r.json();
    if (j && j.error && j.error.message) msg = j.error.message;
  } catch { /* not JSON */ }
  return r.status === 401 ? new AuthError(msg) : new Error(msg);
}

export async function listModels() {
  const r = await fetch('v1/models', { headers: headers() });
  if (!r.ok) throw await failure(r);
  const j = await r.json();
  return (j.data || []).map((m) => m.id);
}

// Yields the parsed `data:` chunks of a streamed chat completion until [DONE]; `: keep-alive` comments are skipped.
export async function* streamChat(body, signal) {
  const r = await fetch('v1/chat/completions',
                        { method: 'POST', headers: headers(), body: JSON.stringify(body), signal });
  if (!r.ok) throw await failure(r);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return;
        let ev;
        try { ev = JSON.parse(data); } catch { continue; }
        if (ev.error) throw new Error(ev.error.message || 'server error');
        yield ev;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
