/** At phone width the chat list slides in behind the menu button; Escape or the scrim closes it. */

export function createSidebarToggle ({ app, button, scrim, sidebar }) {
  const narrow = window.matchMedia('(max-width: 820px)')

  function setOpen (open) {
    app.dataset.sidebar = open ? 'open' : 'closed'
    button.setAttribute('aria-expanded', String(open))
    button.setAttribute('aria-label', open ? 'Hide chats' : 'Show chats')
    scrim.hidden = !open
    // Off-screen links must not take keyboard focus on phones.
    sidebar.inert = narrow.matches && !open
    if (open) sidebar.querySelector('button, a')?.focus()
  }

  button.addEventListener('click', () => setOpen(app.dataset.sidebar !== 'open'))
  scrim.addEventListener('click', () => { setOpen(false); button.focus() })
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && app.dataset.sidebar === 'open') { setOpen(false); button.focus() }
  })
  narrow.addEventListener('change', () => setOpen(false))
  setOpen(false)

  return { close: () => { if (app.dataset.sidebar === 'open') setOpen(false) } }
}
