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

/** Sanitised HTML for `source` (memoised: streamed text re-renders on every delta). */
export function renderMarkdown(source: string): string {
  const hit = cache.get(source);
  if (hit !== undefined) return hit;
  const html = DOMPurify.sanitize(marked.parse(source) as string, PURIFY) as string;
  if (cache.size > 500) cache.clear();
  cache.set(source, html);
  return html;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
