/** Markdown → sanitised DOM: marked renders, raw HTML in the text is escaped, DOMPurify has the last word. */
import { Marked } from '/vendor/marked.js'
import DOMPurify from '/vendor/purify.js'

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])

// Model output is untrusted: raw HTML is shown as text, and images become links so nothing is
// fetched just because the model wrote an <img> or ![](…).
const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html (token) {
      const text = escapeHtml(token.text)
      return token.block ? `<p>${text}</p>\n` : text
    },
    image (token) {
      const label = escapeHtml(token.text || token.href || 'image')
      return `<a href="${escapeHtml(token.href)}" class="md-image-link">🖼 ${label}</a>`
    }
  }
})

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['img', 'picture', 'source', 'video', 'audio', 'iframe', 'object', 'embed', 'form', 'input',
    'button', 'textarea', 'select', 'style', 'link', 'meta', 'base', 'svg', 'math'],
  FORBID_ATTR: ['style', 'src', 'srcset', 'action', 'formaction', 'background', 'poster'],
  RETURN_DOM_FRAGMENT: true
}

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank')
    node.setAttribute('rel', 'noopener noreferrer nofollow')
  }
})

/** Renders untrusted markdown into `el` (replacing its content). */
export function renderMarkdown (el, text) {
  const html = marked.parse(text ?? '', { async: false })
  const fragment = DOMPurify.sanitize(html, PURIFY)
  decorateCodeBlocks(fragment)
  el.replaceChildren(fragment)
}

/** A language label and a copy button on each fenced code block. */
function decorateCodeBlocks (root) {
  for (const pre of root.querySelectorAll('pre')) {
    const code = pre.querySelector('code')
    const lang = (code?.className.match(/language-([\w+-]+)/) ?? [])[1]
    const bar = document.createElement('div')
    bar.className = 'code-bar'
    const label = document.createElement('span')
    label.textContent = lang ?? 'code'
    const copy = document.createElement('button')
    copy.type = 'button'
    copy.className = 'code-copy'
    copy.textContent = 'Copy'
    copy.setAttribute('aria-label', `Copy ${lang ?? ''} code`.replace('  ', ' '))
    bar.append(label, copy)
    const wrap = document.createElement('div')
    wrap.className = 'code-block'
    pre.replaceWith(wrap)
    wrap.append(bar, pre)
  }
}

// One delegated listener: code blocks are re-rendered while an answer streams.
document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('.code-copy') : null
  if (!button) return
  const code = button.closest('.code-block')?.querySelector('code')?.textContent ?? ''
  try {
    await navigator.clipboard.writeText(code)
    button.textContent = 'Copied'
  } catch {
    button.textContent = 'Copy failed'
  }
  setTimeout(() => { button.textContent = 'Copy' }, 1500)
})
