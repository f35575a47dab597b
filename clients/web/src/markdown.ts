// Markdown for untrusted text (model output, tool output quoted in it): marked renders,
// DOMPurify sanitises the HTML before it reaches the DOM. Raw HTML in the source is
// escaped rather than passed through, links open in a new tab without a referrer, and
// only http(s)/mailto links survive (DOMPurify's URI allow-list drops `javascript:`).
import DOMPurify from "dompurify";
import { Marked } from "marked";

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    // Raw HTML blocks and inline tags are shown as text, never interpreted.
    html({ text }) {
      return escapeHtml(text);
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
