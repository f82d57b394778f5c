// The chat page of `deepseek serve`: conversations in localStorage, answers streamed from /v1/chat/completions with
// the reasoning shown live and then folded, Markdown + math + highlighted code, stop / regenerate / edit and resend.
import './style.css';
import { AuthError, listModels, streamChat } from './api.js';
import { escapeHtml, renderMarkdown } from './markdown.js';
import {
  getApiKey, loadChats, loadCurrent, loadSettings, saveChats, saveCurrent, saveSettings, setApiKey,
} from './store.js';

const $ = (sel) => document.querySelector(sel);
const els = {
  app: $('#app'), sidebar: $('#sidebar'), scrim: $('#scrim'), list: $('#chat-list'), newChat: $('#new-chat'),
  toggle: $('#toggle-sidebar'), title: $('#chat-title'), model: $('#model-name'), speed: $('#speed'),
  messages: $('#messages'), empty: $('#empty'), form: $('#composer'), input: $('#input'), send: $('#send'),
  stop: $('#stop'), settings: $('#settings'), settingsForm: $('#settings-form'), openSettings: $('#open-settings'),
  keyDialog: $('#key-dialog'), keyForm: $('#key-form'),
};

let chats = loadChats();
let currentId = loadCurrent();
let settings = loadSettings();
let modelId = null;
let busy = null;  // { controller, chat, msg } while an answer streams

const coarse = matchMedia('(pointer: coarse)');
const now = () => performance.now();
const current = () => chats.find((c) => c.id === currentId) || null;
const newId = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 8);

function persist() {
  saveChats(chats);
  saveCurrent(currentId);
}

function seconds(ms) {
  const s = ms / 1000;
  return s < 10 ? s.toFixed(1) : Math.round(s).toString();
}

// ---- sidebar -------------------------------------------------------------------------------------------------------

function renderList() {
  els.list.replaceChildren();
  for (const c of [...chats].sort((a, b) => b.updated - a.updated)) {
    const li = document.createElement('li');
    li.className = 'chat-item' + (c.id === currentId ? ' active' : '');
    li.dataset.id = c.id;
    li.innerHTML = `<span class="chat-name"></span>` +
      `<button type="button" class="icon-btn rename" title="Rename" aria-label="Rename">&#9998;</button>` +
      `<button type="button" class="icon-btn delete" title="Delete" aria-label="Delete">&#10005;</button>`;
    li.querySelector('.chat-name').textContent = c.title || 'New chat';
    els.list.append(li);
  }
}

function openSidebar(open) {
  els.app.classList.toggle('side-open', open);
  els.scrim.hidden = !open;
}

function selectChat(id) {
  currentId = id;
  saveCurrent(currentId);
  renderList();
  renderMessages();
  openSidebar(false);
}

function startRename(li) {
  const c = chats.find((x) => x.id === li.dataset.id);
  if (!c) return;
  const name = li.querySelector('.chat-name');
  const input = document.createElement('input');
  input.className = 'rename-input';
  input.value = c.title || '';
  name.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (save && input.value.trim()) {
      c.title = input.value.trim().slice(0, 200);
      c.renamed = true;
      persist();
    }
    renderList();
    renderTitle();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    else if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
}

els.list.addEventListener('click', (e) => {
  const li = e.target.closest('.chat-item');
  if (!li || e.target.closest('.rename-input')) return;
  if (e.target.closest('.rename')) return startRename(li);
  if (e.target.closest('.delete')) {
    const c = chats.find((x) => x.id === li.dataset.id);
    if (!c || !confirm(`Delete "${c.title || 'New chat'}"?`)) return;
    if (busy && busy.chat === c) busy.controller.abort();
    chats = chats.filter((x) => x !== c);
    if (currentId === c.id) currentId = null;
    persist();
    renderList();
    renderMessages();
    return;
  }
  selectChat(li.dataset.id);
});

els.newChat.addEventListener('click', () => {
  selectChat(null);
  els.input.focus();
});
els.toggle.addEventListener('click', () => openSidebar(!els.app.classList.contains('side-open')));
els.scrim.addEventListener('click', () => openSidebar(false));

// ---- messages ------------------------------------------------------------------------------------------------------

function renderTitle() {
  const c = current();
  els.title.textContent = c ? c.title || 'New chat' : 'New chat';
  document.title = (c && c.title ? c.title + ' - ' : '') + 'deepseek.cpp';
}

function statsText(m) {
  const parts = [];
  if (m.stopped) parts.push('stopped');
  else if (m.finish === 'length') parts.push('cut at max tokens');
  if (m.stats && m.stats.tokens) parts.push(`${m.stats.tokens} tokens`);
  if (m.stats && m.stats.tps) parts.push(`${m.stats.tps.toFixed(1)} tok/s`);
  return parts.join(' \u00b7 ');
}

