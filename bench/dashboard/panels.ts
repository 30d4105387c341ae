/** The Grafana dashboard of docs/operations.md, as data: panels and their PromQL. render.ts writes it to docs/grafana-dashboard.json. */

export interface PanelTarget { expr: string; legendFormat: string }
export interface Panel { title: string; unit: string; targets: PanelTarget[]; w: number; h: number; description: string }

const R = '$__rate_interval'
const quantiles = (metric: string): PanelTarget[] => [0.5, 0.95, 0.99].map((q) => ({
  expr: `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket[${R}])))`,
  legendFormat: `p${Math.round(q * 100)}`
}))

export const PANELS: Panel[] = [
  {
    title: 'Sockets, live sessions, running turns', unit: 'short', w: 8, h: 8,
    description: 'rtb_sockets_open, rtb_sessions_live, rtb_turns_running',
    targets: [
      { expr: 'sum(rtb_sockets_open)', legendFormat: 'sockets' },
      { expr: 'sum(rtb_sessions_live)', legendFormat: 'sessions' },
      { expr: 'sum(rtb_turns_running)', legendFormat: 'running turns' }
    ]
  },
  {
    title: 'Turns per second by finish reason', unit: 'reqps', w: 8, h: 8,
    description: 'rate of rtb_turns_total',
    targets: [{ expr: `sum by (finish_reason) (rate(rtb_turns_total[${R}]))`, legendFormat: '{{finish_reason}}' }]
  },
  {
    title: 'Deltas per second', unit: 'short', w: 8, h: 8,
    description: 'rate of rtb_deltas_sent_total (added once per turn, at its end)',
    targets: [{ expr: `sum(rate(rtb_deltas_sent_total[${R}]))`, legendFormat: 'deltas' }]
  },
  {
    title: 'Time to first token', unit: 's', w: 8, h: 8,
    description: 'quantiles of rtb_time_to_first_token_seconds',
    targets: quantiles('rtb_time_to_first_token_seconds')
  },
  {
    title: 'Added latency (1 delta in 64)', unit: 's', w: 8, h: 8,
    description: 'quantiles of rtb_added_latency_seconds: model chunk decoded → frame written',
    targets: quantiles('rtb_added_latency_seconds')
  },
  {
    title: 'Tool calls by outcome', unit: 'reqps', w: 8, h: 8,
    description: 'rate of rtb_tool_calls_total',
    targets: [{ expr: `sum by (tool, outcome) (rate(rtb_tool_calls_total[${R}]))`, legendFormat: '{{tool}} {{outcome}}' }]
  },
  {
    title: 'Store lag: pending events', unit: 'short', w: 6, h: 8,
    description: 'rtb_store_pending_events',
    targets: [{ expr: 'sum(rtb_store_pending_events)', legendFormat: 'pending events' }]
  },
  {
    title: 'Store write time', unit: 's', w: 6, h: 8,
    description: 'quantiles of rtb_store_write_duration_seconds',
    targets: quantiles('rtb_store_write_duration_seconds')
  },
  {
    title: 'Summary queue', unit: 'short', w: 6, h: 8,
    description: 'rtb_summary_jobs by status',
    targets: [{ expr: 'sum by (status) (rtb_summary_jobs)', legendFormat: '{{status}}' }]
  },
  {
    title: 'Model requests by outcome', unit: 'reqps', w: 6, h: 8,
    description: 'rate of rtb_model_requests_total',
    targets: [{ expr: `sum by (outcome) (rate(rtb_model_requests_total[${R}]))`, legendFormat: '{{outcome}}' }]
  },
  {
    title: 'Errors by code', unit: 'reqps', w: 8, h: 8,
    description: 'rate of rtb_errors_total',
    targets: [{ expr: `sum by (code) (rate(rtb_errors_total[${R}]))`, legendFormat: '{{code}}' }]
  },
  {
    title: 'WebSocket closes and resumes', unit: 'reqps', w: 8, h: 8,
    description: 'rates of rtb_ws_closes_total by code and rtb_resumes_total by source',
    targets: [
      { expr: `sum by (code) (rate(rtb_ws_closes_total[${R}]))`, legendFormat: 'close {{code}}' },
      { expr: `sum by (source) (rate(rtb_resumes_total[${R}]))`, legendFormat: 'resume {{source}}' }
    ]
  },
  {
    title: 'Process CPU', unit: 'percentunit', w: 8, h: 8,
    description: 'rate of process_cpu_seconds_total',
    targets: [{ expr: `sum(rate(process_cpu_seconds_total[${R}]))`, legendFormat: 'cpu' }]
  }
]

/** The Grafana dashboard JSON (schema 39) for PANELS, with a data source variable. */
export function grafanaDashboard (): Record<string, unknown> {
  let x = 0
  let y = 0
  const panels = PANELS.map((p, i) => {
    if (x + p.w > 24) { x = 0; y += 8 }
    const gridPos = { x, y, w: p.w, h: p.h }
    x += p.w
    return {
      id: i + 1,
      type: 'timeseries',
      title: p.title,
      description: p.description,
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos,
      fieldConfig: { defaults: { unit: p.unit, custom: { lineWidth: 2, fillOpacity: 10, showPoints: 'never' } }, overrides: [] },
      options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
      targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legendFormat, datasource: { type: 'prometheus', uid: '${datasource}' } }))
    }
  })
  return {
    title: 'Realtime AI Backend',
    uid: 'rtb-operations',
    tags: ['realtime-ai-backend'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    templating: { list: [{ name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {} }] },
    annotations: { list: [] },
    panels
  }
}
