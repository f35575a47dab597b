// Markdown for untrusted text (model output, tool output quoted in it): marked renders,
// DOMPurify sanitises the HTML before it reaches the DOM. Raw HTML in the source is
// escaped rather than passed through, links open in a new tab without a referrer, and
// only http(s)/mailto links survive (DOMPurify's URI allow-list drops `javascript:`).
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import ini from "highlight.js/lib/languages/ini";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import { Marked } from "marked";

// The languages agents mostly show; others stay plain (no auto-detection: it is slow and
// guesses wrong on short snippets).
for (const [name, language] of Object.entries({
  bash, diff, go, ini, javascript, json, python, rust, sql, typescript, xml, yaml,
})) {
  hljs.registerLanguage(name, language);
}
hljs.registerAliases(["sh", "shell", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["toml"], { languageName: "ini" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    // Raw HTML blocks and inline tags are shown as text, never interpreted.
    html({ text }) {
      return escapeHtml(text);
    },
    // Code in a known language is highlighted (highlight.js escapes it; spans with
    // hljs-* classes only, and DOMPurify still runs over the result).
    code({ text, lang }) {
      const language = (lang ?? "").trim().split(/\s/)[0].toLowerCase();
      if (language && hljs.getLanguage(language)) {
        const html = hljs.highlight(text, { language, ignoreIllegals: true }).value;
        return `<pre><code class="hljs language-${escapeHtml(language)}">${html}\n</code></pre>\n`;
      }
      return false;
    },
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    const href = node.getAttribute("href") ?? "";
    if (!/^(https?:|mailto:|#)/i.test(href)) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

const PURIFY = {
  ALLOWED_TAGS: [
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "input", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
  ],
  ALLOWED_ATTR: ["href", "title", "alt", "src", "align", "type", "checked", "disabled", "class", "start"],
  ALLOW_DATA_ATTR: false,
};

const cache = new Map<string, string>();

/** Marks each code block for a copy button (added after sanitising, so ours only). */
const COPY_BUTTON = '<button type="button" class="copy" data-copy="">Copy</button>';

/** Sanitised HTML for `source` (memoised: streamed text re-renders on every delta). */
export function renderMarkdown(source: string): string {
  const hit = cache.get(source);
  if (hit !== undefined) return hit;
  const clean = DOMPurify.sanitize(marked.parse(source) as string, PURIFY) as string;
  const html = clean.replace(/<pre>/g, `<div class="code">${COPY_BUTTON}<pre>`).replace(/<\/pre>/g, "</pre></div>");
  if (cache.size > 500) cache.clear();
  cache.set(source, html);
  return html;
}

/** Click handler of a rendered markdown block: copies the code block of a Copy button. */
export function onMarkdownClick(event: MouseEvent) {
  const button = (event.target as HTMLElement).closest("button[data-copy]");
  const code = button?.parentElement?.querySelector("pre");
  if (!button || !code) return;
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  };
  const text = code.textContent ?? "";
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(done, () => (button.textContent = "Copy failed"));
  } else {
    getSelection()?.selectAllChildren(code);
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
