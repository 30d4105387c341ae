/** The AuthError a credential check ends in: fails the test when it passes or throws anything else. */
import { AuthError, type Authenticator } from '../../src/auth/types.js'

export async function authError (check: Promise<unknown>): Promise<AuthError> {
  const outcome = await check.then((p) => p, (err: unknown) => err)
  if (!(outcome instanceof AuthError)) throw new Error(`expected an AuthError, got ${JSON.stringify(outcome)}`)
  return outcome
}

/** The AuthError `auth` refuses `credential` with. */
export const refusal = async (auth: Authenticator, credential: string | undefined): Promise<AuthError> =>
  await authError(auth.authenticate(credential))
