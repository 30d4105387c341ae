/** Who is signed in, in the sidebar: the name, Sign out, and (token mode) a field to hand the live chat a new token. */
import { $ } from './dom.js'

/**
 * createAccount({ root, on }) where `on` has signOut() and replaceToken(token) → Promise<{ error?: string }>.
 * → { show({ name, principal, canReplace }), hide() }
 */
export function createAccount ({ root, on }) {
  const name = $('#account-name', root)
  const replaceButton = $('#replace-token', root)
  const form = $('#replace-form', root)
  const input = $('#replace-input', root)
  const error = $('#replace-error', root)

  function closeForm () {
    form.hidden = true
    replaceButton.setAttribute('aria-expanded', 'false')
    input.value = ''
    error.hidden = true
  }

  $('#sign-out', root).addEventListener('click', () => on.signOut())
  replaceButton.addEventListener('click', () => {
    if (!form.hidden) { closeForm(); return }
    form.hidden = false
    replaceButton.setAttribute('aria-expanded', 'true')
    input.focus()
  })
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const token = input.value.trim()
    if (!token) return
    input.disabled = true
    let result
    try { result = await on.replaceToken(token) } catch { result = { error: 'Could not reach the server. Try again.' } }
    input.disabled = false
    if (result?.error) {
      error.hidden = false
      error.textContent = result.error
      return
    }
    closeForm()
  })

  return {
    show ({ name: label, principal, canReplace }) {
      name.textContent = label
      name.title = principal
      replaceButton.hidden = !canReplace
      closeForm()
      root.hidden = false
    },
    hide () {
      closeForm()
      root.hidden = true
      name.textContent = ''
    }
  }
}
