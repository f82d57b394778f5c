// What the page keeps in localStorage: conversations, the open one, settings and the API key.
const CHATS = 'deepseek.chats', CURRENT = 'deepseek.current', SETTINGS = 'deepseek.settings', KEY = 'deepseek.apiKey';

function read(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch { /* storage full or disabled: the page still works for this session */ }
}

export function loadChats() {
  const v = read(CHATS, []);
  return Array.isArray(v) ? v.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.messages)) : [];
}
export const saveChats = (chats) => write(CHATS, chats);
export const loadCurrent = () => read(CURRENT, null);
export const saveCurrent = (id) => write(CURRENT, id);

export const defaultSettings = { system: '', temperature: '', top_p: '', max_tokens: '', thinking: 'auto' };
export const loadSettings = () => ({ ...defaultSettings, ...read(SETTINGS, {}) });
export const saveSettings = (s) => write(SETTINGS, s);

export const getApiKey = () => read(KEY, '') || '';
export const setApiKey = (k) => write(KEY, k || '');
