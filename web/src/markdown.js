// Markdown -> safe HTML: marked (GFM), LaTeX math by KaTeX ($...$, $$...$$, \(...\), \[...\]), code blocks highlighted
// by highlight.js (core + common languages) with a copy button, and DOMPurify over the result (model output is
// untrusted: raw HTML is shown as text, and links/attributes are sanitised).
import { Marked } from 'marked';
import katex from 'katex';
import 'katex/dist/katex.min.css';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import plaintext from 'highlight.js/lib/languages/plaintext';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

const languages = { bash, c, cpp, css, diff, go, java, javascript, json, markdown, plaintext, python, rust, shell, sql,
  typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);

export function escapeHtml(s) {
  const map = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  return String(s).replace(/[&<>"']/g, (ch) => map[ch]);
}

function tex(src, display) {
  try {
    return katex.renderToString(src, { displayMode: display, throwOnError: false, output: 'htmlAndMathml' });
  } catch {
    return `<code>${escapeHtml(src)}</code>`;
  }
}

// Inline forms are tried before marked's own rules at every position (so "\(" is math, not an escaped paren).
// "$...$" follows the usual convention that keeps prices apart: no space inside either dollar, no digit right after
// the closing one.
const inlineMath = {
  name: 'math',
  level: 'inline',
  start(src) {
    const i = src.search(/\$|\\[([]/);
    return i < 0 ? undefined : i;
  },
  tokenizer(src) {
    let m = /^\$\$((?:\\[\s\S]|[^\\$])+?)\$\$/.exec(src) || /^\\\[([\s\S]+?)\\\]/.exec(src);
    if (m) return { type: 'math', raw: m[0], text: m[1].trim(), display: true };
    m = /^\\\(([\s\S]+?)\\\)/.exec(src);
    if (m) return { type: 'math', raw: m[0], text: m[1].trim(), display: false };
    m = /^\$(?!\s)((?:\\[\s\S]|[^\\$\n])+?)\$(?!\d)/.exec(src);
    if (m && !/\s$/.test(m[1])) return { type: 'math', raw: m[0], text: m[1], display: false };
    return undefined;
  },
  renderer(t) { return tex(t.text, t.display); },
};

const blockMath = {
  name: 'mathBlock',
  level: 'block',
  start(src) {
    const i = src.search(/^ {0,3}(\$\$|\\\[)/m);
    return i < 0 ? undefined : i;
  },
  tokenizer(src) {
    const m = /^ {0,3}\$\$([\s\S]+?)\$\$[ \t]*(?:\n+|$)/.exec(src) ||
      /^ {0,3}\\\[([\s\S]+?)\\\][ \t]*(?:\n+|$)/.exec(src);
    if (m) return { type: 'mathBlock', raw: m[0], text: m[1].trim() };
    return undefined;
  },
  renderer(t) { return `<div class="math-block">${tex(t.text, true)}</div>`; },
};

function highlight(code, lang) {
  const l = (lang || '').toLowerCase();
  if (l && hljs.getLanguage(l)) return hljs.highlight(code, { language: l, ignoreIllegals: true }).value;
  if (!l && code.length < 20000) return hljs.highlightAuto(code).value;
  return escapeHtml(code);
}

// Single newlines are line breaks, as a chat reads (reasoning is mostly line by line).
const md = new Marked({ gfm: true, breaks: true });
md.use({
  extensions: [blockMath, inlineMath],
  renderer: {
    code({ text, lang }) {
      const name = (lang || '').trim().split(/\s+/)[0];
      return `<div class="code"><div class="code-head"><span>${escapeHtml(name || 'code')}</span>` +
        `<button type="button" class="copy">Copy</button></div>` +
        `<pre><code class="hljs${name ? ' language-' + escapeHtml(name) : ''}">${highlight(text, name)}</code></pre>` +
        '</div>';
    },
    html({ text }) { return escapeHtml(text); },
  },
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

export function renderMarkdown(text) {
  return DOMPurify.sanitize(md.parse(text || ''), { ADD_ATTR: ['target'] });
}
