/** The connection indicator and the model badge in the top bar. */

/** createStatusIndicator({ root, text }) → { set({ state, retryAt?, code? }) } */
export function createStatusIndicator ({ root, text }) {
  let tick = null

  function set (status) {
    clearInterval(tick)
    const offline = navigator.onLine === false
    root.dataset.state = status.state === 'waiting' && offline ? 'offline' : status.state
    switch (status.state) {
      case 'open':
        text.textContent = 'Connected'
        break
      case 'connecting':
        text.textContent = status.attempt ? 'Reconnecting…' : 'Connecting…'
        break
      case 'waiting': {
        const paint = () => {
          const left = Math.max(0, Math.ceil((status.retryAt - Date.now()) / 1000))
          text.textContent = offline ? 'Offline — waiting for the network' : `Connection lost — retrying in ${left} s`
        }
        paint()
        tick = setInterval(paint, 1000)
        break
      }
      case 'failed':
        text.textContent = 'Disconnected'
        break
      default:
        text.textContent = 'Closed'
    }
  }

  return { set }
}

/** Shows provider and model; the built-in offline model is labelled plainly. */
export function showModel (badge, model, tools) {
  badge.hidden = false
  badge.dataset.offline = String(Boolean(model.offline))
  const kind = document.createElement('span')
  kind.className = 'badge-kind'
  kind.textContent = model.offline ? 'Offline model' : model.provider
  const name = document.createElement('span')
  name.className = 'badge-name'
  name.textContent = ` · ${model.name}`
  badge.replaceChildren(kind, name)
  const toolText = tools?.length ? ` Tools: ${tools.join(', ')}.` : ''
  badge.title = model.offline
    ? `The built-in offline model: canned answers, real tool calls, no network or API key.${toolText}`
    : `Model ${model.name} from ${model.provider}.${toolText}`
}
