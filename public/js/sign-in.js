/** The sign-in view: a field for an access token or API key, or Supabase email + password and "email me a link". */
import { $ } from './dom.js'

/**
 * createSignIn({ root, on }) where `on` has
 *   token(token), password(email, password), magicLink(email): each → Promise<{ error?: string, sent?: string }>.
 * → { show({ mode, notice? }), hide(), isShown() }
 */
export function createSignIn ({ root, on }) {
  const notice = $('#signin-notice', root)
  const forms = {
    token: $('#token-form', root),
    password: $('#password-form', root),
    magic: $('#magic-form', root)
  }
  const sent = $('#magic-sent', root)

  function say (text, level = 'error') {
    notice.hidden = !text
    notice.dataset.level = level
    notice.textContent = text ?? ''
  }

  /** Runs a form's action with its controls disabled, then shows what came back. */
  function handle (form, action) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      const controls = [...form.elements]
      for (const el of controls) el.disabled = true
      form.setAttribute('aria-busy', 'true')
      let result
      try {
        result = await action() ?? {}
      } catch {
        result = { error: 'Could not reach the server. Try again.' }
      } finally {
        for (const el of controls) el.disabled = false
        form.removeAttribute('aria-busy')
      }
      if (result.error) say(result.error)
      if (result.sent) { sent.hidden = false; sent.textContent = result.sent }
    })
  }

  handle(forms.token, () => {
    const input = $('#token-input', root)
    const token = input.value.trim()
    if (!token) return { error: 'Paste an access token or API key.' }
    return on.token(token).then((result) => {
      if (!result?.error) input.value = '' // it is not left lying in the DOM
      return result
    })
  })
  handle(forms.password, () => {
    const password = $('#password-input', root)
    return on.password($('#email-input', root).value.trim(), password.value).then((result) => {
      if (!result?.error) password.value = ''
      return result
    })
  })
  handle(forms.magic, () => {
    sent.hidden = true
    say(null)
    return on.magicLink($('#magic-email', root).value.trim())
  })

  return {
    show ({ mode, notice: text }) {
      forms.token.hidden = mode !== 'token'
      forms.password.hidden = mode !== 'supabase'
      forms.magic.hidden = mode !== 'supabase'
      sent.hidden = true
      say(text ?? null)
      root.hidden = false
      const first = { supabase: '#email-input', token: '#token-input' }[mode]
      if (first) $(first, root).focus()
    },
    hide () {
      root.hidden = true
      say(null)
    },
    isShown: () => !root.hidden
  }
}