// Fills an assistant message's element; `live` while its answer still streams.
function fillAssistant(el, m, live) {
  let think = el.querySelector('.think');
  if (m.reasoning) {
    if (!think) {
      think = document.createElement('details');
      think.className = 'think';
      think.innerHTML = '<summary></summary><div class="think-body md"></div>';
      think.open = live;
      el.prepend(think);
    }
    const thinking = live && !m.content.trim() && !m.thinkMs;
    think.querySelector('summary').textContent = thinking ? 'Thinking\u2026'
      : m.thinkMs != null ? `Thought for ${seconds(m.thinkMs)} s` : 'Thoughts';
    if (live && !thinking && think.dataset.folded !== '1') {
      think.open = false;  // fold once the answer starts; the user may open it again
      think.dataset.folded = '1';
    }
    think.classList.toggle('live', thinking);
    think.querySelector('.think-body').innerHTML = renderMarkdown(m.reasoning);
  } else if (think) {
    think.remove();
  }
  el.querySelector('.content').innerHTML = renderMarkdown(m.content);
  const err = el.querySelector('.error');
  err.hidden = !m.error;
  err.textContent = m.error || '';
  el.classList.toggle('streaming', live);
  el.querySelector('.stats').textContent = live ? '' : statsText(m);
}

function messageElement(m, i, last) {
  const el = document.createElement('div');
  el.className = 'msg ' + m.role;
  el.dataset.index = i;
  if (m.role === 'user') {
    el.innerHTML = '<div class="bubble"></div><div class="msg-actions">' +
      '<button type="button" class="link edit">Edit</button></div>';
    el.querySelector('.bubble').textContent = m.content;
  } else {
    el.innerHTML = '<div class="content md"></div><div class="error" hidden></div>' +
      '<div class="msg-foot"><span class="stats"></span>' +
      (last ? '<button type="button" class="link regen">Regenerate</button>' : '') + '</div>';
    fillAssistant(el, m, false);
  }
  return el;
}

function renderMessages() {
  renderTitle();
  const c = current();
  const stats = c && [...c.messages].reverse().find((m) => m.role === 'assistant' && m.stats)?.stats;
  els.speed.textContent = stats && stats.tps ? `${stats.tps.toFixed(1)} tok/s` : '';
  els.messages.replaceChildren();
  if (!c || !c.messages.length) {
    els.messages.append(els.empty);
    return;
  }
  c.messages.forEach((m, i) => els.messages.append(messageElement(m, i, i === c.messages.length - 1)));
  if (busy && busy.chat === c) {
    const el = els.messages.lastElementChild;
    if (el) fillAssistant(el, busy.msg, true);
  }
  updateControls();
  els.messages.scrollTop = els.messages.scrollHeight;
}

function nearBottom() {
  const m = els.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

let renderPending = false;
function scheduleLive() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    if (!busy || busy.chat !== current()) return;
    const el = els.messages.lastElementChild;
    if (!el || !el.classList.contains('assistant')) return;
    const stick = nearBottom();
    fillAssistant(el, busy.msg, true);
    if (stick) els.messages.scrollTop = els.messages.scrollHeight;
  });
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* fall back */ }
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { /* nothing */ }
  ta.remove();
  return ok;
}

function startEdit(el) {
  const c = current();
  const i = Number(el.dataset.index);
  if (!c || busy || !c.messages[i]) return;
  const bubble = el.querySelector('.bubble');
  const box = document.createElement('div');
  box.className = 'edit-box';
  box.innerHTML = '<textarea rows="3" aria-label="Edit message"></textarea><div class="actions">' +
    '<button type="button" class="btn ghost edit-cancel">Cancel</button>' +
    '<button type="button" class="btn primary edit-send">Send</button></div>';
  const ta = box.querySelector('textarea');
  ta.value = c.messages[i].content;
  bubble.replaceWith(box);
  el.querySelector('.msg-actions').hidden = true;
  ta.focus();
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      box.querySelector('.edit-send').click();
    } else if (e.key === 'Escape') {
      renderMessages();
    }
  });
}

els.messages.addEventListener('click', async (e) => {
  const btn = e.target.closest('button');
  if (!btn) return;
  const el = btn.closest('.msg');
  if (btn.classList.contains('copy')) {
    const code = btn.closest('.code').querySelector('pre').textContent;
    const ok = await copyText(code);
    btn.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
  } else if (btn.classList.contains('edit')) {
    startEdit(el);
  } else if (btn.classList.contains('edit-cancel')) {
    renderMessages();
  } else if (btn.classList.contains('edit-send')) {
    const c = current();
    const text = el.querySelector('.edit-box textarea').value;
    if (!c || busy || !text.trim()) return;
    c.messages = c.messages.slice(0, Number(el.dataset.index));
    c.messages.push({ role: 'user', content: text });
    generate(c);
  } else if (btn.classList.contains('regen')) {
    const c = current();
    if (!c || busy || c.messages[c.messages.length - 1]?.role !== 'assistant') return;
    c.messages.pop();
    generate(c);
  }
});

// ---- generation ----------------------------------------------------------------------------------------------------

function updateControls() {
  els.send.hidden = !!busy;
  els.stop.hidden = !busy;
  els.app.classList.toggle('busy', !!busy);
}

