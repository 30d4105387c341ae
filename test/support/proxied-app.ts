/** The app on a scratch Postgres database that it reaches through a TCP proxy, so a test can take the database away. */
import { startApp, type RunningApp } from './app.js'
import { applySchema, createScratchDatabase, createTcpProxy, withPort, type TcpProxy } from './postgres.js'

export interface ProxiedApp {
  server: RunningApp
  /** `down()` cuts every connection and refuses new ones; `up()` brings the database back. */
  proxy: TcpProxy
  /** The database itself, not through the proxy. */
  databaseUrl: string
  /** Stops the app, the proxy, and drops the database. */
  close: () => Promise<void>
}

export async function startAppBehindProxy (env: Record<string, string>): Promise<ProxiedApp> {
  const db = await createScratchDatabase()
  let proxy: TcpProxy | undefined
  try {
    await applySchema(db.url)
    proxy = await createTcpProxy(Number(new URL(db.url).port || 5432))
    const server = await startApp({ env: { STORAGE: 'postgres', DATABASE_URL: withPort(db.url, proxy.port), ...env } })
    const started = proxy
    return { server, proxy, databaseUrl: db.url, close: async () => { await server.close(); await started.close(); await db.drop() } }
  } catch (err) {
    await proxy?.close()
    await db.drop()
    throw err
  }
}
