/** Auto-scroll that follows the answer while the reader is at the bottom and stops when they scroll up. */

const NEAR_BOTTOM_PX = 48

export function createAutoScroll ({ scroller, jumpButton }) {
  let follow = true

  const distance = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight

  function toBottom () {
    follow = true
    scroller.scrollTop = scroller.scrollHeight
    jumpButton.hidden = true
  }

  // Our own scrollTop writes land at the bottom, so only the reader can turn following off.
  scroller.addEventListener('scroll', () => {
    follow = distance() <= NEAR_BOTTOM_PX
    jumpButton.hidden = follow
  }, { passive: true })

  jumpButton.addEventListener('click', () => {
    toBottom()
    document.getElementById('composer-input')?.focus()
  })

  return {
    toBottom,
    isFollowing: () => follow,
    /** Call after content grew: keeps the bottom in view, or offers a jump button. */
    contentChanged () {
      if (follow) toBottom()
      else if (distance() > NEAR_BOTTOM_PX) jumpButton.hidden = false
    }
  }
}