function requestBody(chat) {
  const messages = [];
  if (settings.system.trim()) messages.push({ role: 'system', content: settings.system });
  for (const m of chat.messages) {
    if (m.role === 'assistant' && !m.content) continue;  // failed or stopped before the answer: nothing to send
    messages.push({ role: m.role, content: m.content });
  }
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  if (modelId) body.model = modelId;
  for (const k of ['temperature', 'top_p', 'max_tokens']) {
    const v = settings[k] === '' ? NaN : Number(settings[k]);
    if (Number.isFinite(v)) body[k] = k === 'max_tokens' ? Math.round(v) : v;
  }
  if (settings.thinking !== 'auto') body.thinking = settings.thinking === 'on';
  return body;
}

async function generate(chat) {
  const msg = { role: 'assistant', content: '', reasoning: '' };
  chat.messages.push(msg);
  chat.updated = Date.now();
  if (!chat.renamed) {
    const first = chat.messages.find((m) => m.role === 'user');
    chat.title = first ? first.content.trim().replace(/\s+/g, ' ').slice(0, 60) : 'New chat';
  }
  persist();
  const controller = new AbortController();
  busy = { controller, chat, msg };
  renderList();
  renderMessages();

  const t0 = now();
  let tFirst = null, tContent = null, usage = null;
  try {
    for await (const ev of streamChat(requestBody(chat), controller.signal)) {
      if (ev.usage) usage = ev.usage;
      const ch = ev.choices && ev.choices[0];
      if (!ch) continue;
      const d = ch.delta || {};
      if (d.reasoning_content) {
        tFirst ??= now();
        msg.reasoning += d.reasoning_content;
      }
      if (d.content) {
        tFirst ??= now();
        if (tContent == null && msg.reasoning) msg.thinkMs = now() - t0;
        tContent ??= now();
        msg.content += d.content;
      }
      if (ch.finish_reason) msg.finish = ch.finish_reason;
      scheduleLive();
    }
  } catch (e) {
    if (controller.signal.aborted) {
      msg.stopped = true;
    } else if (e instanceof AuthError) {
      msg.error = 'This server needs an API key: ' + e.message;
      askKey();
    } else {
      msg.error = e && e.message ? e.message : String(e);
    }
  } finally {
    const tEnd = now();
    if (msg.reasoning && msg.thinkMs == null) msg.thinkMs = tEnd - t0;
    if (usage && usage.completion_tokens) {
      // Decode speed: the tokens after the first over the time since it came (the prompt's time excluded).
      const n = usage.completion_tokens;
      const dt = tFirst != null && n > 1 ? (tEnd - tFirst) / 1000 : (tEnd - t0) / 1000;
      msg.stats = { tokens: n, tps: dt > 0 ? (n > 1 && tFirst != null ? n - 1 : n) / dt : 0, ms: tEnd - t0 };
    }
    busy = null;
    chat.updated = Date.now();
    persist();
    if (chat === current()) renderMessages();
    updateControls();
    if (!coarse.matches) els.input.focus();  // on a phone that would pop the keyboard up after every answer
  }
}

function send() {
  const text = els.input.value;
  if (!text.trim() || busy) return;
  let c = current();
  if (!c) {
    c = { id: newId(), title: '', created: Date.now(), updated: Date.now(), messages: [] };
    chats.push(c);
    currentId = c.id;
  }
  c.messages.push({ role: 'user', content: text });
  els.input.value = '';
  autosize();
  generate(c);
}

function autosize() {
  els.input.style.height = 'auto';
  els.input.style.height = Math.min(els.input.scrollHeight, 200) + 'px';
}

els.form.addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
els.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
els.input.addEventListener('input', autosize);
els.stop.addEventListener('click', () => busy && busy.controller.abort());

// ---- settings and API key ------------------------------------------------------------------------------------------

els.openSettings.addEventListener('click', () => {
  const f = els.settingsForm.elements;
  for (const k of Object.keys(settings)) if (f[k]) f[k].value = settings[k];
  f.apiKey.value = getApiKey();
  openSidebar(false);
  els.settings.showModal();
});
els.settings.addEventListener('close', () => {
  if (els.settings.returnValue !== 'save') return;
  const f = els.settingsForm.elements;
  for (const k of Object.keys(settings)) if (f[k]) settings[k] = f[k].value;
  saveSettings(settings);
  const keyChanged = f.apiKey.value !== getApiKey();
  setApiKey(f.apiKey.value.trim());
  if (keyChanged) loadModel();
});

function askKey() {
  if (els.keyDialog.open) return;
  els.keyForm.elements.key.value = '';
  els.keyDialog.showModal();
}
els.keyDialog.addEventListener('close', () => {
  if (els.keyDialog.returnValue !== 'save') return;
  setApiKey(els.keyForm.elements.key.value.trim());
  loadModel();
});

async function loadModel() {
  try {
    const ids = await listModels();
    modelId = ids[0] || null;
    els.model.textContent = modelId || '';
    els.app.dataset.ready = '1';
  } catch (e) {
    els.model.textContent = '';
    if (e instanceof AuthError) askKey();
    else els.model.textContent = 'server unreachable';
  }
}

renderList();
renderMessages();
updateControls();
loadModel();
els.input.focus();
